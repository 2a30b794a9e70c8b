import Logging
import RedisClient

/// Users in Redis hashes (`USER_STORE=redis`), the multi-host choice: `<prefix>user:{<id>}` holds the fields
/// (a name that is `null` is an absent field), `<prefix>user-email:<normalised email>` the id (set NX: one
/// email, one account across every process), `<prefix>users` every id.
///
/// The three keys hash to three Redis Cluster slots (an email is looked up without the id, and the set holds
/// every user), so creating and deleting a user are several one-slot steps. Creating one: claim the email with
/// NX and a TTL, write the hash with a TTL, add the id to `users`, make the claim permanent, then the hash. Until
/// the last step a crash leaves only keys that expire by themselves (``pendingSeconds``); after the claim is
/// permanent, a hash that expired leaves a claim naming no user, which the next create of that email takes
/// over. Deleting one: the hash, the id in `users`, then the claim (if still the user's). What a crash can leave
/// (a claim naming no user, an id in `users` without a hash) is taken over or skipped, never served.
package struct RedisUserStore: UserStore {
    let client: RedisClient
    let keys: RedisKeys
    private let logger: Logger
    /// `NEAR_CACHE`: users by id answered from memory while Redis' invalidations flow; `nil`: off.
    private let cache: NearCache<User>?

    /// How long a create's email claim and hash live before they are made permanent: a crash in between
    /// leaves nothing behind for longer.
    static let pendingSeconds = 60

    package init(
        client: RedisClient,
        keys: RedisKeys,
        logger: Logger = Logger(label: "session-api.redis-users"),
        cache: NearCache<User>? = nil
    ) {
        self.cache = cache
        self.client = client
        self.keys = keys
        self.logger = logger
    }

    /// `SCARD users`. After a crash in the middle of a delete, it may count a user whose hash is gone until the
    /// next listing removes the id.
    package func count() async throws -> Int {
        try await StoreError.mappingRedisErrors { try await self.client.scard(self.keys.users) }
    }

    /// Every user, by SSCAN (never KEYS) and pipelined HGETALLs, sorted by creation time. An id whose hash is
    /// gone (a delete cut short) is left out and removed from `users`.
    package func allUsers() async throws -> [User] {
        try await StoreError.mappingRedisErrors {
            let users = try await self.users(ids: try await self.allIDs())
            return users.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    /// Only the page's hashes are read: the ids come from `SSCAN` of `users` (about 40 bytes a user).
    package func users(page: Int, limit: Int) async throws -> (users: [User], total: Int) {
        try await StoreError.mappingRedisErrors {
            let ids = try await self.allIDs().sorted()
            let pageIDs = Array(ids.dropFirst((page - 1) * limit).prefix(limit))
            return (try await self.users(ids: pageIDs), ids.count)
        }
    }

    private func allIDs() async throws -> [String] {
        var ids: [String] = []
        var cursor = "0"
        repeat {
            let page = try await self.client.sscan(self.keys.users, cursor: cursor, count: 1000)
            ids.append(contentsOf: page.members.map { String(decoding: $0, as: UTF8.self) })
            cursor = page.cursor
        } while cursor != "0"
        return ids
    }

    /// The users of `ids` that exist, in that order (pipelined `HGETALL`s); ids without a hash (a delete cut
    /// short) are removed from `users`.
    private func users(ids: [String]) async throws -> [User] {
        var users: [User] = []
        var missing: [String] = []
        users.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: 500) {
            let batch = ids[start..<min(start + 500, ids.count)]
            let replies = try await self.client.pipeline(batch.map { ["HGETALL", RedisArgument(self.keys.user(id: $0))] })
            for (id, reply) in zip(batch, replies) {
                if let user = Self.user(fromHashReply: reply) {
                    users.append(user)
                } else if reply.array?.isEmpty == true {
                    missing.append(id)
                }
            }
        }
        try await self.forget(missing)
        return users
    }

    /// From the near-cache when it holds the user; else one `HGETALL`.
    package func user(id: String) async throws -> User? {
        let key = self.keys.user(id: id)
        guard let cache else { return try await self.readUser(key) }
        let now = Timestamp.nowMilliseconds()
        switch cache.lookup(key, now: now) {
        case .hit(let user):
            return user
        case .bypass:
            return try await self.readUser(key)
        case .miss(let ticket):
            do {
                guard let user = try await self.readUser(key) else {
                    cache.abandon(ticket)
                    return nil
                }
                cache.fill(ticket, with: user, validUntil: Int.max, now: now)
                return user
            } catch {
                cache.abandon(ticket)
                throw error
            }
        }
    }

    private func readUser(_ key: String) async throws -> User? {
        try await StoreError.mappingRedisErrors {
            Self.user(from: try await self.client.hgetall(key))
        }
    }

    /// This process's cache forgets the user at once after a change (Redis' announcement follows, for the others).
    private func forgetCached(_ id: String) {
        self.cache?.invalidate(self.keys.user(id: id))
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
        defer { self.forgetCached(user.id) }
        // Every field that is set, under its stored name; a `null` name is an absent field.
        let fields = User.Field.allCases.flatMap { field in
            user[field].map { [RedisArgument(field.rawValue), RedisArgument($0)] } ?? []
        }
        let claim = self.keys.userEmail(normalizedEmail: User.normalizedEmail(user.email))
        let key = self.keys.user(id: user.id)
        let id = RedisArgument(user.id)
        try await StoreError.mappingRedisErrors {
            try await self.claim(claim, for: user.id)
            let written = try await self.client.evalsha(
                Self.writePendingScript,
                keys: [key],
                arguments: [RedisArgument(Self.pendingSeconds)] + fields
            )
            guard written.int64 == 1 else {
                throw StoreError(.corruptData, "redis: a user with the new id \(user.id) exists already")
            }
            _ = try await self.client.sadd(self.keys.users, members: [user.id])
            guard try await self.client.evalsha(Self.commitClaimScript, keys: [claim], arguments: [id]).int64 == 1 else {
                // The claim expired before this create got here (Redis paused, or this task was): another create may own it now.
                _ = try await self.client.del(key)
                try await self.forget([user.id])
                throw StoreError(.unavailable, "redis: the email claim expired before the user was written")
            }
            guard try await self.client.evalsha(Self.commitScript, keys: [key]).int64 == 1 else {
                try await self.forget([user.id])
                try await self.client.evalsha(Self.releaseClaimScript, keys: [claim], arguments: [id])
                throw StoreError(.unavailable, "redis: the new user's hash expired before it was made permanent")
            }
        }
    }

    package func update(id: String, firstName: String?, lastName: String?, updatedAt: String) async throws -> User? {
        defer { self.forgetCached(id) }
        var fields: [RedisArgument] = [RedisArgument(User.Field.updatedAt.rawValue), RedisArgument(updatedAt)]
        if let firstName { fields += [RedisArgument(User.Field.firstName.rawValue), RedisArgument(firstName)] }
        if let lastName { fields += [RedisArgument(User.Field.lastName.rawValue), RedisArgument(lastName)] }
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(Self.updateScript, keys: [self.keys.user(id: id)], arguments: fields)
        }
        return Self.user(fromHashReply: reply)
    }

    /// One script on the user's hash (`user:{<id>}`, one slot): a compare-and-set of `_password`.
    package func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String, updatedAt: String?) async throws -> Bool {
        defer { self.forgetCached(id) }
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

    /// The hash, then the id in `users`, then the email claim if it is still this user's: a crash in between
    /// leaves a claim or an id that names no user (taken over, or skipped and removed, later).
    package func delete(id: String) async throws -> Bool {
        defer { self.forgetCached(id) }
        return try await StoreError.mappingRedisErrors {
            guard let user = Self.user(from: try await self.client.hgetall(self.keys.user(id: id))) else { return false }
            guard try await self.client.del(self.keys.user(id: id)) == 1 else { return false }
            try await self.forget([id])
            try await self.client.evalsha(
                Self.releaseClaimScript,
                keys: [self.keys.userEmail(normalizedEmail: User.normalizedEmail(user.email))],
                arguments: [RedisArgument(id)]
            )
            return true
        }
    }

    package func checkReady() async throws {
        _ = try await StoreError.mappingRedisErrors { try await self.client.ping() }
    }

    // MARK: - Steps

    /// Claims an email for `id`, for ``pendingSeconds``.
    ///
    /// A claim with a TTL belongs to a create under way; a permanent one whose user hash is gone (a create whose
    /// hash expired, a delete cut short) names no user and is taken over, with a compare-and-set so that two
    /// creates cannot both take it. The check reads the first layout's key too (`RedisLayoutMigration`), so a
    /// user not moved yet keeps its email.
    /// - Throws: `StoreError.duplicateEmail` when the email is someone's.
    private func claim(_ claim: String, for id: String) async throws {
        for _ in 0..<3 {
            if try await self.client.set(claim, value: id, expiresInSeconds: Self.pendingSeconds, onlyIfNotExists: true) { return }
            let holder = try await self.client.evalsha(Self.inspectClaimScript, keys: [claim]).array ?? []
            guard holder.count == 2, let owner = holder[0].string else { continue }  // released meanwhile: try again
            guard holder[1].int64 == -1 else { break }  // a create under way
            let replies = try await self.client.pipeline([
                ["EXISTS", RedisArgument(self.keys.user(id: owner))], ["EXISTS", RedisArgument(self.keys.legacyUser(id: owner))],
            ])
            guard replies.allSatisfy({ $0.int64 == 0 }) else { break }
            let taken = try await self.client.evalsha(
                Self.takeOverClaimScript,
                keys: [claim],
                arguments: [RedisArgument(owner), RedisArgument(id), RedisArgument(Self.pendingSeconds)]
            )
            if taken.int64 == 1 {
                self.logger.notice(
                    "took over an email claim that named no user (a create or delete cut short)",
                    metadata: ["user_id": .string(owner)]
                )
                return
            }
        }
        throw StoreError(.duplicateEmail, "email already registered")
    }

    /// Removes ids from `users`; for an id whose hash is gone.
    private func forget(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        // An id whose hash is still in the first layout is not gone: `RedisLayoutMigration` will move it.
        let legacy = try await self.client.pipeline(ids.map { ["EXISTS", RedisArgument(self.keys.legacyUser(id: $0))] })
        let gone = zip(ids, legacy).filter { $0.1.int64 == 0 }.map(\.0)
        guard !gone.isEmpty else { return }
        _ = try await self.client.srem(self.keys.users, members: gone)
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

    // MARK: - Scripts (each touches the keys of one slot, all named in KEYS)

    /// KEYS: user. ARGV: seconds to live, then field/value pairs. Writes a new user's hash with a TTL; 0 if it exists.
    static let writePendingScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        redis.call('HSET', KEYS[1], unpack(ARGV, 2))
        redis.call('EXPIRE', KEYS[1], ARGV[1])
        return 1
        """
    )

    /// KEYS: user. Makes a new user's hash permanent; 0 if it expired meanwhile.
    static let commitScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('PERSIST', KEYS[1])
        return 1
        """
    )

    /// KEYS: user-email. The claim's user id and its PTTL (-1: permanent); nil when there is none.
    static let inspectClaimScript = RedisScript(
        """
        local owner = redis.call('GET', KEYS[1])
        if not owner then return false end
        return {owner, redis.call('PTTL', KEYS[1])}
        """
    )

    /// KEYS: user-email. ARGV: id. Makes the claim permanent if it is still this id's; 1 if it was.
    static let commitClaimScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('PERSIST', KEYS[1])
        return 1
        """
    )

    /// KEYS: user-email. ARGV: the id it names now (a user that is gone), the new id, seconds to live. 1 if taken.
    static let takeOverClaimScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('PTTL', KEYS[1]) ~= -1 then return 0 end
        redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
        return 1
        """
    )

    /// KEYS: user-email. ARGV: id. Deletes the claim if it is this id's.
    static let releaseClaimScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
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
}
