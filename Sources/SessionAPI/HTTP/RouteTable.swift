import Hummingbird

/// Registers routes on the router and remembers which methods each path has, so that a known path
/// called with another method answers 405 with an `Allow` header instead of 404.
package final class RouteTable {
    package typealias Handler = @Sendable (Request, AppRequestContext) async throws -> Response

    private let router: Router<AppRequestContext>
    private var methods: [(path: String, methods: [HTTPRequest.Method])] = []

    package init(router: Router<AppRequestContext>) {
        self.router = router
    }

    package func on(_ path: String, _ method: HTTPRequest.Method, use handler: @escaping Handler) {
        self.router.on(RouterPath(path), method: method, use: handler)
        if let index = self.methods.firstIndex(where: { $0.path == path }) {
            self.methods[index].methods.append(method)
        } else {
            self.methods.append((path, [method]))
        }
    }

    /// Adds the 405 and OPTIONS answers for every path registered so far.
    package func finish() {
        let all: [HTTPRequest.Method] = [.get, .head, .post, .put, .delete, .patch, .options]
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
