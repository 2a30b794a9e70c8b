import Logging
import NIOCore
import NIOPosix

extension RedisConnection {
    /// What a new connection sends before it is handed out: credentials, database, and what it checks.
    struct Handshake: Sendable {
        var username: String?
        var password: String?
        var database: Int
        /// Check with `ROLE` that the server is a master (Sentinel mode), instead of a `PING`.
        var requiresMaster: Bool

        /// The handshake of a data connection made with `configuration`.
        init(configuration: RedisClientConfiguration, requiresMaster: Bool = false) {
            self.init(
                username: configuration.username,
                password: configuration.password,
                database: configuration.database,
                requiresMaster: requiresMaster
            )
        }

        init(username: String?, password: String?, database: Int = 0, requiresMaster: Bool = false) {
            self.username = username
            self.password = password
            self.database = database
            self.requiresMaster = requiresMaster
        }
    }

    /// Connects to the configured endpoint on `eventLoop` and runs the handshake (`AUTH`, `SELECT`, `PING`) before
    /// returning, so no user command can be sent before it.
    static func connect(
        configuration: RedisClientConfiguration,
        tls: RedisTLSContext?,
        eventLoop: any EventLoop,
        logger: Logger
    ) async throws -> RedisConnection {
        try await Self.connect(
            to: configuration.endpoint,
            handshake: Handshake(configuration: configuration),
            tls: tls,
            connectTimeout: TimeAmount(configuration.connectTimeout),
            commandTimeout: TimeAmount(configuration.commandTimeout),
            eventLoop: eventLoop,
            logger: logger
        )
    }

    /// Connects to `endpoint` on `eventLoop`, sets up TLS when `tls` is given, and runs `handshake` before returning, so
    /// no user command can be sent before it.
    ///
    /// The connect, the TLS handshake and the Redis handshake each have `connectTimeout`.
    /// - Parameter pushHandler: For a subscriber connection: receives the pub/sub messages, on the event loop.
    /// - Throws: ``RedisClientError`` with code `connectFailed` (the underlying error says why; for TLS it is the
    ///   NIOSSL error, and the message says whether verification failed).
    static func connect(
        to endpoint: RedisClientConfiguration.Endpoint,
        handshake: Handshake,
        tls: RedisTLSContext?,
        connectTimeout: TimeAmount,
        commandTimeout: TimeAmount,
        eventLoop: any EventLoop,
        logger: Logger,
        pushHandler: RedisChannelHandler.PushHandler? = nil
    ) async throws -> RedisConnection {
        let sslContext = try await tls?.sslContext()
        let bootstrap = ClientBootstrap(group: eventLoop).connectTimeout(connectTimeout)
        let host: String? =
            switch endpoint.base {
            case .tcp(let host, _): host
            case .unixSocket: nil
            }
        let initializer: @Sendable (any Channel) -> EventLoopFuture<(RedisConnection, EventLoopFuture<Void>?)> = { channel in
            channel.eventLoop.makeCompletedFuture {
                var tlsHandshake: EventLoopFuture<Void>?
                if let tls, let sslContext {
                    let watcher = RedisTLSHandshakeHandler(eventLoop: channel.eventLoop, timeout: connectTimeout)
                    try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(context: sslContext, host: host))
                    try channel.pipeline.syncOperations.addHandler(watcher)
                    tlsHandshake = watcher.handshakeFuture
                }
                let handler = try RedisChannelHandler(eventLoop: channel.eventLoop, logger: logger, pushHandler: pushHandler)
                try channel.pipeline.syncOperations.addHandler(handler)
                return (RedisConnection(channel: channel, handler: handler, commandTimeout: commandTimeout), tlsHandshake)
            }
        }

        let connection: RedisConnection
        let tlsHandshake: EventLoopFuture<Void>?
        do {
            switch endpoint.base {
            case .tcp(let host, let port):
                if let address = try? SocketAddress(ipAddress: host, port: port) {
                    // An IP literal needs no resolver (and no Happy Eyeballs round on a thread pool).
                    (connection, tlsHandshake) = try await bootstrap.connect(to: address, channelInitializer: initializer)
                } else {
                    (connection, tlsHandshake) = try await bootstrap.connect(host: host, port: port, channelInitializer: initializer)
                }
            case .unixSocket(let path):
                (connection, tlsHandshake) = try await bootstrap.connect(unixDomainSocketPath: path, channelInitializer: initializer)
            }
        } catch {
            throw RedisClientError(.connectFailed, message: "could not connect to Redis at \(endpoint)", underlyingError: error)
        }

        if let tls, let tlsHandshake {
            do {
                try await tlsHandshake.get()
            } catch {
                connection.close(because: RedisClientError(.connectionClosed, message: "the TLS handshake failed"))
                let tlsError = RedisTLSContext.tlsError(in: error)
                throw RedisClientError(
                    .connectFailed,
                    message: tlsError.map { RedisTLSContext.explain($0, endpoint: endpoint, afterHandshake: false) }
                        ?? "the TLS handshake with Redis at \(endpoint) did not complete: \((error as? RedisClientError)?.message ?? "\(error)")",
                    underlyingError: tlsError ?? error
                )
            }
            if tls.settings.verification == .none {
                logger.warning("TLS certificate verification is off for Redis (verify=none): the server is not authenticated")
            }
        }

        do {
            try await connection.handshake(handshake, endpoint: endpoint, timeout: connectTimeout)
        } catch {
            connection.close(because: RedisClientError(.connectionClosed, message: "the Redis handshake failed"))
            if tls != nil, let tlsError = RedisTLSContext.tlsError(in: error) {
                throw RedisClientError(
                    .connectFailed,
                    message: RedisTLSContext.explain(tlsError, endpoint: endpoint, afterHandshake: true),
                    underlyingError: tlsError
                )
            }
            throw error
        }
        return connection
    }

    /// Sends `AUTH` (when a password is configured), `SELECT` (when the database is not 0) and `PING` (or `ROLE`) in one write.
    private func handshake(_ handshake: Handshake, endpoint: RedisClientConfiguration.Endpoint, timeout: TimeAmount) async throws {
        var commands: [[RedisArgument]] = []
        var names: [String] = []
        if let password = handshake.password {
            if let username = handshake.username {
                commands.append(["AUTH", RedisArgument(username), RedisArgument(password)])
            } else {
                commands.append(["AUTH", RedisArgument(password)])
            }
            names.append("AUTH")
        }
        if handshake.database != 0 {
            commands.append(["SELECT", RedisArgument(handshake.database)])
            names.append("SELECT \(handshake.database)")
        }
        if handshake.requiresMaster {
            commands.append(["ROLE"])
            names.append("ROLE")
        } else {
            commands.append(["PING"])
            names.append("PING")
        }

        let replies: [RESPValue]
        do {
            replies = try await self.pipeline(commands, timeout: timeout)
        } catch {
            throw RedisClientError(
                .connectFailed,
                message: "Redis at \(endpoint) did not complete the \(names.joined(separator: "/")) handshake",
                underlyingError: error
            )
        }
        for (name, reply) in zip(names, replies) {
            if case .error(let message) = reply {
                throw RedisClientError(.connectFailed, message: "Redis at \(endpoint) refused \(name): \(message)")
            }
        }
        if handshake.requiresMaster, let role = replies.last {
            let name = role.array?.first?.string ?? "\(role)"
            guard name == "master" else {
                throw RedisClientError(.connectFailed, message: "Redis at \(endpoint) is not a master (ROLE says \(name))")
            }
        }
    }
}
