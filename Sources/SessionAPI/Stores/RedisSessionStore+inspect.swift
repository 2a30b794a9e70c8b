import RedisClient

extension RedisSessionStore {
    /// The session hash behind a session ID (`<prefix>session:<sha256>`), its TTL, and its entry in the user's
    /// index: what an operator would otherwise look up with `redis-cli` after hashing the cookie by hand.
    package func inspect(sessionID: String) async throws -> SessionInspection? {
        let handle = RedisKeys.sessionHash(sessionID)
        let key = self.keys.session(hash: handle)
        return try await StoreError.mappingRedisErrors {
            let replies = try await self.client.pipeline([["HGETALL", RedisArgument(key)], ["TTL", RedisArgument(key)]])
            var fields: [String: String] = [:]
            let elements = replies.first?.array ?? []
            for index in stride(from: 0, to: elements.count - 1, by: 2) {
                if let name = elements[index].string, let value = elements[index + 1].string { fields[name] = value }
            }
            guard !fields.isEmpty else { return nil }
            var index: (key: String, score: String?)?
            if let userID = fields["user_id"] {
                let indexKey = self.keys.userSessions(userID: userID)
                let score = try await self.client.send(["ZSCORE", RedisArgument(indexKey), RedisArgument(handle)])
                index = (indexKey, score.string)
            }
            let expiresAt = fields["expires_at_unix"].flatMap { Int($0) } ?? 0
            return SessionInspection(
                handle: handle,
                location: key,
                fields: fields,
                timeToLive: replies.count > 1 ? replies[1].int64.map { Int($0) } : nil,
                index: index,
                isLive: fields["user_id"] != nil && (expiresAt == 0 || expiresAt > self.now())
            )
        }
    }
}
