import Hummingbird
import Logging

/// Finds the client's address for the request's log lines and logs each request at debug level
/// (method, path, status, duration, client_ip). Never logs cookies or credentials.
package struct RequestLogMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    let clientAddress: ClientAddress

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.clientIP = self.clientAddress.address(of: request, context: context)
        let start = ContinuousClock.now
        let response = try await next(request, context)
        if context.logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - start
            context.logger.debug(
                "request",
                metadata: context.logMetadata([
                    "method": .string(request.method.rawValue),
                    "path": .string(request.uri.path),
                    "status": .stringConvertible(response.status.code),
                    "duration_us": .stringConvertible(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000),
                ])
            )
        }
        return response
    }
}
