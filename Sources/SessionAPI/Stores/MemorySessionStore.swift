import Synchronization

/// Sessions in this process's memory (`session_auth`, `session_exp_auth`): lost on restart and not
/// shared between processes, as in the original. Use Redis sessions to run several processes.
package final class MemorySessionStore: SessionStore {
    private struct Entry {
        let userID: String
        let createdAt: Int
    }

    private let sessions = Mutex<[String: Entry]>([:])
    private let expiry: SessionExpiry

    package init(expiry: SessionExpiry) {
        self.expiry = expiry
    }

    package func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        let sessionID = SessionID.generate()
        let entry = Entry(userID: userID, createdAt: self.expiry.now())
        self.sessions.withLock { sessions in
            if self.expiry.duration > 0 {
                sessions = sessions.filter { !self.expiry.isExpired(createdAt: $0.value.createdAt) }
            }
            if let previousSessionID { sessions[previousSessionID] = nil }
            sessions[sessionID] = entry
        }
        return sessionID
    }

    package func userID(sessionID: String) async throws -> String? {
        self.sessions.withLock { sessions in
            guard let entry = sessions[sessionID] else { return nil }
            if self.expiry.isExpired(createdAt: entry.createdAt) {
                sessions[sessionID] = nil
                return nil
            }
            return entry.userID
        }
    }

    package func deleteSession(sessionID: String) async throws -> Bool {
        self.sessions.withLock { $0.removeValue(forKey: sessionID) != nil }
    }

    package func deleteSessions(userID: String) async throws {
        self.sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.userID != userID }
        }
    }

    package func checkReady() async throws {}
}
