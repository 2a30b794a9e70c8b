import Logging
import NIOCore
import NIOPosix

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
                let handler = try RedisChannelHandler(eventLoop: channel.eventLoop, logger: logger)
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
