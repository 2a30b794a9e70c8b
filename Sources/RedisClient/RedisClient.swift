import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// An async Redis client with a small pool of pipelined connections that reconnects by itself.
///
/// The client is a `Service`: its connections and their reconnect loops live in ``run()``. Add it to a `ServiceGroup`
/// (`app.addServices(client)`), or use ``withClient(_:eventLoopGroup:logger:isolation:_:)`` in tools and tests:
/// ```swift
/// try await RedisClient.withClient(configuration, logger: logger) { client in
///     try await client.set("greeting", value: "hello")
///     let value = try await client.getString("greeting")
/// }
/// ```
///
/// Commands can be sent from any task, concurrently; many are in flight on one connection and their replies are
/// matched in order. A command goes to the connection on the caller's event loop if there is one, otherwise to the
/// next connection in turn. Every command has a deadline (``RedisClientConfiguration/commandTimeout``). While Redis is
/// unreachable, commands fail at once with ``RedisClientError/Code/notConnected``; nothing is queued. Commands issued
/// before the first connection is up wait for the first connect attempt, which is bounded by
/// ``RedisClientConfiguration/connectTimeout`` for the connect plus as much for the handshake (and as much again for
/// the TLS handshake, with ``RedisClientConfiguration/tls``).
///
/// Errors are always ``RedisClientError``. A Redis error reply (such as `WRONGTYPE ...`) is thrown as
/// ``RedisClientError/Code/commandError`` with the server's text as ``RedisClientError/message``, except inside
/// ``pipeline(_:)`` and ``transaction(_:)`` results, where each reply is returned as a ``RESPValue`` (errors as
/// ``RESPValue/error(_:)``).
///
/// A command whose task is cancelled still waits for its reply (or its deadline), because its place in the
/// connection's reply order cannot be given up.
///
/// ## Topologies
/// The same type, and the same commands, work with every ``RedisClientConfiguration/topology``:
/// - **standalone** (the default): the pool connects to ``RedisClientConfiguration/endpoint``.
/// - **Sentinel**: the pool connects to the master the Sentinels name (checked with `ROLE` on every connection) and
///   moves every connection when it changes: after a lost connection, a `READONLY` or `MASTERDOWN` reply (returned to
///   its caller as `commandError`; the command did not run), or a `+switch-master` announcement. During the switch,
///   commands fail at once with `notConnected`.
/// - **Cluster**: one connection per primary; each command goes to the primary of its keys' hash slot, following
///   `MOVED` and `ASK` and retrying `TRYAGAIN`/`CLUSTERDOWN` until the command timeout has passed (so a redirected
///   command may take up to about twice the timeout). A command, a ``transaction(_:)`` or a write with `WAIT` whose
///   keys hash to different slots throws ``RedisClientError/Code/crossSlot`` without being sent: give keys that go
///   together the same `{hash tag}`. ``pipeline(_:)`` may mix slots (it is not atomic): it is split by node. Commands
///   without keys go to any primary; `SCRIPT`, `FLUSHALL`, `FLUSHDB` and `FUNCTION` to every primary. While a slot has no
///   reachable primary (a failover is under way), its commands fail at once with `notConnected`; the other slots work.
///
/// ``topologyEvents()`` and ``topologyGeneration`` tell a cache that the way to Redis changed.
public final class RedisClient: Sendable, Service {
    /// The configuration the client was created with.
    public let configuration: RedisClientConfiguration
    let logger: Logger
    private let runState = Mutex<RunState>(.idle)
    /// Where commands go.
    private let backend: Backend
    let events: RedisTopologyEvents
    /// Where connections of the client's own (the invalidation listener's) run.
    let eventLoopGroup: any EventLoopGroup
    /// Told of every command and reconnect, for metrics; `nil`: nothing is measured.
    private let observer: RedisClientObserver?

    private enum Backend: Sendable {
        /// One server, or (with a monitor) the master the Sentinels name.
        case pool(RedisConnectionPool, sentinel: RedisSentinelMonitor?)
        case cluster(RedisClusterRouter)
    }

    private enum RunState {
        case idle
        case running
        case finished
    }

