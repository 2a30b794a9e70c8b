import Hummingbird
import Logging

/// The one place where errors become responses, all in the `{"error": "..."}` shape: authentication
/// failures are 401/403, Hummingbird's own errors (404, 413, ...) keep their status, store errors map to
/// 409/503, a full password-hashing queue to 503; anything unexpected is logged and answered 500 without
/// internal detail.
package struct ErrorMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    /// Seconds a client should wait before retrying a 503.
    static let retryAfterSeconds = 1

    package init() {}

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return try error.response(from: request, context: context)
        } catch let error as AuthenticationError {
            if error.code == .throttled {
                return try Self.tooManyRequests(retryAfter: error.retryAfter ?? 1).response(from: request, context: context)
            }
            let status: HTTPResponse.Status = error.code == .missingCredentials ? .unauthorized : .forbidden
            return try APIError(status).response(from: request, context: context)
        } catch let error as PasswordHasher.Overloaded {
            context.logger.warning("password hashing overloaded", metadata: context.logMetadata(["error": "\(error)"]))
            return try Self.unavailable.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            return try APIError(error.status).response(from: request, context: context)
        } catch let error as StoreError {
            return try Self.apiError(for: error, context: context).response(from: request, context: context)
        } catch is CancellationError {
            return try Self.unavailable.response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: context.logMetadata(["error": "\(error)"]))
            return try APIError(.internalServerError).response(from: request, context: context)
        }
    }

    static let unavailable = APIError(.serviceUnavailable, headers: [.retryAfter: String(retryAfterSeconds)])

    /// 429 `{"error": "Too many requests"}` with `Retry-After`.
    static func tooManyRequests(retryAfter: Int) -> APIError {
        APIError(.tooManyRequests, message: "Too many requests", headers: [.retryAfter: String(retryAfter)])
    }

    static func apiError(for error: StoreError, context: AppRequestContext) -> APIError {
        switch error.code {
        case .duplicateEmail:
            return APIError(.conflict, message: "email already registered")
        case .corruptData:
            context.logger.error("store data unreadable", metadata: context.logMetadata(["error": "\(error.message)"]))
            return Self.unavailable
        default:
            context.logger.warning("store unavailable", metadata: context.logMetadata(["error": "\(error.message)"]))
            return Self.unavailable
        }
    }
}
