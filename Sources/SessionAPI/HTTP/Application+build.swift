import Hummingbird
import Logging
import NIOCore

/// Builds the application that `session-api serve` runs, and that the tests run.
package func buildApplication(_ configuration: AppConfiguration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "session-api")
    logger.logLevel = configuration.logLevel
    let stores = try await AppStores.open(configuration, logger: logger)
    return try buildApplication(configuration, stores: stores, logger: logger)
}

/// Builds the application around stores made by the caller (`AppStores.open`, or a test's own).
/// - Throws: `ConfigurationError` when a session mode is configured but `stores` has no session store.
package func buildApplication(_ configuration: AppConfiguration, stores: AppStores, logger: Logger) throws -> some ApplicationProtocol {
    let router = try buildRouter(configuration, stores: stores)
    if let warning = configuration.noAuthenticationWarning { logger.warning("\(warning)") }
    var app = Application(
        router: router,
        // Idle keep-alive connections are closed after a minute (slow or stuck clients cannot hold sockets
        // forever); unparsable requests get a JSON error instead of an empty 400.
        server: .http1(configuration: .init(additionalChannelHandlers: [MalformedRequestHandler()], idleTimeout: .seconds(60))),
        configuration: .init(address: .hostname(configuration.listenHost, port: configuration.port), serverName: "session-api"),
        logger: logger
    )
    app.addServices(stores.services)
    return app
}

/// The routes and middleware of the API. Middleware order, outermost first: request log (client
/// address), CORS, error mapping, authentication; so every error, 401/403 included, is JSON with CORS headers.
/// - Throws: `ConfigurationError` when a session mode is configured but `stores` has no session store.
package func buildRouter(_ configuration: AppConfiguration, stores: AppStores) throws -> Router<AppRequestContext> {
    try buildRoutes(configuration, stores: stores).router
}

/// The API routes `buildRouter` registers for this configuration (paths as the router spells them,
/// `/api/v1/users/:id`), without the 405, `OPTIONS` and `HEAD` answers it adds: what `openapi.yaml` lists.
/// - Throws: as `buildRouter`.
package func apiRoutes(_ configuration: AppConfiguration, stores: AppStores) throws -> [(path: String, method: HTTPRequest.Method)] {
    try buildRoutes(configuration, stores: stores).routes.registered
}

/// The one place the router is wired, for `buildRouter` and `apiRoutes`.
private func buildRoutes(_ configuration: AppConfiguration, stores: AppStores) throws -> (router: Router<AppRequestContext>, routes: RouteTable) {
    let router = Router(context: AppRequestContext.self, options: [.autoGenerateHeadEndpoints])
    let clientAddress = ClientAddress(trustedProxies: configuration.trustedProxies)
    let hasher = PasswordHasher(configuration)
    // Max-Age follows the session's lifetime where sessions expire (session_auth's never do).
    let lifetime = configuration.authType != .sessionAuth && configuration.sessionDuration > 0 ? configuration.sessionDuration : nil
    let cookie = SessionCookie(name: configuration.sessionCookieName, secure: configuration.sessionCookieSecure, maxAge: lifetime)
    router.add(middleware: RequestLogMiddleware(clientAddress: clientAddress))
    router.add(middleware: NoStoreMiddleware())
    // With AUTH_TYPE unset, no page of another origin may send writes (an open API by accident, even on loopback).
    router.add(middleware: CORSForAPIMiddleware(allowingWrites: configuration.authType != nil))
    router.add(middleware: ErrorMiddleware())

    var sessions: (any SessionStore)?
    if let authType = configuration.authType, authType != .noAuthentication {
        let authenticator: any RequestAuthenticator
        if authType.usesSessions {
            guard let store = stores.sessions else {
                throw ConfigurationError(variable: "AUTH_TYPE", reason: "'\(authType.rawValue)' needs a session store")
            }
            sessions = store
            authenticator = SessionCookieAuthenticator(cookie: cookie, sessions: store, users: stores.users)
        } else {
            authenticator = BasicAuthenticator(
                users: stores.users,
                hasher: hasher,
                cache: configuration.basicAuthCacheSeconds > 0 ? BasicCredentialCache(lifetime: .seconds(configuration.basicAuthCacheSeconds)) : nil,
                throttle: stores.throttle,
                audit: stores.audit
            )
        }
        router.add(middleware: AuthenticationMiddleware<AppRequestContext>(authenticator: authenticator, exclusions: .standard))
    }

    let routes = RouteTable(router: router)
    HealthController(users: stores.users, sessions: sessions).addRoutes(to: routes)
    IndexController(users: stores.users).addRoutes(to: routes)
    UserController(
        users: stores.users,
        sessions: sessions,
        hasher: hasher,
        policy: AdminPolicy(adminEmails: configuration.adminEmails),
        audit: stores.audit
    )
    .addRoutes(to: routes)
    if let sessions {
        SessionController(
            users: stores.users,
            sessions: sessions,
            hasher: hasher,
            cookie: cookie,
            throttle: stores.throttle,
            audit: stores.audit
        )
        .addRoutes(to: routes)
    }
    routes.finish()
    return (router, routes)
}
