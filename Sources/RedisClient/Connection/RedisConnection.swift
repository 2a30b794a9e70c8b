import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One connection to Redis: a channel whose pipeline ends in a ``RedisChannelHandler``.
///
/// Commands may be sent from any task. Off the event loop they are put in an inbox, and the first one of a batch
/// schedules a single drain on the event loop: thousands of concurrent callers cost one task hop per loop pass, not one
/// each. On the loop, the handler encodes them, flushes once per loop pass and matches replies in order.
/// Sendable: it holds the channel, a loop-bound handler reference and a lock-protected inbox.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    /// Writes sent from other threads, waiting for the event loop to drain them.
    private let inbox = Mutex<[RedisChannelHandler.Write]>([])
    /// The reply limit for commands sent without an explicit timeout.
    let commandTimeout: TimeAmount

    var eventLoop: any EventLoop { self.channel.eventLoop }

    /// Wraps a channel whose pipeline already holds `handler`. Call on the channel's event loop.
    init(channel: any Channel, handler: RedisChannelHandler, commandTimeout: TimeAmount) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.commandTimeout = commandTimeout
    }

    /// Sends one command and waits for its reply. A Redis error reply is returned as ``RESPValue/error(_:)``.
    /// - Throws: ``RedisClientError`` (`timeout`, `connectionClosed`, `notConnected`, `protocolError`).
    func send(_ command: [RedisArgument], timeout: TimeAmount? = nil) async throws -> RESPValue {
        let timeout = timeout ?? self.commandTimeout
        return try await withCheckedThrowingContinuation { (continuation: RedisChannelHandler.Promise) in
            self.submit(.command(command, timeout: timeout, promise: continuation))
        }
    }

    /// Sends several commands in one write and waits for all their replies, in order. Error replies are returned as
    /// ``RESPValue/error(_:)`` elements.
    /// - Throws: ``RedisClientError`` (`timeout`, `connectionClosed`, `notConnected`, `protocolError`).
    func pipeline(_ commands: [[RedisArgument]], timeout: TimeAmount? = nil) async throws -> [RESPValue] {
        let timeout = timeout ?? self.commandTimeout
        let reply = try await withCheckedThrowingContinuation { (continuation: RedisChannelHandler.Promise) in
            self.submit(.pipeline(commands, timeout: timeout, promise: continuation))
        }
        guard case .array(let replies) = reply, replies.count == commands.count else {
            throw RedisClientError(.unexpectedReply, message: "a pipeline of \(commands.count) commands got a mismatched reply")
        }
        return replies
    }

    /// Hands `write` to the handler: directly on the event loop, else through the inbox.
    private func submit(_ write: RedisChannelHandler.Write) {
        if self.eventLoop.inEventLoop {
            self.handler.value.write(write)
            return
        }
        let isFirst = self.inbox.withLock { inbox in
            inbox.append(write)
            return inbox.count == 1
        }
        if isFirst {
            self.eventLoop.execute {
                self.drainInbox()
            }
        }
    }

    /// Writes everything in the inbox. Runs on the event loop; swaps the inbox with the handler's spare array, so a
    /// steady stream of commands allocates no arrays.
    private func drainInbox() {
        let handler = self.handler.value
        var batch = handler.takeSpareWrites()
        self.inbox.withLock { swap(&$0, &batch) }
        for write in batch {
            handler.write(write)
        }
        batch.removeAll(keepingCapacity: true)
        handler.returnSpareWrites(batch)
    }

    /// Closes the connection; pending commands fail with `error`. Returns at once; see ``closeFuture``.
    func close(because error: RedisClientError) {
        if self.eventLoop.inEventLoop {
            self.handler.value.close(because: error)
        } else {
            self.eventLoop.execute {
                self.handler.value.close(because: error)
            }
        }
    }

    /// Completes when the channel has closed.
    var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }
}

// MARK: - Connecting

extension RedisConnection {
    /// Connects to the configured endpoint on `eventLoop` and runs the handshake (`AUTH`, `SELECT`, `PING`) before
    /// returning, so no user command can be sent before it.
    ///
    /// The connect and the handshake each have ``RedisClientConfiguration/connectTimeout``.
    /// - Throws: ``RedisClientError`` with code `connectFailed` (the underlying error says why).
    static func connect(
        configuration: RedisClientConfiguration,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws -> RedisConnection {
        let connectTimeout = TimeAmount(configuration.connectTimeout)
        let commandTimeout = TimeAmount(configuration.commandTimeout)
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(connectTimeout)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<RedisConnection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler = RedisChannelHandler(eventLoop: channel.eventLoop, logger: logger)
                try channel.pipeline.syncOperations.addHandler(handler)
                return RedisConnection(channel: channel, handler: handler, commandTimeout: commandTimeout)
            }
        }

        let connection: RedisConnection
        do {
            switch configuration.endpoint.base {
            case .tcp(let host, let port):
                if let address = try? SocketAddress(ipAddress: host, port: port) {
                    // An IP literal needs no resolver (and no Happy Eyeballs round on a thread pool).
                    connection = try await bootstrap.connect(to: address, channelInitializer: initializer)
                } else {
                    connection = try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
                }
            case .unixSocket(let path):
                connection = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
            }
        } catch {
            throw RedisClientError(
                .connectFailed,
                message: "could not connect to Redis at \(configuration.endpoint)",
                underlyingError: error
            )
        }

        do {
            try await connection.handshake(configuration: configuration, timeout: connectTimeout)
        } catch {
            connection.close(because: RedisClientError(.connectionClosed, message: "the Redis handshake failed"))
            throw error
        }
        return connection
    }

    /// Sends `AUTH` (when a password is configured), `SELECT` (when the database is not 0) and `PING` in one write.
    private func handshake(configuration: RedisClientConfiguration, timeout: TimeAmount) async throws {
        var commands: [[RedisArgument]] = []
        var names: [String] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(["AUTH", RedisArgument(username), RedisArgument(password)])
            } else {
                commands.append(["AUTH", RedisArgument(password)])
            }
            names.append("AUTH")
        }
        if configuration.database != 0 {
            commands.append(["SELECT", RedisArgument(configuration.database)])
            names.append("SELECT \(configuration.database)")
        }
        commands.append(["PING"])
        names.append("PING")

        let replies: [RESPValue]
        do {
            replies = try await self.pipeline(commands, timeout: timeout)
        } catch {
            throw RedisClientError(
                .connectFailed,
                message: "Redis at \(configuration.endpoint) did not complete the \(names.joined(separator: "/")) handshake",
                underlyingError: error
            )
        }
        for (name, reply) in zip(names, replies) {
            if case .error(let message) = reply {
                throw RedisClientError(.connectFailed, message: "Redis at \(configuration.endpoint) refused \(name): \(message)")
            }
        }
    }
}
