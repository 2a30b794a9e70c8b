import Logging
import NIOCore
import Synchronization

/// Pipelined connections to one server, each kept up by its own reconnect loop in ``run()``: to a fixed endpoint, or
/// (Sentinel mode) to whichever master ``RedisSentinelMonitor`` names, moving every connection when it changes.
///
/// Sendable: immutable settings, slots that guard their own state, and atomics.
final class RedisConnectionPool: Sendable {
    /// Where the pool's connections go.
    enum Target: Sendable {
        case fixed(RedisClientConfiguration.Endpoint)
        case sentinel(RedisSentinelMonitor)
    }

    let target: Target
    let slots: [RedisConnectionSlot]
    private let configuration: RedisClientConfiguration
    private let tls: RedisTLSContext?
    private let logger: Logger
    private let events: RedisTopologyEvents
    private let nextSlot = Atomic<Int>(0)
    /// How long a command waits for the first connection: the first attempt's connect plus its handshakes.
    private let firstConnectionWait: TimeAmount
    /// Wakes the reconnect loops: a new master (Sentinel mode, the monitor's signal), or ``stop()``.
    private let wakeUps: RedisChangeSignal
    private let stopped = Atomic<Bool>(false)
    /// Called when a connection that was up is lost (a cluster refreshes its map then).
    private let connectionLost: (@Sendable (RedisClientConfiguration.Endpoint) -> Void)?

    init(
        target: Target,
        configuration: RedisClientConfiguration,
        eventLoops: [any EventLoop],
        connectionCount: Int,
        tls: RedisTLSContext?,
        logger: Logger,
        events: RedisTopologyEvents,
        connectionLost: (@Sendable (RedisClientConfiguration.Endpoint) -> Void)? = nil
    ) {
        self.target = target
        self.configuration = configuration
        self.tls = tls
        self.logger = logger
        self.events = events
        self.connectionLost = connectionLost
        // The first attempt may take a connect timeout to connect, one for the TLS handshake, one for the Redis handshake;
        // with Sentinels, finding the master comes first (one Sentinel and the master's check, when all goes well).
        var waits = configuration.tls == nil ? 2 : 3
        if case .sentinel = target {
            waits *= 2
        }
        self.firstConnectionWait = TimeAmount(configuration.connectTimeout) * Int64(waits)
        switch target {
        case .fixed: self.wakeUps = RedisChangeSignal()
        case .sentinel(let monitor): self.wakeUps = monitor.changes
        }
        self.slots = (0..<max(1, connectionCount)).map { index in
            RedisConnectionSlot(index: index, eventLoop: eventLoops[index % eventLoops.count])
        }
    }

    /// A description of where the connections go, for messages.
    var targetDescription: String {
        switch self.target {
        case .fixed(let endpoint): "\(endpoint)"
        case .sentinel(let monitor): "the master '\(monitor.sentinel.masterName)'"
        }
    }

    // MARK: Running

    /// Keeps every slot connected until the task is cancelled or ``stop()`` is called, then closes the connections.
    func run() async {
        await withDiscardingTaskGroup { group in
            for slot in self.slots {
                group.addTask {
                    await self.maintainConnection(slot)
                }
            }
        }
    }

    /// Ends ``run()`` (its loops close their connections) and fails new commands with `shutdown`.
    func stop() {
        self.stopped.store(true, ordering: .releasing)
        self.wakeUps.bump()
    }

    private var isStopping: Bool {
        Task.isCancelled || self.stopped.load(ordering: .acquiring)
    }

    /// Keeps one slot connected until the task is cancelled or the pool stops.
    private func maintainConnection(_ slot: RedisConnectionSlot) async {
        var logger = self.logger
        logger[metadataKey: "redis.connection"] = "\(slot.index)"
        var failedAttempts = 0
        var hasBeenUnavailable = false
        while !self.isStopping {
            var seen = self.wakeUps.value
            var endpoint: RedisClientConfiguration.Endpoint?
            do {
                let target = try await self.currentTarget()
                endpoint = target.endpoint
                seen = target.generation
                let connection = try await RedisConnection.connect(
                    to: target.endpoint,
                    handshake: RedisConnection.Handshake(configuration: self.configuration, requiresMaster: self.requiresMaster),
                    tls: self.tls,
                    connectTimeout: TimeAmount(self.configuration.connectTimeout),
                    commandTimeout: TimeAmount(self.configuration.commandTimeout),
                    eventLoop: slot.eventLoop,
                    logger: logger
                )
                if hasBeenUnavailable {
                    logger.info("Reconnected to Redis", metadata: ["redis.endpoint": "\(target.endpoint)"])
                    self.events.reconnected(target.endpoint)
                } else {
                    logger.debug("Connected to Redis", metadata: ["redis.endpoint": "\(target.endpoint)"])
                }
                failedAttempts = 0
                hasBeenUnavailable = true
                slot.connectionEstablished(connection)
                self.events.emit(.connected, endpoint: target.endpoint)
                let moved = await self.waitUntilClosedOrMoved(connection, to: target.endpoint, after: seen)
                slot.connectionUnavailable(
                    RedisClientError(.connectionClosed, message: moved ? "the connection moved to a new master" : "the connection to Redis closed")
                )
                self.events.emit(.disconnected, endpoint: target.endpoint)
                if self.isStopping {
                    break
                }
                if moved {
                    // A new master is known: go there at once.
                    continue
                }
                logger.warning("Lost the connection to Redis; reconnecting", metadata: ["redis.endpoint": "\(target.endpoint)"])
                self.lost(target.endpoint, reason: "the connection to \(target.endpoint) was lost")
            } catch {
                let error =
                    error as? RedisClientError
                    ?? RedisClientError(.connectFailed, message: "could not connect to Redis", underlyingError: error)
                slot.connectionUnavailable(error)
                if self.isStopping {
                    break
                }
                failedAttempts += 1
                if let endpoint {
                    self.lost(endpoint, reason: error.message)
                }
                // Log the first failure loudly; the retries that follow only at debug level.
                logger.log(
                    level: failedAttempts == 1 ? .warning : .debug,
                    "Could not connect to Redis; retrying",
                    metadata: ["redis.error": "\(error)", "redis.attempt": "\(failedAttempts)"]
                )
            }
            // Wait out the backoff, unless a new master (or a stop) comes first.
            await self.wakeUps.wait(after: seen, timeout: self.configuration.reconnectBackoff.delay(afterFailures: failedAttempts))
        }
        slot.shutDown()?.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
    }

