import Hummingbird
import Logging

/// The session cookie, looked up in the session store, then its user in the user store.
package struct SessionCookieAuthenticator: RequestAuthenticator {
    let cookie: SessionCookie
    let sessions: any SessionStore
    let users: any UserStore

    package init(cookie: SessionCookie, sessions: any SessionStore, users: any UserStore) {
        self.cookie = cookie
        self.sessions = sessions
        self.users = users
    }

    /// A cookie without the shape of a session ID, or sent twice with different values, is refused before
    /// any store is asked.
    package func authenticate(_ request: Request, log: AuthenticationLog) async throws -> AuthenticatedUser? {
        let sessionID: Substring
        switch self.cookie.value(in: request) {
        case .absent:
            return nil
        case .conflicting:
            log.warning("refused: the session cookie came more than once with different values (cookie tossing?)")
            return nil
        case .one(let value):
            sessionID = value
        }
        guard SessionID.isWellFormed(sessionID) else { return nil }
        let id = String(sessionID)
        guard let userID = try await self.sessions.userID(sessionID: id), let user = try await self.users.user(id: userID) else {
            return nil
        }
        return AuthenticatedUser(user: user, sessionID: id)
    }

    /// The cookie, or (as the original counts credentials) an `Authorization` header.
    package func carriesCredentials(_ request: Request) -> Bool {
        self.cookie.value(in: request) != .absent || request.headers[.authorization] != nil
    }
}
