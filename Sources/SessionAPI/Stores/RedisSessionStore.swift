import Foundation
import RedisClient

/// Sessions in Redis (`session_redis_auth`): no process keeps any session state, so every process
/// pointed at the same Redis serves the same logged-in users.
///
/// A session is the hash `<prefix>session:<sha256(id)>` (`user_id`, `created_at`, `expires_at`,
/// `expires_at_unix`, `ip`, `user_agent`) whose TTL is the time left, plus an entry in the user's sorted
/// set `<prefix>user-sessions:{<user id>}` scored by its absolute expiry.
///
/// The hash is found from the cookie alone and the index from the user, so in a Redis Cluster they live in
/// different slots and no script may touch both: every change is a script on one key's slot, and changes of
/// both are two steps, ordered so that a crash between them leaves nothing that works and should not:
/// - a session is indexed before its hash is written, and unindexed only after its hash is gone;
/// - so an index entry may name no hash (a crash, an idle timeout, a `DEL` by hand): it is skipped, and
///   removed when its user's sessions are next pruned, bounded or ended; never while it is younger than
///   ``pendingGrace``, since a login may be writing its hash;
/// - and a hash never lives without its index entry, unless a failover lost the index write (Cluster,
///   asynchronous replication): then it still ends with its TTL, or with its user.
package struct RedisSessionStore: SessionStore {
    let client: RedisClient
    let keys: RedisKeys
    /// Absolute lifetime in seconds; `<= 0`: no expiry.
    private let duration: Int
    /// Sliding idle timeout in seconds, or `nil`.
    private let idleTimeout: Int?
    /// Sessions one user keeps; a login past it ends the user's oldest (the index never grows without bound).
    private let maximumPerUser: Int
    /// `REDIS_WAIT_REPLICAS`: a login's writes wait until that many replicas have them (or the timeout).
    private let replicaWaiter: RedisReplicaWaiter?
    /// The clock, in milliseconds since the epoch (a test's clock has whole seconds).
    private let nowMilliseconds: @Sendable () -> Int
    /// `NEAR_CACHE`: session lookups answered from memory while Redis' invalidations flow; `nil`: off.
    private let cache: NearCache<RedisNearCache.CachedSession>?

    /// With an idle timeout, a lookup moves the TTL back to the full window only once less than this share of it is
    /// left: a busy session costs one write (and one invalidation in every process's near-cache) per fifth of the
    /// window, not one per request.
    static let idleRefreshShare = 0.8

    /// How long an index entry whose hash is missing is left alone: a login writes its index entry, then its
    /// hash, within a few command timeouts.
    static let pendingGrace = 60
    /// Sessions ended per round trip when many end at once.
    private static let batchSize = 500

    package init(
        client: RedisClient,
        keys: RedisKeys,
        duration: Int,
        idleTimeout: Int?,
        maximumPerUser: Int = SessionID.defaultMaximumPerUser,
        replicaWaiter: RedisReplicaWaiter? = nil,
        cache: NearCache<RedisNearCache.CachedSession>? = nil,
        now: (@Sendable () -> Int)? = nil
    ) {
        self.cache = cache
        self.client = client
        self.keys = keys
        self.duration = duration
        self.idleTimeout = idleTimeout
        self.maximumPerUser = maximumPerUser
        self.replicaWaiter = replicaWaiter
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

    /// Revokes `previousSessionID` (its hash, then its index entry), indexes the new session, writes its hash,
    /// then ends the user's oldest sessions past the bound: four steps, each one script on one slot.
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
        let index = self.keys.userSessions(userID: userID)
        try await StoreError.mappingRedisErrors {
            // First, so that a failure below leaves the client logged out, never logged in twice.
            if let previousSessionID {
                _ = try await self.end(hash: RedisKeys.sessionHash(previousSessionID), now: now)
            }
            let excess = try await self.write(
                Self.indexScript,
                keys: [index],
                arguments: [RedisArgument(hash), RedisArgument(score), RedisArgument(now), RedisArgument(self.maximumPerUser)]
            )
            try await self.write(
                Self.createScript,
                keys: [self.keys.session(hash: hash)],
                arguments: [
                    RedisArgument(userID), RedisArgument(Timestamp.string(epochSeconds: now)),
                    RedisArgument(expiresAt > 0 ? Timestamp.string(epochSeconds: expiresAt) : ""), RedisArgument(expiresAt),
                    RedisArgument(metadata.ip ?? ""), RedisArgument(metadata.userAgent ?? ""), RedisArgument(ttl),
                ]
            )
            let oldest = Self.entries(fromScoredReply: excess)
            if !oldest.isEmpty {
                try await self.end(oldest, index: index, now: nowMilliseconds)
            }
        }
        return sessionID
    }

    /// From the near-cache when it holds the session; else one `HMGET` without an idle timeout, or with one a
    /// script that also slides the TTL once less than ``idleRefreshShare`` of the window is left.
    package func userID(sessionID: String) async throws -> String? {
        let key = self.keys.session(hash: RedisKeys.sessionHash(sessionID))
        var ticket: NearCache<RedisNearCache.CachedSession>.Ticket?
        if let cache {
            switch cache.lookup(key, now: self.nowMilliseconds()) {
            case .hit(let session): return session.userID
            case .miss(let missed): ticket = missed
            case .bypass: break
            }
        }
        let nowMilliseconds = self.nowMilliseconds()
        let found: (userID: String, validUntil: Int)?
        do {
            found = try await self.readSession(key, now: nowMilliseconds)
        } catch {
            if let ticket { self.cache?.abandon(ticket) }
            throw error
        }
        if let ticket, let cache {
            if let found {
                cache.fill(ticket, with: RedisNearCache.CachedSession(userID: found.userID), validUntil: found.validUntil, now: nowMilliseconds)
            } else {
                cache.abandon(ticket)
            }
        }
        return found?.userID
    }

    /// The session's user, and until when that answer may be reused without asking Redis (milliseconds since the
    /// epoch): its absolute expiry, and with an idle timeout the moment its TTL will need sliding.
    private func readSession(_ key: String, now nowMilliseconds: Int) async throws -> (userID: String, validUntil: Int)? {
        try await StoreError.mappingRedisErrors {
            let now = nowMilliseconds / 1000
            if let idle = self.idleTimeout {
                let reply = try await self.client.evalsha(
                    Self.touchScript,
                    keys: [key],
                    arguments: [RedisArgument(idle), RedisArgument(now), RedisArgument(Int(Double(idle * 1000) * Self.idleRefreshShare))]
                )
                guard let fields = reply.array, fields.count == 3, let userID = fields[0].string,
                    let left = fields[1].int64, let expires = fields[2].int64
                else { return nil }
                var validUntil = nowMilliseconds + Int(left) - Int(Double(idle * 1000) * Self.idleRefreshShare)
                if expires > 0 { validUntil = min(validUntil, Int(expires) * 1000) }
                return (userID, validUntil)
            }
            let fields = try await self.client.send(["HMGET", RedisArgument(key), "user_id", "expires_at_unix"]).array ?? []
            guard fields.count == 2, let userID = fields[0].string else { return nil }
            let expires = fields[1].string.flatMap(Int.init) ?? 0
            return (userID, expires > 0 ? expires * 1000 : Int.max)
        }
    }

    package func deleteSession(sessionID: String) async throws -> Bool {
        try await StoreError.mappingRedisErrors {
            try await self.end(hash: RedisKeys.sessionHash(sessionID), now: self.now())
        }
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

    /// The hash if it is that user's, then its index entry.
    package func deleteSession(userID: String, handle: String) async throws -> Bool {
        guard SessionID.isHandle(handle) else { return false }
        return try await StoreError.mappingRedisErrors {
            let reply = try await self.client.evalsha(
                Self.deleteOwnedScript,
                keys: [self.keys.session(hash: handle)],
                arguments: [RedisArgument(userID)]
            )
            self.cache?.invalidate(self.keys.session(hash: handle))
            guard reply.int64 == 1 else { return false }
            _ = try await self.client.zrem(self.keys.userSessions(userID: userID), members: [handle])
            return true
        }
    }

    /// Reads the user's index, deletes the hashes, then removes their entries: a crash in between leaves entries
    /// that name no hash, skipped and pruned later.
    package func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int {
        let keep = sessionID.map(RedisKeys.sessionHash)
        return try await StoreError.mappingRedisErrors {
            let index = self.keys.userSessions(userID: userID)
            let entries = try await self.client.zrangeWithScores(index, start: 0, stop: -1)
                .map { (handle: String(decoding: $0.member, as: UTF8.self), score: $0.score) }
                .filter { $0.handle != keep }
            return try await self.end(entries, index: index, now: self.nowMilliseconds())
        }
    }

    package func checkReady() async throws {
        _ = try await StoreError.mappingRedisErrors { try await self.client.ping() }
    }

    // MARK: - Steps

    /// Ends one session: its hash (a script that returns the owner), then its entry in the owner's index, with
    /// the owner's expired entries. `false` when there was no such session.
    private func end(hash: String, now: Int) async throws -> Bool {
        let key = self.keys.session(hash: hash)
        let owner = try await self.client.evalsha(Self.takeScript, keys: [key])
        // This process's cache forgets it now, not when Redis' announcement comes back (the client may ask again sooner).
        self.cache?.invalidate(key)
        guard let owner = owner.string else { return false }
        try await self.client.evalsha(
            Self.unindexScript,
            keys: [self.keys.userSessions(userID: owner)],
            arguments: [RedisArgument(hash), RedisArgument(now)]
        )
        return true
    }

    /// Ends sessions of one user's index: deletes their hashes (pipelined, one slot each), then removes from the
    /// index the entries whose hash was deleted, or is missing and older than ``pendingGrace`` (a younger one may
    /// belong to a login that has not written its hash yet). Returns how many hashes were deleted.
    @discardableResult
    private func end(_ entries: [(handle: String, score: Double)], index: String, now nowMilliseconds: Int) async throws -> Int {
        // Entries scored above this were made less than `pendingGrace` ago (the score is the creation time plus `duration`).
        let youngFrom = self.duration > 0 ? Double(nowMilliseconds / 1000 + self.duration - Self.pendingGrace) : Double.infinity
        var ended = 0
        for start in stride(from: 0, to: entries.count, by: Self.batchSize) {
            let batch = entries[start..<min(start + Self.batchSize, entries.count)]
            let replies = try await self.client.pipeline(batch.map { ["DEL", RedisArgument(self.keys.session(hash: $0.handle))] })
            for entry in batch {
                self.cache?.invalidate(self.keys.session(hash: entry.handle))
            }
            var unindex: [String] = []
            for (entry, reply) in zip(batch, replies) {
                if let message = reply.errorMessage { throw RedisClientError(.commandError, message: message) }
                let deleted = reply.int64 == 1
                if deleted { ended += 1 }
                if deleted || entry.score < youngFrom { unindex.append(entry.handle) }
            }
            if !unindex.isEmpty {
                _ = try await self.client.zrem(index, members: unindex)
            }
        }
        return ended
    }

    /// Runs a script that writes a login's state; through the replica waiter (`WAIT`) when `REDIS_WAIT_REPLICAS` is set.
    @discardableResult
    private func write(_ script: RedisScript, keys: [String], arguments: [RedisArgument]) async throws -> RESPValue {
        guard let waiter = self.replicaWaiter else {
            return try await self.client.evalsha(script, keys: keys, arguments: arguments)
        }
        return try await waiter.evalsha(script, keys: keys, arguments: arguments)
    }

    /// `[member, score, member, score, ...]` as pairs.
    private static func entries(fromScoredReply reply: RESPValue) -> [(handle: String, score: Double)] {
        let elements = reply.array ?? []
        return stride(from: 0, to: elements.count - 1, by: 2).compactMap { index in
            guard let handle = elements[index].string, let score = elements[index + 1].string.flatMap(Double.init) else { return nil }
            return (handle, score)
        }
    }

    // MARK: - Scripts (each touches the keys of one slot, all named in KEYS)

    /// KEYS: user-sessions. ARGV: new session hash, its score (the expiry in epoch seconds with milliseconds; `inf`:
    /// never), now, most sessions per user. Prunes expired entries, returns the oldest entries past the bound (with
    /// their scores; not removed: the caller deletes their hashes first), indexes the new session, and keeps the
    /// index alive as long as its longest session.
    static let indexScript = RedisScript(
        """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
        local maximum = tonumber(ARGV[4])
        local count = redis.call('ZCARD', KEYS[1])
        local oldest = {}
        if maximum > 0 and count >= maximum then
          oldest = redis.call('ZRANGE', KEYS[1], 0, count - maximum, 'WITHSCORES')
        end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if last[2] == 'inf' then redis.call('PERSIST', KEYS[1]) else redis.call('EXPIREAT', KEYS[1], math.floor(tonumber(last[2])) + 1) end
        return oldest
        """
    )

    /// KEYS: session. ARGV: user_id, created_at, expires_at, expires_at_unix (0: never), ip, user_agent, ttl (0: none).
    static let createScript = RedisScript(
        """
        redis.call('HSET', KEYS[1], 'user_id', ARGV[1], 'created_at', ARGV[2], 'expires_at', ARGV[3],
          'expires_at_unix', ARGV[4], 'ip', ARGV[5], 'user_agent', ARGV[6])
        local ttl = tonumber(ARGV[7])
        if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
        return 1
        """
    )

    /// KEYS: session. ARGV: idle seconds, now, the milliseconds left below which to slide. Returns `{user id,
    /// milliseconds left, expires_at_unix}`, having moved the TTL to min(idle, time left before the absolute
    /// expiry) if less than the threshold was left; nil when the session is gone.
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
        local current = redis.call('PTTL', KEYS[1])
        if current < tonumber(ARGV[3]) and ttl * 1000 > current then
          redis.call('EXPIRE', KEYS[1], ttl)
          current = ttl * 1000
        end
        return {fields[1], current, expires}
        """
    )

    /// KEYS: session. Deletes the session and returns its user id; nil when there was none.
    static let takeScript = RedisScript(
        """
        local user = redis.call('HGET', KEYS[1], 'user_id')
        if not user then return false end
        redis.call('DEL', KEYS[1])
        return user
        """
    )

    /// KEYS: user-sessions. ARGV: hash, now. Removes the entry and the expired ones.
    static let unindexScript = RedisScript(
        """
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2])
        return 1
        """
    )

    /// KEYS: session. ARGV: user id. Deletes the session if it is that user's; 1 if it was.
    static let deleteOwnedScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        return 1
        """
    )
}
