import Logging
import RedisClient
import Synchronization

/// Runs a login's writes followed by `WAIT` (`REDIS_WAIT_REPLICAS`), on a Redis client of their own.
///
/// `WAIT` blocks its connection until the replicas answer or the timeout passes, and every reply pipelined
/// behind it waits too: on the client that serves `/users/me`, a replica that stopped answering would hold every
/// request for the timeout. So the waited writes have their own connections, and when a `WAIT` comes back short
/// (no replica, or a slow one), logins stop waiting for ``pause`` and say so once: a missing replica costs one
/// slow login per pause and process, not every login.
package final class RedisReplicaWaiter: Sendable {
    private let client: RedisClient
    private let wait: RedisReplicaWait
    private let logger: Logger
    /// Until when logins do not wait, after a short `WAIT`.
    private let pausedUntil = Mutex<ContinuousClock.Instant?>(nil)

    /// How long logins stop waiting after a `WAIT` came back short.
    static let pause = Duration.seconds(10)

    /// - Parameter client: A client used for nothing else (it must be run, like any client).
    package init(client: RedisClient, wait: RedisReplicaWait, logger: Logger) {
        self.client = client
        self.wait = wait
        self.logger = logger
    }

    /// `EVALSHA`, then `WAIT` unless paused. Fewer replicas than asked is logged and pauses the waiting; the
    /// write itself succeeded on the primary.
    @discardableResult
    func evalsha(_ script: RedisScript, keys: [String], arguments: [RedisArgument]) async throws -> RESPValue {
        let now = ContinuousClock.now
        if let until = self.pausedUntil.withLock({ $0 }), now < until {
            return try await self.client.evalsha(script, keys: keys, arguments: arguments)
        }
        let (reply, acknowledged) = try await self.client.evalsha(
            script,
            keys: keys,
            arguments: arguments,
            waitingForReplicas: self.wait.replicas,
            timeout: self.wait.timeout
        )
        if acknowledged < self.wait.replicas {
            let tripped = self.pausedUntil.withLock { until in
                let wasPaused = until.map { ContinuousClock.now < $0 } ?? false
                until = ContinuousClock.now + Self.pause
                return !wasPaused
            }
            if tripped {
                self.logger.warning(
                    "fewer Redis replicas than REDIS_WAIT_REPLICAS acknowledged a login within REDIS_WAIT_TIMEOUT_MS; logins do not wait for replicas for the next \(Self.pause)",
                    metadata: ["redis.replicas.acknowledged": "\(acknowledged)", "redis.replicas.wanted": "\(self.wait.replicas)"]
                )
            }
        }
        return reply
    }
}
