import Hummingbird
import Logging
import NIOCore
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

    /// Opens the stores `configuration` names.
    /// - Throws: `StoreError` when a data file is unreadable, `ConfigurationError` for an unusable setting.
    package static func open(_ configuration: AppConfiguration, logger: Logger) async throws -> AppStores {
        let users = try await JSONFileUserStore(directory: configuration.dataDirectory)
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
            throw ConfigurationError(variable: "AUTH_TYPE", reason: "session_redis_auth is not available yet")
        }
        return AppStores(users: users, sessions: sessions)
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
