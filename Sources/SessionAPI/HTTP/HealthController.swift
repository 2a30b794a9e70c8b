import Hummingbird
import Logging

/// Probes for load balancers and orchestrators: `/healthz` (the process answers) and `/readyz`
/// (its stores answer). Both public and cheap.
package struct HealthController: Sendable {
    let users: any UserStore
    let sessions: (any SessionStore)?

    package func addRoutes(to routes: RouteTable) {
        routes.on("/healthz", .get) { _, _ in JSONResponse.statusOK() }
        routes.on("/readyz", .get) { _, context in try await self.ready(context: context) }
    }

    func ready(context: AppRequestContext) async throws -> Response {
        do {
            try await self.users.checkReady()
            try await self.sessions?.checkReady()
        } catch {
            context.logger.warning("not ready", metadata: context.logMetadata(["error": "\(error)"]))
            throw ErrorMiddleware.unavailable
        }
        return JSONResponse.statusOK()
    }
}