    /// Creates a client. It connects only when ``run()`` runs.
    /// - Parameters:
    ///   - configuration: Where and how to connect.
    ///   - eventLoopGroup: The event loops the connections run on; NIO's shared `MultiThreadedEventLoopGroup.singleton` by default.
    ///     Without ``RedisClientConfiguration/connectionCount``, the pool has one connection per event loop (in a
    ///     cluster, one per primary; the primaries are spread over the event loops).
    ///   - logger: Receives connection events (connected, lost, reconnect failures, timeouts, a new master). Passwords
    ///     are never logged.
    ///   - observer: Told of each command's latency and outcome and of each reconnect (for metrics); `nil` by default.
    public init(
        configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        observer: RedisClientObserver? = nil
    ) {
        self.configuration = configuration
        self.logger = logger
        self.observer = observer
        self.eventLoopGroup = eventLoopGroup
        self.events = RedisTopologyEvents(reconnected: observer?.reconnected)
        let tls = configuration.tls.map { RedisTLSContext(settings: $0) }
        var eventLoops = Array(eventLoopGroup.makeIterator())
        if eventLoops.isEmpty {
            eventLoops = [eventLoopGroup.next()]
        }
        let count = max(1, configuration.connectionCount ?? eventLoops.count)
        var monitor: RedisSentinelMonitor?
        let target: RedisConnectionPool.Target
        switch configuration.topology.base {
        case .standalone:
            target = .fixed(configuration.endpoint)
        case .sentinel(let sentinel):
            let sentinelMonitor = RedisSentinelMonitor(
                sentinel: sentinel,
                configuration: configuration,
                tls: tls,
                eventLoopGroup: eventLoopGroup,
                logger: logger,
                events: self.events
            )
            monitor = sentinelMonitor
            target = .sentinel(sentinelMonitor)
        case .cluster(let cluster):
            self.backend = .cluster(
                RedisClusterRouter(
                    configuration: configuration,
                    seeds: cluster.seeds,
                    tls: tls,
                    eventLoops: eventLoops,
                    logger: logger,
                    events: self.events
                )
            )
            return
        }
        let pool = RedisConnectionPool(
            target: target,
            configuration: configuration,
            eventLoops: eventLoops,
            connectionCount: count,
            tls: tls,
            logger: logger,
            events: self.events
        )
        self.backend = .pool(pool, sentinel: monitor)
    }

    // MARK: Running

