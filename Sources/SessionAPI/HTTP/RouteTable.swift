import Hummingbird

/// Registers routes on the router and remembers which methods each path has, so that a known path
/// called with another method answers 405 with an `Allow` header instead of 404.
package final class RouteTable {
    package typealias Handler = @Sendable (Request, AppRequestContext) async throws -> Response
    package typealias AuthenticatedHandler = @Sendable (Request, AuthenticatedContext) async throws -> Response

    private let router: Router<AppRequestContext>
    private let authenticated: RouterGroup<AuthenticatedContext>
    private var methods: [(path: String, methods: [HTTPRequest.Method])] = []

    package init(router: Router<AppRequestContext>) {
        self.router = router
        self.authenticated = router.group(context: AuthenticatedContext.self)
    }

    package func on(_ path: String, _ method: HTTPRequest.Method, use handler: @escaping Handler) {
        self.router.on(RouterPath(path), method: method, use: handler)
        self.record(path, method)
    }

    /// A route that acts for the caller: its handler gets the authenticated user, not an optional one
    /// (404 when auth is off, as the original's `/users/me`).
    package func onAuthenticated(_ path: String, _ method: HTTPRequest.Method, use handler: @escaping AuthenticatedHandler) {
        self.authenticated.on(RouterPath(path), method: method, use: handler)
        self.record(path, method)
    }

    /// The routes registered through `on` and `onAuthenticated`, in order: the API itself, without the
    /// 405, `OPTIONS` and `HEAD` answers the router adds for them.
    package var registered: [(path: String, method: HTTPRequest.Method)] {
        self.methods.flatMap { path, methods in methods.map { (path, $0) } }
    }

    private func record(_ path: String, _ method: HTTPRequest.Method) {
        if let index = self.methods.firstIndex(where: { $0.path == path }) {
            self.methods[index].methods.append(method)
        } else {
            self.methods.append((path, [method]))
        }
    }

    /// Adds the 405 and OPTIONS answers for every path registered so far: every method of RFC 9110 and
    /// PATCH that the path does not have (TRACE and CONNECT too, which would otherwise fall through to 404).
    package func finish() {
        let all: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options, .trace, .connect]
        for (path, registered) in self.methods {
            var allowed = registered
            if registered.contains(.get) { allowed.append(.head) }
            allowed.append(.options)
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            for method in all where !allowed.contains(method) {
                self.router.on(RouterPath(path), method: method) { _, _ -> Response in
                    throw APIError(.methodNotAllowed, headers: [.allow: allow])
                }
            }
            self.router.on(RouterPath(path), method: .options) { _, _ -> Response in
                Response(status: .ok, headers: [.allow: allow])
            }
        }
    }
}
