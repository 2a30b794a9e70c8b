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

    /// Adds the OPTIONS answer of every path registered so far, and, for any other method a path lacks
    /// (PATCH, TRACE, an extension method such as QUERY), 405 with `Allow` instead of the router's 404.
    /// Call it after the last route: the router gives middleware added now only to its not-found answer,
    /// which is where a known path with an unknown method ends up.
    package func finish() {
        var known: [MethodNotAllowedMiddleware.KnownPath] = []
        for (path, registered) in self.methods {
            var allowed = registered
            if registered.contains(.get) { allowed.append(.head) }
            allowed.append(.options)
            let allow = allowed.map(\.rawValue).joined(separator: ", ")
            self.router.on(RouterPath(path), method: .options) { _, _ -> Response in
                Response(status: .ok, headers: [.allow: allow])
            }
            known.append(.init(pattern: path, allow: allow))
        }
        self.router.add(middleware: MethodNotAllowedMiddleware(paths: known))
    }
}

/// Turns the router's 404 for a path that exists (with another method) into 405 with that path's
/// `Allow`. It sits in front of the not-found answer only, so it costs the routed requests nothing.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    struct KnownPath: Sendable {
        /// Path components; one starting with `:` matches any one component, as in the router.
        let components: [Substring]
        let allow: String

        init(pattern: String, allow: String) {
            self.components = pattern.split(separator: "/")
            self.allow = allow
        }

        func matches(_ path: [Substring]) -> Bool {
            path.count == self.components.count
                && zip(self.components, path).allSatisfy { pattern, component in pattern.first == ":" || pattern == component }
        }
    }

    let paths: [KnownPath]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path.split(separator: "/")
        // Where a literal and a parameter both match (`/users/me`, `/users/:id`), both allow the same methods.
        guard let known = self.paths.first(where: { $0.matches(path) }) else {
            return try await next(request, context)
        }
        throw APIError(.methodNotAllowed, headers: [.allow: known.allow])
    }
}
