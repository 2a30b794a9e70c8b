import Hummingbird
import Logging

/// The original's `before_request` check, for every path not in `exclusions`:
/// no credentials at all -> 401, credentials that name no user -> 403, else the user goes in the context.
package struct AuthMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    let authenticator: Authenticator
    let exclusions: AuthExclusions

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !self.exclusions.isExcluded(request.uri.path) else {
            return try await next(request, context)
        }
        switch try await self.authenticator.authenticate(request) {
        case .noCredentials:
            throw APIError(.unauthorized)
        case .rejected:
            throw APIError(.forbidden)
        case .authenticated(let user, let sessionID):
            var context = context
            context.currentUser = user
            context.sessionID = sessionID
            return try await next(request, context)
        }
    }
}
