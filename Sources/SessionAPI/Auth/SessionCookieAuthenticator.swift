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

    /// A cookie without the shape of a session ID is refused before any store is asked.
    package func authenticate(_ request: Request, logger: Logger) async throws -> AuthenticatedUser? {
        guard let sessionID = self.cookie.sessionID(in: request),
            let userID = try await self.sessions.userID(sessionID: sessionID),
            let user = try await self.users.user(id: userID)
        else { return nil }
        return AuthenticatedUser(user: user, sessionID: sessionID)
    }

    /// The cookie, or (as the original counts credentials) an `Authorization` header.
    package func carriesCredentials(_ request: Request) -> Bool {
        self.cookie.value(in: request) != nil || request.headers[.authorization] != nil
    }
}
