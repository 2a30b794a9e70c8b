import NIOPosix

/// One record of `.db_UserSession.json`, in the original's `UserSession` format.
package struct UserSessionRecord: SharedJSONFileRecord, Encodable, Equatable {
    package var id: String
    package var userID: String
    package var sessionID: String
    package var createdAt: String
    package var updatedAt: String
    /// Not in the original's records (which ignores keys it does not know): the client that logged in.
    package var ip: String?
    package var userAgent: String?

    enum CodingKeys: String, CodingKey {
        case id
        case userID = "user_id"
        case sessionID = "session_id"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case ip
        case userAgent = "user_agent"
    }

    package init(id: String, userID: String, sessionID: String, createdAt: String, updatedAt: String, metadata: SessionMetadata = SessionMetadata()) {
        self.id = id
        self.userID = userID
        self.sessionID = sessionID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.ip = metadata.ip
        self.userAgent = metadata.userAgent
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decodeIfPresent(String.self, forKey: .id) ?? ""
        self.userID = try container.decode(String.self, forKey: .userID)
        self.sessionID = try container.decode(String.self, forKey: .sessionID)
        self.createdAt = try container.decode(String.self, forKey: .createdAt)
        self.updatedAt = try container.decodeIfPresent(String.self, forKey: .updatedAt) ?? self.createdAt
        self.ip = try container.decodeIfPresent(String.self, forKey: .ip)
        self.userAgent = try container.decodeIfPresent(String.self, forKey: .userAgent)
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
    private let maximumPerUser: Int

    package init(
        directory: String,
        expiry: SessionExpiry,
        maximumPerUser: Int = SessionID.defaultMaximumPerUser,
        threadPool: NIOThreadPool = .singleton
    ) async throws {
        self.file = try await SharedJSONFile(path: directory + "/" + Self.fileName, threadPool: threadPool)
        self.expiry = expiry
        self.maximumPerUser = maximumPerUser
    }

    package func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        let sessionID = SessionID.generate()
        let now = Timestamp.string(epochSeconds: self.expiry.now())
        let record = UserSessionRecord(id: RandomID.make(), userID: userID, sessionID: sessionID, createdAt: now, updatedAt: now, metadata: metadata)
        let (expiry, maximum) = (self.expiry, self.maximumPerUser)
        try await self.file.write { records in
            if expiry.duration > 0 {
                records = records.filter { !Self.isExpired($0.value, expiry) }
            }
            if let previousSessionID {
                records = records.filter { $0.value.sessionID != previousSessionID }
            }
            // The user's oldest sessions past the bound end (one place is kept for the new one).
            let own = records.values.filter { $0.userID == userID }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            for old in own.prefix(max(0, own.count - maximum + 1)) { records[old.id] = nil }
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

    package func sessions(userID: String) async throws -> [SessionInfo] {
        let expiry = self.expiry
        return try await self.file.read { records in
            records.values.filter { $0.userID == userID && !Self.isExpired($0, expiry) }
                .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
                .map { record in
                    SessionInfo(
                        handle: SessionID.handle(of: record.sessionID),
                        userID: record.userID,
                        createdAt: record.createdAt,
                        expiresAt: Timestamp.epochSeconds(record.createdAt).flatMap(expiry.expiresAt).map { Timestamp.string(epochSeconds: $0) },
                        metadata: SessionMetadata(ip: record.ip, userAgent: record.userAgent)
                    )
                }
        }
    }

    package func deleteSession(userID: String, handle: String) async throws -> Bool {
        guard SessionID.isHandle(handle) else { return false }
        return try await self.file.write { records in
            let matching = records.filter { $0.value.userID == userID && SessionID.handle(of: $0.value.sessionID) == handle }.keys
            for key in matching { records[key] = nil }
            return (!matching.isEmpty, !matching.isEmpty)
        }
    }

    package func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int {
        try await self.file.write { records in
            let before = records.count
            records = records.filter { $0.value.userID != userID || $0.value.sessionID == sessionID }
            return (records.count != before, before - records.count)
        }
    }

    package func count() async throws -> Int {
        let expiry = self.expiry
        return try await self.file.read { records in records.values.count(where: { !Self.isExpired($0, expiry) }) }
    }

    /// The record of `.db_UserSession.json` (which holds the session ID in clear, as the original's does).
    package func inspect(sessionID: String) async throws -> SessionInspection? {
        let (expiry, path) = (self.expiry, self.file.path)
        return try await self.file.read { records in
            guard let record = records.values.first(where: { $0.sessionID == sessionID }) else { return nil }
            var fields = ["id": record.id, "user_id": record.userID, "created_at": record.createdAt, "updated_at": record.updatedAt]
            if let expiresAt = Timestamp.epochSeconds(record.createdAt).flatMap(expiry.expiresAt) {
                fields["expires_at"] = Timestamp.string(epochSeconds: expiresAt)
            }
            if let ip = record.ip { fields["ip"] = ip }
            if let userAgent = record.userAgent { fields["user_agent"] = userAgent }
            return SessionInspection(
                handle: SessionID.handle(of: sessionID),
                location: "\(path), record \(record.id)",
                fields: fields,
                isLive: !Self.isExpired(record, expiry)
            )
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
