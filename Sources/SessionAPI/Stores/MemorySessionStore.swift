import Synchronization

/// Sessions in this process's memory (`session_auth`, `session_exp_auth`): lost on restart and not
/// shared between processes, as in the original. Use Redis sessions to run several processes.
package final class MemorySessionStore: SessionStore {
    private struct Entry {
        let userID: String
        let createdAt: Int
        let metadata: SessionMetadata
        /// Orders sessions created in the same second.
        let sequence: Int
    }

    private struct State {
        var sessions: [String: Entry] = [:]
        var nextSequence = 0
    }

    private let state = Mutex(State())
    private let expiry: SessionExpiry
    private let maximumPerUser: Int

    package init(expiry: SessionExpiry, maximumPerUser: Int = SessionID.defaultMaximumPerUser) {
        self.expiry = expiry
        self.maximumPerUser = maximumPerUser
    }

    package func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        let sessionID = SessionID.generate()
        let now = self.expiry.now()
        self.state.withLock { state in
            if self.expiry.duration > 0 {
                state.sessions = state.sessions.filter { !self.expiry.isExpired(createdAt: $0.value.createdAt) }
            }
            if let previousSessionID { state.sessions[previousSessionID] = nil }
            // The user's oldest sessions past the bound end (one place is kept for the new one).
            let own = state.sessions.filter { $0.value.userID == userID }.sorted { $0.value.sequence < $1.value.sequence }
            for (id, _) in own.prefix(max(0, own.count - self.maximumPerUser + 1)) { state.sessions[id] = nil }
            state.sessions[sessionID] = Entry(userID: userID, createdAt: now, metadata: metadata, sequence: state.nextSequence)
            state.nextSequence += 1
        }
        return sessionID
    }

    package func userID(sessionID: String) async throws -> String? {
        self.state.withLock { state in
            guard let entry = state.sessions[sessionID] else { return nil }
            if self.expiry.isExpired(createdAt: entry.createdAt) {
                state.sessions[sessionID] = nil
                return nil
            }
            return entry.userID
        }
    }

    package func deleteSession(sessionID: String) async throws -> Bool {
        self.state.withLock { $0.sessions.removeValue(forKey: sessionID) != nil }
    }

    package func sessions(userID: String) async throws -> [SessionInfo] {
        self.state.withLock { state in
            state.sessions.filter { $0.value.userID == userID && !self.expiry.isExpired(createdAt: $0.value.createdAt) }
                .sorted { $0.value.sequence > $1.value.sequence }
                .map { id, entry in
                    SessionInfo(
                        handle: SessionID.handle(of: id),
                        userID: entry.userID,
                        createdAt: Timestamp.string(epochSeconds: entry.createdAt),
                        expiresAt: self.expiry.expiresAt(createdAt: entry.createdAt).map { Timestamp.string(epochSeconds: $0) },
                        metadata: entry.metadata
                    )
                }
        }
    }

    package func deleteSession(userID: String, handle: String) async throws -> Bool {
        guard SessionID.isHandle(handle) else { return false }
        return self.state.withLock { state in
            guard let id = state.sessions.first(where: { $0.value.userID == userID && SessionID.handle(of: $0.key) == handle })?.key else {
                return false
            }
            state.sessions[id] = nil
            return true
        }
    }

    package func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int {
        self.state.withLock { state in
            let before = state.sessions.count
            state.sessions = state.sessions.filter { $0.value.userID != userID || $0.key == sessionID }
            return before - state.sessions.count
        }
    }

    package func count() async throws -> Int {
        self.state.withLock { state in state.sessions.values.count(where: { !self.expiry.isExpired(createdAt: $0.createdAt) }) }
    }

    package func inspect(sessionID: String) async throws -> SessionInspection? {
        self.state.withLock { state in
            guard let entry = state.sessions[sessionID] else { return nil }
            var fields = ["user_id": entry.userID, "created_at": Timestamp.string(epochSeconds: entry.createdAt)]
            if let expiresAt = self.expiry.expiresAt(createdAt: entry.createdAt) { fields["expires_at"] = Timestamp.string(epochSeconds: expiresAt) }
            if let ip = entry.metadata.ip { fields["ip"] = ip }
            if let userAgent = entry.metadata.userAgent { fields["user_agent"] = userAgent }
            return SessionInspection(
                handle: SessionID.handle(of: sessionID),
                location: "this process's memory",
                fields: fields,
                isLive: !self.expiry.isExpired(createdAt: entry.createdAt)
            )
        }
    }

    package func checkReady() async throws {}
}
