import NIOPosix

/// One record of `.db_UserSession.json`, in the original's `UserSession` format.
package struct UserSessionRecord: SharedJSONFileRecord, Encodable, Equatable {
    package var id: String
    package var userID: String
    package var sessionID: String
    package var createdAt: String
    package var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case id
        case userID = "user_id"
        case sessionID = "session_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    package init(id: String, userID: String, sessionID: String, createdAt: String, updatedAt: String) {
        self.id = id
        self.userID = userID
        self.sessionID = sessionID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decodeIfPresent(String.self, forKey: .id) ?? ""
        self.userID = try container.decode(String.self, forKey: .userID)
        self.sessionID = try container.decode(String.self, forKey: .sessionID)
        self.createdAt = try container.decode(String.self, forKey: .createdAt)
        self.updatedAt = try container.decodeIfPresent(String.self, forKey: .updatedAt) ?? self.createdAt
        guard Timestamp.isValid(self.createdAt) else {
            throw DecodingError.dataCorruptedError(forKey: .createdAt, in: container, debugDescription: "must be YYYY-MM-DDTHH:MM:SS")
        }
    }
}

/// Sessions in `.db_UserSession.json` (`session_db_auth`): they survive a restart, and every process
/// on the host sharing the file sees the same sessions. Expired sessions are pruned on each write.
package struct JSONFileSessionStore: SessionStore {
    package static let fileName = ".db_UserSession.json"
    private let file: SharedJSONFile<UserSessionRecord>
    private let expiry: SessionExpiry

    package init(directory: String, expiry: SessionExpiry, threadPool: NIOThreadPool = .singleton) async throws {
        self.file = try await SharedJSONFile(path: directory + "/" + Self.fileName, threadPool: threadPool)
        self.expiry = expiry
    }

    package func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        let sessionID = SessionID.generate()
        let now = Timestamp.string(epochSeconds: self.expiry.now())
        let record = UserSessionRecord(id: RandomID.make(), userID: userID, sessionID: sessionID, createdAt: now, updatedAt: now)
        let expiry = self.expiry
        try await self.file.write { records in
            if expiry.duration > 0 {
                records = records.filter { !Self.isExpired($0.value, expiry) }
            }
            if let previousSessionID {
                records = records.filter { $0.value.sessionID != previousSessionID }
            }
            records[record.id] = record
            return (true, ())
        }
        return sessionID
    }

    package func userID(sessionID: String) async throws -> String? {
        let expiry = self.expiry
        return try await self.file.read { records in
            guard let record = records.values.first(where: { $0.sessionID == sessionID }), !Self.isExpired(record, expiry) else {
                return nil
            }
            return record.userID
        }
    }

    package func deleteSession(sessionID: String) async throws -> Bool {
        try await self.file.write { records in
            let matching = records.filter { $0.value.sessionID == sessionID }.keys
            for key in matching { records[key] = nil }
            return (!matching.isEmpty, !matching.isEmpty)
        }
    }

    package func deleteSessions(userID: String) async throws {
        try await self.file.write { records in
            let before = records.count
            records = records.filter { $0.value.userID != userID }
            return (records.count != before, ())
        }
    }

    package func checkReady() async throws {
        try await self.file.checkReadable()
    }

    private static func isExpired(_ record: UserSessionRecord, _ expiry: SessionExpiry) -> Bool {
        guard let created = Timestamp.epochSeconds(record.createdAt) else { return true }
        return expiry.isExpired(createdAt: created)
    }
}