    private var requiresMaster: Bool {
        if case .sentinel = self.target { return true }
        return false
    }

    private func currentTarget() async throws -> (endpoint: RedisClientConfiguration.Endpoint, generation: UInt64) {
        switch self.target {
        case .fixed(let endpoint):
            return (endpoint, self.wakeUps.value)
        case .sentinel(let monitor):
            return try await monitor.current()
        }
    }

    /// Waits until `connection` closes (returns `false`), or the pool stops or its target moves away from `endpoint`
    /// (closes it, returns `true`). Cancelling the task closes the connection.
    private func waitUntilClosedOrMoved(
        _ connection: RedisConnection,
        to endpoint: RedisClientConfiguration.Endpoint,
        after seen: UInt64
    ) async -> Bool {
        await withTaskCancellationHandler {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try? await connection.closeFuture.get()
                    return false
                }
                group.addTask {
                    var seen = seen
                    while true {
                        await self.wakeUps.wait(after: seen)
                        guard !Task.isCancelled else { return false }
                        seen = self.wakeUps.value
                        if self.stopped.load(ordering: .acquiring) {
                            return true
                        }
                        // Only a different master moves the connection: Sentinels that cannot be reached leave it be.
                        if case .sentinel(let monitor) = self.target, let master = monitor.knownMaster, master != endpoint {
                            return true
                        }
                    }
                }
                let moved = await group.next() ?? false
                if moved {
                    connection.close(because: RedisClientError(.connectionClosed, message: "the Redis master changed; reconnecting"))
                }
                group.cancelAll()
                return moved
            }
        } onCancel: {
            connection.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
        }
    }

    private func lost(_ endpoint: RedisClientConfiguration.Endpoint, reason: String) {
        if case .sentinel(let monitor) = self.target {
            monitor.masterLooksGone(reason)
        }
        self.connectionLost?(endpoint)
    }

    // MARK: Sending

    /// A connection for the next command: the one on the caller's event loop, else the next connected one in turn.
    /// - Throws: ``RedisClientError``: `notConnected` at once when no connection is up (after the first connect
    ///   attempt; before it, waits for that attempt), `shutdown` when the client stopped.
    func connection() async throws -> RedisConnection {
        let count = self.slots.count
        var start = 0
        if count > 1 {
            if let local = self.slots.firstIndex(where: { $0.eventLoop.inEventLoop }) {
                start = local
            } else {
                start = (self.nextSlot.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max) % count
            }
        }
        var startingSlot: RedisConnectionSlot?
        var firstError: RedisClientError?
        for offset in 0..<count {
            let slot = self.slots[(start + offset) % count]
            switch slot.lookup() {
            case .connected(let connection):
                return connection
            case .starting:
                startingSlot = startingSlot ?? slot
            case .unavailable(let error):
                firstError = firstError ?? error
            }
        }
        if let startingSlot {
            return try await startingSlot.waitForFirstConnection(timeout: self.firstConnectionWait)
        }
        if let firstError, firstError.code == .shutdown {
            throw firstError
        }
        throw RedisClientError(
            .notConnected,
            message: "not connected to Redis at \(self.targetDescription)\(firstError.map { ": \($0.message)" } ?? "")",
            underlyingError: firstError
        )
    }

    /// Looks at a reply for signs that the master moved (Sentinel mode): `READONLY` (it became a replica) or
    /// `MASTERDOWN`. Then every connection is closed and the Sentinels are asked again; the command's caller gets
    /// the error reply as is.
    func inspect(_ reply: RESPValue) {
        guard case .sentinel(let monitor) = self.target, case .error(let message) = reply,
            message.hasPrefix("READONLY") || message.hasPrefix("MASTERDOWN")
        else { return }
        monitor.masterLooksGone(message)
        for slot in self.slots {
            if case .connected(let connection) = slot.lookup() {
                connection.close(because: RedisClientError(.connectionClosed, message: "the server is no longer the master (\(message))"))
            }
        }
    }
}
