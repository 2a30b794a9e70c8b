/// `REDIS_WAIT_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS`: a login's writes are followed by `WAIT`, so the reply
/// comes once that many replicas have them (or the timeout passed), narrowing what a failover can lose.
package struct RedisReplicaWait: Sendable, Equatable {
    /// How many replicas must acknowledge.
    package var replicas: Int
    /// How long `WAIT` may block a login; fewer acknowledgements by then are logged, and the login succeeds.
    package var timeout: Duration

    package init(replicas: Int, timeout: Duration = .milliseconds(Self.defaultTimeoutMilliseconds)) {
        self.replicas = replicas
        self.timeout = timeout
    }

    /// `REDIS_WAIT_TIMEOUT_MS` when only `REDIS_WAIT_REPLICAS` is set.
    package static let defaultTimeoutMilliseconds = 100
}
