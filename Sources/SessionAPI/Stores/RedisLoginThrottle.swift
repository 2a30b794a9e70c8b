import RedisClient

/// Failed logins in Redis, shared by every process: a sorted set of failure times (milliseconds) per key,
/// `<prefix>throttle:account:<sha256 of the normalised email>` and `<prefix>throttle:address:<ip>`, at most
/// `limit` entries each, expiring with the window. Each script touches one key (one Cluster slot).
package struct RedisLoginThrottle: LoginThrottle {
    private let client: RedisClient
    private let keys: RedisKeys
    private let limits: ThrottleLimits
    private let nowMilliseconds: @Sendable () -> Int

    package init(client: RedisClient, keys: RedisKeys, limits: ThrottleLimits, nowMilliseconds: (@Sendable () -> Int)? = nil) {
        self.client = client
        self.keys = keys
        self.limits = limits
        self.nowMilliseconds = nowMilliseconds ?? { Timestamp.nowMilliseconds() }
    }

    package func retryAfter(account: String, address: String?) async throws -> Int? {
        let now = self.nowMilliseconds()
        var wait = 0
        for (key, limit) in self.throttleKeys(account: account, address: address) where limit > 0 {
            let reply = try await StoreError.mappingRedisErrors {
                try await self.client.evalsha(
                    Self.checkScript,
                    keys: [key],
                    arguments: [RedisArgument(now), RedisArgument(self.limits.windowSeconds * 1000), RedisArgument(limit)]
                )
            }
            wait = max(wait, Int(reply.int64 ?? 0))
        }
        return wait > 0 ? max(1, (wait + 999) / 1000) : nil
    }

    package func recordFailure(account: String, address: String?) async throws {
        let now = self.nowMilliseconds()
        for (key, limit) in self.throttleKeys(account: account, address: address) where limit > 0 {
            try await StoreError.mappingRedisErrors {
                try await self.client.evalsha(
                    Self.recordScript,
                    keys: [key],
                    arguments: [
                        RedisArgument(now), RedisArgument(self.limits.windowSeconds * 1000), RedisArgument(limit),
                        RedisArgument("\(now)-\(RandomID.make().prefix(8))"),
                    ]
                )
            }
        }
    }

    package func recordSuccess(account: String) async throws {
        _ = try await StoreError.mappingRedisErrors { try await self.client.send(["DEL", RedisArgument(self.keys.throttle(account: account))]) }
    }

    private func throttleKeys(account: String, address: String?) -> [(String, Int)] {
        var keys = [(self.keys.throttle(account: account), self.limits.perAccount)]
        if let address { keys.append((self.keys.throttle(address: address), self.limits.perAddress)) }
        return keys
    }

    /// KEYS: throttle key. ARGV: now (ms), window (ms), limit. Milliseconds until fewer than `limit` failures are
    /// in the window (0: none to wait).
    static let checkScript = RedisScript(
        """
        local since = tonumber(ARGV[1]) - tonumber(ARGV[2])
        local recent = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. since, '+inf', 'WITHSCORES')
        local count = #recent / 2
        local limit = tonumber(ARGV[3])
        if count < limit then return 0 end
        local oldest = tonumber(recent[2 * (count - limit) + 2])
        return math.max(1, math.ceil(oldest + tonumber(ARGV[2]) - tonumber(ARGV[1])))
        """
    )

    /// KEYS: throttle key. ARGV: now (ms), window (ms), limit, a unique member. Adds a failure, keeps at most
    /// `limit` in the window, expires the key with the window.
    static let recordScript = RedisScript(
        """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
        local count = redis.call('ZCARD', KEYS[1])
        local limit = tonumber(ARGV[3])
        if count > limit then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, count - limit - 1) end
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return count
        """
    )
}
