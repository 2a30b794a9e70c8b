/// Hooks through which ``RedisClient`` reports what it does, for metrics: each command's latency and outcome, and
/// each reconnect. The client knows nothing of any metrics library; the application turns these into its metrics.
///
/// The closures run on the task that sent the command, or on the task that keeps a connection up: they must be
/// short and must not block (count, record, return).
public struct RedisClientObserver: Sendable {
    /// A command (or a pipeline or transaction, named `PIPELINE`) finished: its name in capitals (the first word of
    /// the command, never its arguments), how long it took, and the error it failed with: a ``RedisClientError``
    /// (an error reply is ``RedisClientError/Code/commandError``), or `nil` when it succeeded.
    public var commandFinished: @Sendable (_ command: String, _ duration: Duration, _ error: (any Error)?) -> Void
    /// A pool connection came up again after it had been up before (its first connect is not reported).
    public var reconnected: @Sendable (_ endpoint: RedisClientConfiguration.Endpoint) -> Void

    /// Creates an observer.
    /// - Parameters:
    ///   - commandFinished: Called once per command, pipeline or transaction sent.
    ///   - reconnected: Called each time a pool connection is re-established.
    public init(
        commandFinished: @escaping @Sendable (_ command: String, _ duration: Duration, _ error: (any Error)?) -> Void = { _, _, _ in },
        reconnected: @escaping @Sendable (_ endpoint: RedisClientConfiguration.Endpoint) -> Void = { _ in }
    ) {
        self.commandFinished = commandFinished
        self.reconnected = reconnected
    }
}
