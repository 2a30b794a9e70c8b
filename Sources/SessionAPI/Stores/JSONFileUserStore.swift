import NIOPosix

extension User: SharedJSONFileRecord {
    /// The original's record: every field, `_password` included.
    package func writeJSON(into output: inout [UInt8]) {
        self.writeJSON(.stored, into: &output)
    }
}

/// Users in `.db_User.json` (the Flask original's format), shared safely by every process on the host.
package struct JSONFileUserStore: UserStore {
    package static let fileName = ".db_User.json"
    private let file: SharedJSONFile<User>

    /// Opens `<directory>/.db_User.json`. - Throws: `StoreError.corruptData` if the file cannot be read.
    package init(directory: String, threadPool: NIOThreadPool = .singleton) async throws {
        self.file = try await SharedJSONFile(path: directory + "/" + Self.fileName, threadPool: threadPool)
    }

    package func count() async throws -> Int {
        try await self.file.read { $0.count }
    }

    /// Oldest first. The order is derived once per version of the file, as are the id order of pages and
    /// the email index of logins: with 100k users, a sort or a scan costs tens to hundreds of milliseconds.
    package func allUsers() async throws -> [User] {
        try await self.file.readDerived { records, derived in
            derived.value("ids by creation") {
                records.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(\.id)
            }
            .compactMap { records[$0] }
        }
    }

    package func users(page: Int, limit: Int) async throws -> (users: [User], total: Int) {
        try await self.file.readDerived { records, derived in
            let ids = derived.value("ids") { records.keys.sorted() }
            return (ids.dropFirst((page - 1) * limit).prefix(limit).compactMap { records[$0] }, ids.count)
        }
    }

    package func user(id: String) async throws -> User? {
        try await self.file.read { $0[id] }
    }

    package func user(email: String) async throws -> User? {
        let key = User.normalizedEmail(email)
        return try await self.file.readDerived { records, derived in
            derived.value("ids by email", { Self.emailIndex(records) })[key].flatMap { records[$0] }
        }
    }

    /// Normalised email -> id. A file edited by hand may hold one email twice (in two cases): the oldest
    /// user answers, as the order of `allUsers()` would have it.
    private static func emailIndex(_ records: [String: User]) -> [String: String] {
        var index: [String: String] = [:]
        index.reserveCapacity(records.count)
        for user in records.values {
            let key = User.normalizedEmail(user.email)
            if let other = index[key].flatMap({ records[$0] }), (other.createdAt, other.id) < (user.createdAt, user.id) { continue }
            index[key] = user.id
        }
        return index
    }

    package func create(_ user: User) async throws {
        let key = User.normalizedEmail(user.email)
        try await self.file.write { records in
            if records.values.contains(where: { User.normalizedEmail($0.email) == key }) {
                throw StoreError(.duplicateEmail, "email already registered")
            }
            records[user.id] = user
            return (true, ())
        }
    }

    package func update(id: String, firstName: String?, lastName: String?, updatedAt: String) async throws -> User? {
        try await self.file.write { records in
            guard var user = records[id] else { return (false, nil) }
            if let firstName { user.firstName = firstName }
            if let lastName { user.lastName = lastName }
            user.updatedAt = updatedAt
            records[id] = user
            return (true, user)
        }
    }

    package func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String, updatedAt: String?) async throws -> Bool {
        try await self.file.write { records in
            guard var user = records[id], user.passwordHash == expectedHash else { return (false, false) }
            user.passwordHash = newHash
            if let updatedAt { user.updatedAt = updatedAt }
            records[id] = user
            return (true, true)
        }
    }

    package func delete(id: String) async throws -> Bool {
        try await self.file.write { records in
            let removed = records.removeValue(forKey: id) != nil
            return (removed, removed)
        }
    }

    package func checkReady() async throws {
        try await self.file.checkReadable()
    }
}
