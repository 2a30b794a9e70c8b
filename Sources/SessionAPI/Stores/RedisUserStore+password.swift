import RedisClient

extension RedisUserStore {
    /// Sets `_password` and `updated_at` in the user's hash, if the user exists (the update script: one step).
    package func setPasswordHash(id: String, passwordHash: String, updatedAt: String) async throws -> User? {
        let fields: [RedisArgument] = [
            RedisArgument(User.Field.updatedAt.rawValue), RedisArgument(updatedAt),
            RedisArgument(User.Field.passwordHash.rawValue), RedisArgument(passwordHash),
        ]
        let reply = try await StoreError.mappingRedisErrors {
            try await self.client.evalsha(Self.updateScript, keys: [self.keys.user(id: id)], arguments: fields)
        }
        return Self.user(fromHashReply: reply)
    }
}
