import Foundation
import RedisClient

/// Sessions in Redis (`session_redis_auth`): no process keeps any session state, so every process
/// pointed at the same Redis serves the same logged-in users.
///
/// A session is the hash `<prefix>session:<sha256(id)>` (`user_id`, `created_at`, `expires_at`,
/// `expires_at_unix`, `ip`, `user_agent`) whose TTL is the time left, plus an entry in the user's sorted
/// set `<prefix>user-sessions:<user id>` scored by its absolute expiry. Every change is one Lua script,
/// so a crash can never leave half of one.
package struct RedisSessionStore: SessionStore {
    let client: RedisClient
    let keys: RedisKeys
    /// Absolute lifetime in seconds; `<= 0`: no expiry.
    private let duration: Int
    /// Sliding idle timeout in seconds, or `nil`.
    private let idleTimeout: Int?
    /// Sessions one user keeps; a login past it ends the user's oldest (the index never grows without bound).
    private let maximumPerUser: Int
    /// The clock, in milliseconds since the epoch (a test's clock has whole seconds).
    private let nowMilliseconds: @Sendable () -> Int

    package init(
        client: RedisClient,
        keys: RedisKeys,
        duration: Int,
        idleTimeout: Int?,
        maximumPerUser: Int = SessionID.defaultMaximumPerUser,
        now: (@Sendable () -> Int)? = nil
    ) {
        self.client = client
        self.keys = keys
        self.duration = duration
        self.idleTimeout = idleTimeout
        self.maximumPerUser = maximumPerUser
        if let now {
            self.nowMilliseconds = { now() * 1000 }
        } else {
            self.nowMilliseconds = { Int(Date().timeIntervalSince1970 * 1000) }
        }
    }

    /// Seconds since the epoch.
    func now() -> Int {
        self.nowMilliseconds() / 1000
    }

    package func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        let sessionID = SessionID.generate()
        let hash = RedisKeys.sessionHash(sessionID)
        let nowMilliseconds = self.nowMilliseconds()
        let now = nowMilliseconds / 1000
        let expiresAt = self.duration > 0 ? now + self.duration : 0
        var ttl = self.duration > 0 ? self.duration : 0
        if let idle = self.idleTimeout, ttl == 0 || idle < ttl { ttl = idle }
        // The index orders a user's sessions by expiry, to the millisecond, so that sessions made in one second
        // keep their order too (which one ends first past the per-user bound).
        let score = expiresAt > 0 ? Double(nowMilliseconds + self.duration * 1000) / 1000 : Double.infinity
        try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.createScript,
                keys: [self.keys.session(hash: hash), self.keys.userSessions(userID: userID)],
                arguments: [
                    RedisArgument(hash), RedisArgument(userID), RedisArgument(Timestamp.string(epochSeconds: now)),
                    RedisArgument(expiresAt > 0 ? Timestamp.string(epochSeconds: expiresAt) : ""), RedisArgument(expiresAt),
                    RedisArgument(metadata.ip ?? ""), RedisArgument(metadata.userAgent ?? ""), RedisArgument(ttl), RedisArgument(now),
                    RedisArgument(previousSessionID.map(RedisKeys.sessionHash) ?? ""), RedisArgument(self.keys.prefix),
                    RedisArgument(self.maximumPerUser), RedisArgument(score),
                ]
            )
        }
        return sessionID
    }

    /// One `HGET` without an idle timeout; with one, a script that also slides the TTL.
    package func userID(sessionID: String) async throws -> String? {
        let key = self.keys.session(hash: RedisKeys.sessionHash(sessionID))
        return try await StoreError.mappingRedisErrors {
            if let idle = self.idleTimeout {
                let reply = try await self.client.evalsha(Self.touchScript, keys: [key], arguments: [RedisArgument(idle), RedisArgument(self.now())])
                return reply.string
            }
            return try await self.client.hget(key, field: "user_id").map { String(decoding: $0, as: UTF8.self) }
        }
    }

    package func deleteSession(sessionID: String) async throws -> Bool {
        let hash = RedisKeys.sessionHash(sessionID)
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.deleteScript,
                keys: [self.keys.session(hash: hash)],
                arguments: [RedisArgument(hash), RedisArgument(self.keys.prefix), RedisArgument(self.now())]
            )
        }
        return reply.int64 == 1
    }

    /// The sessions in the user's index that have not expired, by pipelined `HGETALL`s (an entry whose
    /// hash is gone, deleted by hand or expired by its idle timeout, is left out).
    package func sessions(userID: String) async throws -> [SessionInfo] {
        try await StoreError.mappingRedisErrors {
            let index = self.keys.userSessions(userID: userID)
            let reply = try await self.client.send(["ZREVRANGEBYSCORE", RedisArgument(index), "+inf", RedisArgument("(\(self.now())")])
            let handles = (reply.array ?? []).compactMap(\.string)
            guard !handles.isEmpty else { return [] }
            let hashes = try await self.client.pipeline(handles.map { ["HGETALL", RedisArgument(self.keys.session(hash: $0))] })
            return zip(handles, hashes).compactMap { handle, reply in
                var fields: [String: String] = [:]
                let elements = reply.array ?? []
                for index in stride(from: 0, to: elements.count - 1, by: 2) {
                    if let name = elements[index].string, let value = elements[index + 1].string { fields[name] = value }
                }
                guard fields["user_id"] == userID, let createdAt = fields["created_at"] else { return nil }
                let expiresAt = fields["expires_at"].flatMap { $0.isEmpty ? nil : $0 }
                let metadata = SessionMetadata(
                    ip: fields["ip"].flatMap { $0.isEmpty ? nil : $0 },
                    userAgent: fields["user_agent"].flatMap { $0.isEmpty ? nil : $0 }
                )
                return SessionInfo(handle: handle, userID: userID, createdAt: createdAt, expiresAt: expiresAt, metadata: metadata)
            }
        }
    }

    package func deleteSession(userID: String, handle: String) async throws -> Bool {
        guard SessionID.isHandle(handle) else { return false }
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.deleteOwnedScript,
                keys: [self.keys.session(hash: handle), self.keys.userSessions(userID: userID)],
                arguments: [RedisArgument(userID), RedisArgument(handle)]
            )
        }
        return reply.int64 == 1
    }

    package func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int {
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(
                Self.deleteAllScript,
                keys: [self.keys.userSessions(userID: userID)],
                arguments: [RedisArgument(self.keys.prefix), RedisArgument(sessionID.map(RedisKeys.sessionHash) ?? "")]
            )
        }
        return Int(reply.int64 ?? 0)
    }

    package func checkReady() async throws {
        _ = try await StoreError.mappingRedisErrors { try await self.client.ping() }
    }

    // MARK: - Scripts

    /// KEYS: session, user-sessions. ARGV: hash, user_id, created_at, expires_at, expires_at_unix (0: never),
    /// ip, user_agent, ttl (0: none), now, previous session hash ('' for none), prefix, most sessions per user,
    /// index score (the expiry in epoch seconds with milliseconds, so sessions of one second keep their order; `+inf`: never).
    /// Revokes the previous session, writes the new one, prunes the user's expired index entries, indexes
    /// the new one, and keeps the index alive as long as its longest session.
    static let createScript = RedisScript(
        """
        if ARGV[10] ~= '' then
          local previous = ARGV[11] .. 'session:' .. ARGV[10]
          local owner = redis.call('HGET', previous, 'user_id')
          if owner then
            redis.call('DEL', previous)
            redis.call('ZREM', ARGV[11] .. 'user-sessions:' .. owner, ARGV[10])
          end
        end
        redis.call('HSET', KEYS[1], 'user_id', ARGV[2], 'created_at', ARGV[3], 'expires_at', ARGV[4],
          'expires_at_unix', ARGV[5], 'ip', ARGV[6], 'user_agent', ARGV[7])
        local ttl = tonumber(ARGV[8])
        if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
        local now = tonumber(ARGV[9])
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
        -- Past the bound, the sessions that end first (the oldest) end now, before the new one is indexed.
        local maximum = tonumber(ARGV[12])
        local count = redis.call('ZCARD', KEYS[2])
        if maximum > 0 and count >= maximum then
          for _, hash in ipairs(redis.call('ZRANGE', KEYS[2], 0, count - maximum)) do
            redis.call('DEL', ARGV[11] .. 'session:' .. hash)
          end
          redis.call('ZREMRANGEBYRANK', KEYS[2], 0, count - maximum)
        end
        redis.call('ZADD', KEYS[2], ARGV[13], ARGV[1])
        local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
        if last[2] == 'inf' then redis.call('PERSIST', KEYS[2]) else redis.call('EXPIREAT', KEYS[2], math.floor(tonumber(last[2])) + 1) end
        return 1
        """
    )

    /// KEYS: session. ARGV: idle seconds, now. Returns the user id and moves the TTL to
    /// min(idle, time left before the absolute expiry); nil when the session is gone.
    static let touchScript = RedisScript(
        """
        local fields = redis.call('HMGET', KEYS[1], 'user_id', 'expires_at_unix')
        if not fields[1] then return false end
        local ttl = tonumber(ARGV[1])
        local expires = tonumber(fields[2] or '0') or 0
        if expires > 0 then
          local left = expires - tonumber(ARGV[2])
          if left <= 0 then redis.call('DEL', KEYS[1]) return false end
          if left < ttl then ttl = left end
        end
        redis.call('EXPIRE', KEYS[1], ttl)
        return fields[1]
        """
    )

    /// KEYS: session. ARGV: hash, prefix, now. Deletes the session and its index entry, and prunes the
    /// user's expired entries; 1 if it existed.
    static let deleteScript = RedisScript(
        """
        local user = redis.call('HGET', KEYS[1], 'user_id')
        if not user then return 0 end
        redis.call('DEL', KEYS[1])
        local index = ARGV[2] .. 'user-sessions:' .. user
        redis.call('ZREM', index, ARGV[1])
        redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[3])
        return 1
        """
    )

    /// KEYS: session, user-sessions. ARGV: user id, hash. Deletes the session if it is that user's; 1 if it was.
    static let deleteOwnedScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], ARGV[2])
        return 1
        """
    )

    /// KEYS: user-sessions. ARGV: prefix, hash to keep ('' for none). Deletes every other session of the user
    /// (the whole index when none is kept); returns how many sessions ended.
    static let deleteAllScript = RedisScript(
        """
        local ended = 0
        for _, hash in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
          if hash ~= ARGV[2] then
            ended = ended + redis.call('DEL', ARGV[1] .. 'session:' .. hash)
            redis.call('ZREM', KEYS[1], hash)
          end
        end
        if ARGV[2] == '' then redis.call('DEL', KEYS[1]) end
        return ended
        """
    )
}
