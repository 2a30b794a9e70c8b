import Hummingbird

/// `/api/v1/status`, `/stats`, and the two routes that only answer an error, as in the original.
package struct IndexController: Sendable {
    let users: any UserStore

    package func addRoutes(to routes: RouteTable) {
        routes.on("/api/v1/status", .get) { _, _ in JSONResponse.statusOK() }
        routes.on("/api/v1/stats", .get) { _, _ in try await self.stats() }
        routes.on("/api/v1/unauthorized", .get) { _, _ in throw APIError(.unauthorized) }
        routes.on("/api/v1/forbidden", .get) { _, _ in throw APIError(.forbidden) }
    }

    func stats() async throws -> Response {
        try JSONResponse.encode(["users": try await self.users.count()])
    }
}
