import Hummingbird
import HummingbirdAuth

/// The original's `before_request` check, for every path not in `exclusions`: no credentials at all is
/// `AuthenticationError.missingCredentials` (401), credentials that name no user `.rejected` (403); else
/// the identity goes in the context (`AuthRequestContext.identity`) for the handlers.
///
/// Added to the router before any route, it wraps every endpoint and the not-found responder, so it runs
/// before the route's answer is known: an unknown path or a wrong method is 401/403 for a caller without
/// good credentials, as in the original; only an authenticated caller learns of 404 and 405.
package struct AuthenticationMiddleware<Context: AuthRequestContext<AuthenticatedUser> & ClientAddressContext>: RouterMiddleware {
    let authenticator: any RequestAuthenticator
    let exclusions: AuthExclusions

    package init(authenticator: any RequestAuthenticator, exclusions: AuthExclusions) {
        self.authenticator = authenticator
        self.exclusions = exclusions
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !self.exclusions.isExcluded(request.uri.path) else {
            return try await next(request, context)
        }
        guard
            let identity = try await self.authenticator.authenticate(
                request,
                log: AuthenticationLog(logger: context.logger, clientIP: context.clientIP)
            )
        else {
            throw AuthenticationError(self.authenticator.carriesCredentials(request) ? .rejected : .missingCredentials)
        }
        var context = context
        context.identity = identity
        return try await next(request, context)
    }
}
