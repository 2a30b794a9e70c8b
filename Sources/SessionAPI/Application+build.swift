import Hummingbird
import Logging
import NIOCore
import RedisClient
import ServiceLifecycle

/// The stores behind the API, chosen once from the configuration, plus the services they need running.
package struct AppStores: Sendable {
    package let users: any UserStore
    /// `nil` when `AUTH_TYPE` is not a session mode.
    package let sessions: (any SessionStore)?
    package let services: [any Service]

    package init(users: any UserStore, sessions: (any SessionStore)?, services: [any Service] = []) {
        self.users = users
        self.sessions = sessions
        self.services = services
    }

    /// Opens the stores `configuration` names. Nothing here needs Redis to be up: a Redis client is
    /// returned in `services`, to be run by the application (or by `withStores`), and connects by itself.
    /// - Throws: `StoreError` when a data file is unreadable, `ConfigurationError` for an unusable setting.
    package static func open(_ configuration: AppConfiguration, logger: Logger) async throws -> AppStores {
        var services: [any Service] = []
        var redis: RedisClient?
        if let url = configuration.redisURL, configuration.userStore == .redis || configuration.authType == .sessionRedisAuth {
            var redisConfiguration: RedisClientConfiguration
            do {
                redisConfiguration = try RedisClientConfiguration(url: url)
            } catch {
                throw ConfigurationError(variable: "REDIS_URL", reason: error.message)
            }
            redisConfiguration.commandTimeout = .milliseconds(configuration.redisCommandTimeoutMilliseconds)
            var redisLogger = logger
            redisLogger[metadataKey: "redis"] = .string("\(redisConfiguration)")
            let client = RedisClient(configuration: redisConfiguration, logger: redisLogger)
            services.append(client)
            redis = client
        }
        let keys = RedisKeys(prefix: configuration.redisPrefix)

        let users: any UserStore
        switch (configuration.userStore, redis) {
        case (.redis, let client?):
            users = RedisUserStore(client: client, keys: keys)
        default:
            users = try await JSONFileUserStore(directory: configuration.dataDirectory)
        }

        let expiry = SessionExpiry(duration: configuration.sessionDuration)
        let sessions: (any SessionStore)?
        switch configuration.authType {
        case nil, .basicAuth:
            sessions = nil
        case .sessionAuth:
            sessions = MemorySessionStore(expiry: SessionExpiry(duration: 0))
        case .sessionExpAuth:
            sessions = MemorySessionStore(expiry: expiry)
        case .sessionDBAuth:
            sessions = try await JSONFileSessionStore(directory: configuration.dataDirectory, expiry: expiry)
        case .sessionRedisAuth:
            guard let redis else { throw ConfigurationError(variable: "AUTH_TYPE", reason: "'session_redis_auth' needs REDIS_URL") }
            sessions = RedisSessionStore(
                client: redis,
                keys: keys,
                duration: configuration.sessionDuration,
                idleTimeout: configuration.sessionIdleTimeout
            )
        }
        return AppStores(users: users, sessions: sessions, services: services)
    }

    /// Opens the stores, runs their services (the Redis client) around `body`, then stops them.
    /// For commands and tests; the server runs the services as part of the application instead.
    package static func withStores<T: Sendable>(
        _ configuration: AppConfiguration,
        logger: Logger,
        _ body: @escaping @Sendable (AppStores) async throws -> T
    ) async throws -> T {
        let stores = try await AppStores.open(configuration, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            for service in stores.services {
                group.addTask {
                    try await service.run()
                    return nil
                }
            }
            defer { group.cancelAll() }
            return try await body(stores)
        }
    }
}

/// Builds the application that `session-api serve` runs, and that the tests run.
package func buildApplication(_ configuration: AppConfiguration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "session-api")
    logger.logLevel = configuration.logLevel
    let stores = try await AppStores.open(configuration, logger: logger)
    return buildApplication(configuration, stores: stores, logger: logger)
}

/// Builds the application around stores made by the caller.
package func buildApplication(_ configuration: AppConfiguration, stores: AppStores, logger: Logger) -> some ApplicationProtocol {
    let router = buildRouter(configuration, stores: stores)
    var app = Application(
        router: router,
        // Idle keep-alive connections are closed after a minute (slow or stuck clients cannot hold sockets
        // forever); unparsable requests get a JSON error instead of an empty 400.
        server: .http1(configuration: .init(additionalChannelHandlers: [MalformedRequestHandler()], idleTimeout: .seconds(60))),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "session-api"),
        logger: logger
    )
    app.addServices(stores.services)
    return app
}

/// The routes and middleware of the API. Middleware order, outermost first: request log (client
/// address), CORS, error mapping, authentication; so every error, 401/403 included, is JSON with CORS headers.
package func buildRouter(_ configuration: AppConfiguration, stores: AppStores) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self, options: [.autoGenerateHeadEndpoints])
    let clientAddress = ClientAddress(trustedProxies: configuration.trustedProxies)
    let hasher = PasswordHasher(cost: configuration.passwordHashCost)
    router.add(middleware: RequestLogMiddleware(clientAddress: clientAddress))
    router.add(middleware: CORSForAPIMiddleware())
    router.add(middleware: ErrorMiddleware())
    if let authenticator = makeAuthenticator(configuration, stores: stores, hasher: hasher) {
        router.add(middleware: AuthMiddleware(authenticator: authenticator, exclusions: .standard))
    }

    let routes = RouteTable(router: router)
    HealthController(users: stores.users, sessions: stores.sessions).addRoutes(to: routes)
    IndexController(users: stores.users).addRoutes(to: routes)
    UserController(users: stores.users, sessions: stores.sessions, hasher: hasher).addRoutes(to: routes)
    if let sessions = stores.sessions {
        SessionController(
            users: stores.users,
            sessions: sessions,
            hasher: hasher,
            cookieName: configuration.sessionName,
            cookieSecure: configuration.sessionCookieSecure,
            clientAddress: clientAddress
        ).addRoutes(to: routes)
    }
    routes.finish()
    return router
}

private func makeAuthenticator(_ configuration: AppConfiguration, stores: AppStores, hasher: PasswordHasher) -> Authenticator? {
    switch configuration.authType {
    case nil:
        return nil
    case .basicAuth:
        return .basic(users: stores.users, hasher: hasher)
    case .sessionAuth, .sessionExpAuth, .sessionDBAuth, .sessionRedisAuth:
        guard let sessions = stores.sessions else { return nil }
        return .session(cookieName: configuration.sessionName, store: sessions, users: stores.users, hasher: hasher)
    }
}
