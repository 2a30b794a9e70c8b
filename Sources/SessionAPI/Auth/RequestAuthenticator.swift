import Hummingbird
import Logging

/// One way of authenticating a request (Basic credentials, a session cookie), in hummingbird-auth's model:
/// it returns the user the credentials name, or nothing, and says whether credentials of its kind were sent
/// at all, which tells the original's 401 (none) from its 403 (ones that name no user).
package protocol RequestAuthenticator: Sendable {
    /// The user that `request`'s credentials name; `nil` when there are none or they name nobody.
    /// - Throws: only when a store or the password hasher cannot answer (503), never for bad credentials.
    func authenticate(_ request: Request, log: AuthenticationLog) async throws -> AuthenticatedUser?

    /// Whether `request` carries credentials this authenticator counts, good or bad.
    func carriesCredentials(_ request: Request) -> Bool
}

/// Where an authenticator says why it refused something worth an operator's look: the request's logger
/// and the client's address. Never a cookie, a password or a hash.
package struct AuthenticationLog: Sendable {
    package let logger: Logger
    package let clientIP: String?

    package init(logger: Logger, clientIP: String?) {
        self.logger = logger
        self.clientIP = clientIP
    }

    package func warning(_ message: Logger.Message) {
        var metadata: Logger.Metadata = [:]
        if let clientIP = self.clientIP { metadata["client_ip"] = .string(clientIP) }
        self.logger.warning(message, metadata: metadata)
    }
}

/// A request context that knows the client's address (for `AuthenticationLog`).
package protocol ClientAddressContext {
    var clientIP: String? { get }
}