    /// Connects every pool connection, keeps them connected (reconnecting with jittered exponential backoff; in
    /// Sentinel mode, following the master), and returns when the task is cancelled or a graceful shutdown is
    /// triggered, after closing the connections.
    ///
    /// Call it once. After it returns, commands fail with ``RedisClientError/Code/shutdown``.
    /// - Throws: ``RedisClientError`` with code `shutdown` if the client is already running or has already run.
    public func run() async throws {
        let canRun = self.runState.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .running
            return true
        }
        guard canRun else {
            throw RedisClientError(.shutdown, message: "RedisClient.run() was called more than once")
        }
        self.logger.debug("Redis client starting", metadata: ["redis.endpoint": "\(self.configuration)"])
        await cancelWhenGracefulShutdown {
            switch self.backend {
            case .pool(let pool, let monitor):
                await withDiscardingTaskGroup { group in
                    if let monitor {
                        group.addTask { await monitor.run() }
                    }
                    group.addTask { await pool.run() }
                }
            case .cluster(let router):
                await router.run()
            }
        }
        self.runState.withLock { $0 = .finished }
        self.events.finish()
        self.logger.debug("Redis client stopped")
    }

    /// Runs `body` with a client that is connecting and reconnecting in a child task, then stops the client.
    ///
    /// Meant for command-line tools, tests and benchmarks; services should add the client to their `ServiceGroup` instead.
    /// - Parameters:
    ///   - configuration: Where and how to connect.
    ///   - eventLoopGroup: The event loops the connections run on.
    ///   - logger: Receives connection events.
    ///   - body: Uses the client. The first commands wait for the first connect attempt (at most twice the connect timeout).
    /// - Returns: What `body` returns.
    @discardableResult
    public static func withClient<Result>(
        _ configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        let client = RedisClient(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self, returning: Result.self, isolation: isolation) { group in
            group.addTask {
                try await client.run()
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// The jittered wait before the next connect attempt; see ``RedisClientConfiguration/ReconnectBackoff``.
    func backoff(afterFailures failures: Int) -> Duration {
        self.configuration.reconnectBackoff.delay(afterFailures: failures)
    }

    // MARK: Topology

    /// A number that grows whenever the way to Redis changes: a pool connection comes up or is lost, the Sentinels
    /// name a new master, the cluster's slot map changes.
    ///
    /// A cache of replies can read it before sending a command and keep the reply only if it is unchanged when the
    /// reply arrives: then no reconnect, failover or resharding happened in between.
    public var topologyGeneration: UInt64 {
        self.events.currentGeneration
    }

    /// The topology changes from now on, as they happen: connections up and down, a new master, a new slot map.
    ///
    /// Each call returns a new stream; it ends when ``run()`` returns. A reader that falls behind loses the oldest
    /// events beyond 1,000 (``topologyGeneration`` still tells that something changed).
    public func topologyEvents() -> AsyncStream<RedisTopologyEvent> {
        self.events.stream()
    }

    /// The servers a ``RedisInvalidationListener`` subscribes to: the endpoint, the master the Sentinels name, or
    /// every primary of a cluster (each announces only its own slots' keys).
    var invalidationTarget: RedisInvalidationListener.Target {
        switch self.backend {
        case .pool(_, let monitor?): .sentinel(monitor)
        case .pool: .fixed(self.configuration.endpoint)
        case .cluster(let router): .cluster(router)
        }
    }

    // MARK: Sending

    /// Sends a command and returns its reply as is, error replies included. In a cluster, to the primary of its keys.
    func sendRaw(_ command: [RedisArgument]) async throws -> RESPValue {
        guard let observer = self.observer else { return try await self.sendUnobserved(command) }
        return try await Self.observing(observer, Self.name(of: command)) { try await self.sendUnobserved(command) }
    }

    private func sendUnobserved(_ command: [RedisArgument]) async throws -> RESPValue {
        switch self.backend {
        case .pool(let pool, _):
            let reply = try await pool.connection().send(command)
            pool.inspect(reply)
            return reply
        case .cluster(let router):
            let replies = try await router.execute([command], route: try RedisCommandRoute.of(command))
            guard let reply = replies.first else {
                throw RedisClientError(.unexpectedReply, message: "no reply to \(command.first?.description ?? "a command")")
            }
            return reply
        }
    }

    /// Every key matching `pattern`, a page at a time: `SCAN cursor MATCH pattern COUNT count` until the cursor is
    /// back at 0, so Redis is never blocked for long (as `KEYS` would block it). In a cluster, on every primary in
    /// turn: a `SCAN` sees only its own node's keys. A key may come twice (SCAN's guarantee while Redis rehashes):
    /// count distinct keys.
    /// - Parameters:
    ///   - pattern: A glob, as `SCAN MATCH` takes it.
    ///   - count: `SCAN`'s `COUNT` hint.
    ///   - page: Called with the keys of each reply, in order.
    /// - Throws: ``RedisClientError``: `commandError` for an error reply, `unexpectedReply` for another shape; as
    ///   ``send(_:)-([RedisArgument])`` otherwise.
    public func scanKeys(matching pattern: String, count: Int = 1000, page: ([RESPValue]) throws -> Void) async throws {
        switch self.backend {
        case .pool:
            try await Self.scan(pattern: pattern, count: count, send: { try await self.sendRaw($0) }, page: page)
        case .cluster(let router):
            try await router.forEachPrimary { send in
                try await Self.scan(pattern: pattern, count: count, send: send, page: page)
            }
        }
    }

    private static func scan(
        pattern: String,
        count: Int,
        send: ([RedisArgument]) async throws -> RESPValue,
        page: ([RESPValue]) throws -> Void
    ) async throws {
        var cursor = "0"
        repeat {
            let reply = try await send(["SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", RedisArgument(count)])
            if case .error(let message) = reply { throw RedisClientError(.commandError, message: message) }
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else {
                throw RedisClientError(.unexpectedReply, message: "unexpected reply to SCAN")
            }
            try page(keys)
            cursor = next
        } while cursor != "0"
    }

    /// Sends commands in one write on one connection and returns their replies as they are, error replies included.
    /// In a cluster their keys must share a slot (they go to that slot's primary).
    /// - Parameter extraTimeout: Added to the command timeout (for a trailing `WAIT`).
    /// - Throws: ``RedisClientError`` with code `crossSlot` in a cluster when the keys span slots; as ``send(_:)-([RedisArgument])``.
    func pipelineRaw(_ commands: [[RedisArgument]], extraTimeout: Duration = .zero) async throws -> [RESPValue] {
        guard let observer = self.observer else { return try await self.pipelineUnobserved(commands, extraTimeout: extraTimeout) }
        return try await Self.observing(observer, Self.name(of: commands)) {
            try await self.pipelineUnobserved(commands, extraTimeout: extraTimeout)
        }
    }

    private func pipelineUnobserved(_ commands: [[RedisArgument]], extraTimeout: Duration) async throws -> [RESPValue] {
        switch self.backend {
        case .pool(let pool, _):
            let connection = try await pool.connection()
            let replies = try await connection.pipeline(commands, timeout: connection.commandTimeout + TimeAmount(extraTimeout))
            for reply in replies {
                pool.inspect(reply)
            }
            return replies
        case .cluster(let router):
            return try await router.execute(commands, route: try RedisCommandRoute.of(commands: commands), extraTimeout: extraTimeout)
        }
    }

    /// Sends a command and returns its reply.
    ///
    /// Arguments are binary-safe; pass strings, bytes or numbers:
    /// ```swift
    /// let reply = try await client.send(["HSET", "user:1", "email", RedisArgument(email)])
    /// ```
    /// - Parameter command: The command name followed by its arguments.
    /// - Returns: The reply. A nil reply is ``RESPValue/null``; arrays may contain ``RESPValue/error(_:)`` elements.
    /// - Throws: ``RedisClientError``: `commandError` with the server's text when Redis answers with an error,
    ///   `notConnected` when no connection is up (not sent), `timeout` when the reply is late, `connectionClosed` when the
    ///   connection closed before the reply (the command may have run).
    @discardableResult
    public func send(_ command: [RedisArgument]) async throws -> RESPValue {
        let reply = try await self.sendRaw(command)
        if case .error(let message) = reply {
            throw RedisClientError(.commandError, message: message)
        }
        return reply
    }

    /// Sends a command and returns its reply; the variadic form of ``send(_:)-([RedisArgument])``.
    /// - Parameter command: The command name followed by its arguments.
    /// - Returns: The reply.
    /// - Throws: ``RedisClientError``, as ``send(_:)-([RedisArgument])``.
    @discardableResult
    public func send(_ command: RedisArgument...) async throws -> RESPValue {
        try await self.send(command)
    }

    /// Sends several commands in one write on one connection and returns their replies, in order.
    ///
    /// Commands are not atomic (other clients' commands may run between them); use ``transaction(_:)`` for that.
    /// - Parameter commands: The commands, each a command name followed by its arguments.
    /// - Returns: One reply per command; a Redis error reply is returned as a ``RESPValue/error(_:)`` element, not thrown.
    /// - Throws: ``RedisClientError`` when the replies could not be received (`notConnected`, `timeout`, `connectionClosed`).
    public func pipeline(_ commands: [[RedisArgument]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        switch self.backend {
        case .pool:
            return try await self.pipelineRaw(commands)
        case .cluster(let router):
            guard let observer = self.observer else { return try await router.pipeline(commands) }
            return try await Self.observing(observer, Self.name(of: commands)) { try await router.pipeline(commands) }
        }
    }

    // MARK: Observing

    /// Runs `operation` and tells `observer` how long it took and how it ended (an error reply counts as a failure).
    private static func observing<Reply>(
        _ observer: RedisClientObserver,
        _ name: String,
        _ operation: () async throws -> Reply
    ) async throws -> Reply {
        let start = ContinuousClock.now
        do {
            let reply = try await operation()
            var error: RedisClientError?
            if let single = reply as? RESPValue, case .error(let message) = single { error = RedisClientError(.commandError, message: message) }
            observer.commandFinished(name, ContinuousClock.now - start, error)
            return reply
        } catch {
            observer.commandFinished(name, ContinuousClock.now - start, error)
            throw error
        }
    }

    /// A command's name for an observer: its first word in capitals, never an argument.
    private static func name(of command: [RedisArgument]) -> String {
        command.first?.description.uppercased() ?? ""
    }

    /// `PIPELINE` for several commands sent together, else the command's name.
    private static func name(of commands: [[RedisArgument]]) -> String {
        commands.count == 1 ? Self.name(of: commands[0]) : "PIPELINE"
    }

    /// Runs commands as one `MULTI`/`EXEC` transaction, sent in one write on one connection.
    /// - Parameter commands: The commands, each a command name followed by its arguments.
    /// - Returns: The `EXEC` reply: one reply per command; a command that failed while running (such as `WRONGTYPE`) is a
    ///   ``RESPValue/error(_:)`` element, and the other commands still ran, as Redis does.
    /// - Throws: ``RedisClientError`` with code `commandError` when Redis rejected the transaction (for example a
    ///   syntax error in one command: nothing ran); the message holds Redis' first error.
    ///   `notConnected`, `timeout` or `connectionClosed` as for ``send(_:)-([RedisArgument])``.
    public func transaction(_ commands: [[RedisArgument]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        var batch: [[RedisArgument]] = [["MULTI"]]
        batch.reserveCapacity(commands.count + 2)
        batch.append(contentsOf: commands)
        batch.append(["EXEC"])
        let replies = try await self.pipelineRaw(batch)
        guard let exec = replies.last else {
            throw RedisClientError(.unexpectedReply, message: "no reply to EXEC")
        }
        switch exec {
        case .array(let results):
            return results
        case .error(let message):
            let firstError = replies.dropLast().lazy.compactMap(\.errorMessage).first
            throw RedisClientError(.commandError, message: firstError.map { "\(message) (\($0))" } ?? message)
        default:
            throw RedisClientError(.unexpectedReply, message: "unexpected reply to EXEC: \(exec)")
        }
    }
}
