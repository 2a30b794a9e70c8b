import RedisClient

/// Users in Redis hashes (`USER_STORE=redis`), the multi-host choice: `<prefix>user:<id>` holds the fields
/// (a name that is `null` is an absent field), `<prefix>user-email:<lowercased email>` the id (set NX
/// inside the create script: one email, one account across every process), `<prefix>users` every id.
package struct RedisUserStore: UserStore {
    let client: RedisClient
    let keys: RedisKeys

    package init(client: RedisClient, keys: RedisKeys) {
        self.client = client
        self.keys = keys
    }

    package func count() async throws -> Int {
        try await StoreError.mappingRedisErrors { try await self.client.scard(self.keys.users) }
    }

    /// Every user, by SSCAN (never KEYS) and pipelined HGETALLs, sorted by creation time.
    package func allUsers() async throws -> [User] {
        try await StoreError.mappingRedisErrors {
            var ids: [String] = []
            var cursor = "0"
            repeat {
                let page = try await self.client.sscan(self.keys.users, cursor: cursor, count: 1000)
                ids.append(contentsOf: page.members.map { String(decoding: $0, as: UTF8.self) })
                cursor = page.cursor
            } while cursor != "0"
            var users: [User] = []
            users.reserveCapacity(ids.count)
            for start in stride(from: 0, to: ids.count, by: 500) {
                let batch = ids[start..<min(start + 500, ids.count)]
                let replies = try await self.client.pipeline(batch.map { ["HGETALL", RedisArgument(self.keys.user(id: $0))] })
                users.append(contentsOf: replies.compactMap { Self.user(fromHashReply: $0) })
            }
            return users.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    package func user(id: String) async throws -> User? {
        try await StoreError.mappingRedisErrors {
            Self.user(from: try await self.client.hgetall(self.keys.user(id: id)))
        }
    }

    package func user(email: String) async throws -> User? {
        try await StoreError.mappingRedisErrors {
            guard let id = try await self.client.getString(self.keys.userEmail(normalizedEmail: User.normalizedEmail(email))) else {
                return nil
            }
            return Self.user(from: try await self.client.hgetall(self.keys.user(id: id)))
        }
    }

    package func create(_ user: User) async throws {
        // Every field that is set, under its stored name; a `null` name is an absent field.
        let fields = User.Field.allCases.flatMap { field in
            user[field].map { [RedisArgument(field.rawValue), RedisArgument($0)] } ?? []
        }
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.createScript,
                keys: [self.keys.user(id: user.id), self.keys.userEmail(normalizedEmail: User.normalizedEmail(user.email)), self.keys.users],
                arguments: [RedisArgument(user.id)] + fields
            )
        }
        guard reply.int64 == 1 else { throw StoreError(.duplicateEmail, "email already registered") }
    }

    package func update(id: String, firstName: String?, lastName: String?, updatedAt: String) async throws -> User? {
        var fields: [RedisArgument] = [RedisArgument(User.Field.updatedAt.rawValue), RedisArgument(updatedAt)]
        if let firstName { fields += [RedisArgument(User.Field.firstName.rawValue), RedisArgument(firstName)] }
        if let lastName { fields += [RedisArgument(User.Field.lastName.rawValue), RedisArgument(lastName)] }
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(Self.updateScript, keys: [self.keys.user(id: id)], arguments: fields)
        }
        return Self.user(fromHashReply: reply)
    }

    package func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String, updatedAt: String?) async throws -> Bool {
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.replacePasswordScript,
                keys: [self.keys.user(id: id)],
                arguments: [
                    RedisArgument(expectedHash == nil ? "0" : "1"), RedisArgument(expectedHash ?? ""), RedisArgument(newHash),
                    RedisArgument(updatedAt ?? ""),
                ]
            )
        }
        return reply.int64 == 1
    }

    package func delete(id: String) async throws -> Bool {
        try await StoreError.mappingRedisErrors {
            guard let user = Self.user(from: try await self.client.hgetall(self.keys.user(id: id))) else { return false }
            let reply = try await self.client.evalsha(
                Self.deleteScript,
                keys: [self.keys.user(id: id), self.keys.userEmail(normalizedEmail: User.normalizedEmail(user.email)), self.keys.users],
                arguments: [RedisArgument(id)]
            )
            return reply.int64 == 1
        }
    }

    package func checkReady() async throws {
        _ = try await StoreError.mappingRedisErrors { try await self.client.ping() }
    }

    // MARK: - Hash <-> User

    static func user(from hash: [String: [UInt8]]) -> User? {
        User { field in hash[field.rawValue].map { String(decoding: $0, as: UTF8.self) } }
    }

    /// A user from an HGETALL reply (a flat array of field, value, ...); `nil` for an empty or nil reply.
    static func user(fromHashReply reply: RESPValue) -> User? {
        guard let elements = reply.array, elements.count % 2 == 0 else { return nil }
        var hash: [String: [UInt8]] = [:]
        for index in stride(from: 0, to: elements.count, by: 2) {
            guard let name = elements[index].string, let value = elements[index + 1].bytes else { continue }
            hash[name] = value
        }
        return Self.user(from: hash)
    }

    // MARK: - Scripts

    /// KEYS: user, user-email, users. ARGV: id, then field/value pairs. 0 when the email is taken.
    static let createScript = RedisScript(
        """
        if not redis.call('SET', KEYS[2], ARGV[1], 'NX') then return 0 end
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('SADD', KEYS[3], ARGV[1])
        return 1
        """
    )

    /// KEYS: user. ARGV: field/value pairs (updated_at first). The updated hash, or nil when there is no user.
    static let updateScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return false end
        redis.call('HSET', KEYS[1], unpack(ARGV))
        return redis.call('HGETALL', KEYS[1])
        """
    )

    /// KEYS: user. ARGV: whether a hash is expected ('1'/'0'), the expected hash, the new hash, the new `updated_at`
    /// ('' to leave it). Sets `_password` (and `updated_at`) only if it is still the expected one (absent when none
    /// is expected); 1 if it did.
    static let replacePasswordScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local current = redis.call('HGET', KEYS[1], '_password')
        if ARGV[1] == '1' then
          if current ~= ARGV[2] then return 0 end
        elseif current then
          return 0
        end
        redis.call('HSET', KEYS[1], '_password', ARGV[3])
        if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'updated_at', ARGV[4]) end
        return 1
        """
    )

    /// KEYS: user, user-email, users. ARGV: id. Removes the user, its email claim (if still its own) and
    /// its id; 1 if it existed.
    static let deleteScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('DEL', KEYS[1])
        if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
        redis.call('SREM', KEYS[3], ARGV[1])
        return 1
        """
    )
}
