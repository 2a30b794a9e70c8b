import Hummingbird

/// CORS as the original configures it (`/api/v1/*`, any origin): Hummingbird's middleware answers
/// preflights, and `Access-Control-Allow-Origin: *` is on every API response, as flask-cors sends it
/// even to requests without an `Origin` header.
package struct CORSForAPIMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    private let cors: CORSMiddleware<AppRequestContext>

    /// - Parameter allowingWrites: whether a preflight may allow `POST`/`PUT`/`DELETE` and a JSON
    ///   `Content-Type`; off, pages of other origins can only read (`AUTH_TYPE` unset: nothing protects writes).
    package init(allowingWrites: Bool) {
        self.cors = CORSMiddleware(
            allowOrigin: .all,
            allowHeaders: allowingWrites ? [.accept, .authorization, .contentType, .origin] : [.accept, .origin],
            allowMethods: allowingWrites ? [.get, .head, .post, .put, .delete, .options] : [.get, .head, .options]
        )
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/api/v1/") else {
            return try await next(request, context)
        }
        var response = try await self.cors.handle(request, context: context, next: next)
        if response.headers[.accessControlAllowOrigin] == nil {
            response.headers[.accessControlAllowOrigin] = "*"
        }
        return response
    }
}
