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
public final class RedisClient: Sendable, Service {
    /// The configuration the client was created with.
    public let configuration: RedisClientConfiguration
    let logger: Logger
    private let slots: [RedisConnectionSlot]
    private let nextSlot = Atomic<Int>(0)
    private let runState = Mutex<RunState>(.idle)
    /// The TLS context shared by every connection, when TLS is configured.
    private let tls: RedisTLSContext?
    /// How long a command waits for the first connection: the first attempt's connect plus its handshake.
    private let firstConnectionWait: TimeAmount

    private enum RunState {
        case idle
        case running
        case finished
    }

    /// Creates a client. It connects only when ``run()`` runs.
    /// - Parameters:
    ///   - configuration: Where and how to connect.
    ///   - eventLoopGroup: The event loops the connections run on; NIO's shared `MultiThreadedEventLoopGroup.singleton` by default.
    ///     Without ``RedisClientConfiguration/connectionCount``, the pool has one connection per event loop.
    ///   - logger: Receives connection events (connected, lost, reconnect failures, timeouts). Passwords are never logged.
    public init(
        configuration: RedisClientConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.configuration = configuration
        self.logger = logger
        // The first attempt may take a connect timeout to connect, one for the TLS handshake, one for the Redis handshake.
        self.firstConnectionWait = TimeAmount(configuration.connectTimeout) * (configuration.tls == nil ? 2 : 3)
        self.tls = configuration.tls.map { RedisTLSContext(settings: $0) }
        let eventLoops = Array(eventLoopGroup.makeIterator())
        let count = max(1, configuration.connectionCount ?? eventLoops.count)
        self.slots = (0..<count).map { index in
            RedisConnectionSlot(index: index, eventLoop: eventLoops.isEmpty ? eventLoopGroup.next() : eventLoops[index % eventLoops.count])
        }
    }

    // MARK: Running

    /// Connects every pool connection, keeps them connected (reconnecting with jittered exponential backoff), and
    /// returns when the task is cancelled or a graceful shutdown is triggered, after closing the connections.
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
        self.logger.debug("Redis client starting", metadata: ["redis.endpoint": "\(self.configuration)", "redis.connections": "\(self.slots.count)"])
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for slot in self.slots {
                    group.addTask {
                        await self.maintainConnection(slot)
                    }
                }
            }
        }
        self.runState.withLock { $0 = .finished }
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

    /// Keeps one slot connected until the task is cancelled.
    private func maintainConnection(_ slot: RedisConnectionSlot) async {
        var logger = self.logger
        logger[metadataKey: "redis.connection"] = "\(slot.index)"
        var failedAttempts = 0
        var hasBeenUnavailable = false
        while !Task.isCancelled {
            do {
                let connection = try await RedisConnection.connect(
                    configuration: self.configuration,
                    tls: self.tls,
                    eventLoop: slot.eventLoop,
                    logger: logger
                )
                if hasBeenUnavailable {
                    logger.info("Reconnected to Redis", metadata: ["redis.endpoint": "\(self.configuration.endpoint)"])
                } else {
                    logger.debug("Connected to Redis", metadata: ["redis.endpoint": "\(self.configuration.endpoint)"])
                }
                failedAttempts = 0
                hasBeenUnavailable = true
                slot.connectionEstablished(connection)
                await withTaskCancellationHandler {
                    try? await connection.closeFuture.get()
                } onCancel: {
                    connection.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
                }
                slot.connectionUnavailable(RedisClientError(.connectionClosed, message: "the connection to Redis closed"))
                if Task.isCancelled {
                    break
                }
                logger.warning("Lost the connection to Redis; reconnecting", metadata: ["redis.endpoint": "\(self.configuration.endpoint)"])
            } catch {
                let error =
                    error as? RedisClientError
                    ?? RedisClientError(.connectFailed, message: "could not connect to Redis", underlyingError: error)
                slot.connectionUnavailable(error)
                if Task.isCancelled {
                    break
                }
                failedAttempts += 1
                // Log the first failure loudly; the retries that follow only at debug level.
                logger.log(
                    level: failedAttempts == 1 ? .warning : .debug,
                    "Could not connect to Redis; retrying",
                    metadata: ["redis.error": "\(error)", "redis.attempt": "\(failedAttempts)"]
                )
            }
            do {
                try await Task.sleep(for: self.backoff(afterFailures: failedAttempts))
            } catch {
                break
            }
        }
        slot.shutDown()?.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
    }

    /// The jittered wait before the next connect attempt: `initial * 2^(failures - 1)`, capped at `maximum`, then drawn
    /// at random between half and all of it.
    func backoff(afterFailures failures: Int) -> Duration {
        let policy = self.configuration.reconnectBackoff
        var delay = policy.initial
        for _ in 1..<max(1, min(failures, 32)) where delay < policy.maximum {
            delay *= 2
        }
        let seconds = min(delay, policy.maximum) / .seconds(1)
        guard seconds > 0 else { return .zero }
        return .seconds(Double.random(in: (seconds / 2)...seconds))
    }

    // MARK: Sending

    /// A connection for the next command: the one on the caller's event loop, else the next connected one in turn.
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
            message: "not connected to Redis at \(self.configuration.endpoint)\(firstError.map { ": \($0.message)" } ?? "")",
            underlyingError: firstError
        )
    }

    /// Sends a command and returns its reply as is, error replies included.
    func sendRaw(_ command: [RedisArgument]) async throws -> RESPValue {
        try await self.connection().send(command)
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
        return try await self.connection().pipeline(commands)
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
        let replies = try await self.connection().pipeline(batch)
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
