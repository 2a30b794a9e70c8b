/// What the server records about the client that logged in; shown to operators, never used for auth.
package struct SessionMetadata: Sendable, Equatable {
    package var ip: String?
    package var userAgent: String?

    package init(ip: String? = nil, userAgent: String? = nil) {
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// Where sessions live: session ID -> user ID, with the expiry rules of the auth mode.
///
/// Implementations: `MemorySessionStore`, `JSONFileSessionStore`, `RedisSessionStore`.
/// Callers pass only well-formed session IDs (see `SessionID.isWellFormed`).
package protocol SessionStore: Sendable {
    /// Starts a session for `userID` and returns its new, random ID; in the same atomic step, ends the
    /// session `previousSessionID` (the one the logging-in client still carried), if any.
    func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String
    /// The user of a live session; `nil` when the session is unknown or expired.
    func userID(sessionID: String) async throws -> String?
    /// Ends a session; `false` when there was none.
    func deleteSession(sessionID: String) async throws -> Bool
    /// Ends every session of a user (the user was deleted).
    func deleteSessions(userID: String) async throws
    /// Throws when the store cannot serve requests now (for `/readyz`).
    func checkReady() async throws
}
