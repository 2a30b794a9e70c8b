import Hummingbird

/// `Cache-Control: no-store` on every answer of the routes that carry user data or set the session cookie
/// (`/api/v1/users...`, `/api/v1/auth_session/...`), errors included: no shared cache or back button keeps them.
package struct NoStoreMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path.hasPrefix("/api/v1/users") || path.hasPrefix("/api/v1/auth_session") else {
            return try await next(request, context)
        }
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
