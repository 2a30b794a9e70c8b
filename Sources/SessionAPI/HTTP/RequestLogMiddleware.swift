import Hummingbird
import Logging

/// Puts the client's address on every log line of a request and logs each request at debug level
/// (method, path, status, duration). Never logs cookies or credentials.
package struct RequestLogMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    let clientAddress: ClientAddress

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let client = self.clientAddress.address(of: request, context: context) {
            context.logger[metadataKey: "client_ip"] = .string(client)
        }
        let start = ContinuousClock.now
        let response = try await next(request, context)
        if context.logger.logLevel <= .debug {
            let elapsed = ContinuousClock.now - start
            context.logger.debug(
                "request",
                metadata: [
                    "method": .string(request.method.rawValue),
                    "path": .string(request.uri.path),
                    "status": .stringConvertible(response.status.code),
                    "duration_us": .stringConvertible(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000),
                ]
            )
        }
        return response
    }
}
