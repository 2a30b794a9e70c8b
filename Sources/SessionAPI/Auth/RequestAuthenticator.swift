import Hummingbird
import Logging

/// One way of authenticating a request (Basic credentials, a session cookie), in hummingbird-auth's model:
/// it returns the user the credentials name, or nothing, and says whether credentials of its kind were sent
/// at all, which tells the original's 401 (none) from its 403 (ones that name no user).
package protocol RequestAuthenticator: Sendable {
    /// The user that `request`'s credentials name; `nil` when there are none or they name nobody.
    /// - Throws: only when a store cannot answer (a `StoreError`, answered 503), never for bad credentials.
    func authenticate(_ request: Request, logger: Logger) async throws -> AuthenticatedUser?

    /// Whether `request` carries credentials this authenticator counts, good or bad.
    func carriesCredentials(_ request: Request) -> Bool
}
