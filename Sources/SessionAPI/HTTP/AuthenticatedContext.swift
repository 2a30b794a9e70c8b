import Hummingbird
import Logging

/// The context of the routes that act for the caller (`/users/me`, logout): the user is not optional,
/// so a handler here cannot forget the check (routes under `RouteTable.onAuthenticated`).
package struct AuthenticatedContext: ChildRequestContext {
    package var coreContext: CoreRequestContextStorage
    package let user: User
    /// The session that authenticated the request; `nil` for Basic auth.
    package let sessionID: String?
    /// See `AppRequestContext.clientIP`.
    package let clientIP: String?

    /// - Throws: 404 when the request has no identity: auth is off (with auth on, the middleware has already
    ///   answered 401/403), where the original's `/users/me` is 404.
    package init(context: AppRequestContext) throws {
        guard let identity = context.identity else { throw APIError(.notFound) }
        self.coreContext = context.coreContext
        self.user = identity.user
        self.sessionID = identity.sessionID
        self.clientIP = context.clientIP
    }

    /// Metadata for a log line about this request: `extra` plus the client's address.
    package func logMetadata(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        if let clientIP = self.clientIP { metadata["client_ip"] = .string(clientIP) }
        return metadata
    }
}
