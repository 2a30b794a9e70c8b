/// What the server records about the client that logged in; shown to the user and operators, never used for auth.
package struct SessionMetadata: Sendable, Equatable {
    package var ip: String?
    package var userAgent: String?

    package init(ip: String? = nil, userAgent: String? = nil) {
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// One live session as its user and operators see it: a public handle, never the session ID (the cookie).
package struct SessionInfo: Sendable, Equatable {
    /// `SessionID.handle(of:)`: the SHA-256 of the session ID (what Redis keys the session by).
    package var handle: String
    package var userID: String
    /// `YYYY-MM-DDTHH:MM:SS` UTC.
    package var createdAt: String
    /// When the session ends at the latest; `nil` when it never expires.
    package var expiresAt: String?
    package var metadata: SessionMetadata

    package init(handle: String, userID: String, createdAt: String, expiresAt: String?, metadata: SessionMetadata) {
        self.handle = handle
        self.userID = userID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.metadata = metadata
    }
}

/// What a store holds for one session ID, for operators (`session-api session inspect`): never the ID itself.
package struct SessionInspection: Sendable, Equatable {
    /// `SessionID.handle(of:)` of the ID.
    package var handle: String
    /// Where it is kept: the Redis key, or the file and the record's id.
    package var location: String
    /// The stored fields by their stored names (the session ID itself left out).
    package var fields: [String: String]
    /// Redis: seconds before the key expires (`-1`: no TTL); `nil` where the store keeps no TTL.
    package var timeToLive: Int?
    /// Redis: the user's index (`<prefix>user-sessions:<user id>`) and this session's score in it (its expiry in
    /// epoch seconds; `nil`: not in the index).
    package var index: (key: String, score: String?)?
    /// Whether the server would accept the session now.
    package var isLive: Bool

    package init(
        handle: String,
        location: String,
        fields: [String: String],
        timeToLive: Int? = nil,
        index: (key: String, score: String?)? = nil,
        isLive: Bool
    ) {
        self.handle = handle
        self.location = location
        self.fields = fields
        self.timeToLive = timeToLive
        self.index = index
        self.isLive = isLive
    }

    package static func == (left: Self, right: Self) -> Bool {
        left.handle == right.handle && left.location == right.location && left.fields == right.fields
            && left.timeToLive == right.timeToLive && left.index?.key == right.index?.key && left.index?.score == right.index?.score
            && left.isLive == right.isLive
    }
}

/// Where sessions live: session ID -> user ID, with the expiry rules of the auth mode.
///
/// Implementations: `MemorySessionStore`, `JSONFileSessionStore`, `RedisSessionStore`. Each keeps at most
/// `maximumPerUser` sessions per user: a login past it ends that user's oldest session.
/// Callers pass only well-formed session IDs (see `SessionID.isWellFormed`).
package protocol SessionStore: Sendable {
    /// Starts a session for `userID` and returns its new, random ID; in the same atomic step, ends the
    /// session `previousSessionID` (the one the logging-in client still carried), if any, and the user's
    /// oldest sessions past the per-user bound.
    func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String
    /// The user of a live session; `nil` when the session is unknown or expired.
    func userID(sessionID: String) async throws -> String?
    /// Ends a session; `false` when there was none.
    func deleteSession(sessionID: String) async throws -> Bool
    /// The live sessions of a user, newest first.
    func sessions(userID: String) async throws -> [SessionInfo]
    /// Ends the session `handle` if it is one of `userID`'s; `false` when it is not.
    func deleteSession(userID: String, handle: String) async throws -> Bool
    /// Ends every session of a user but `keeping` (a session ID), and returns how many ended.
    @discardableResult
    func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int
    /// How many live sessions the store holds, every user's (never with `KEYS` on Redis).
    func count() async throws -> Int
    /// What the store holds for `sessionID`, live or not; `nil` when it holds nothing.
    func inspect(sessionID: String) async throws -> SessionInspection?
    /// Throws when the store cannot serve requests now (for `/readyz`).
    func checkReady() async throws
}

extension SessionStore {
    /// Ends every session of a user (the user was deleted).
    package func deleteSessions(userID: String) async throws {
        try await self.deleteSessions(userID: userID, keeping: nil)
    }
}
