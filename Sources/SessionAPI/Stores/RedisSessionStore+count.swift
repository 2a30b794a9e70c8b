import RedisClient

extension RedisSessionStore {
    /// The live sessions of every user: `SCAN MATCH <prefix>session:* COUNT 1000` (on every primary of a cluster),
    /// never `KEYS` (so Redis is never blocked for long), each key counted once (SCAN may return a key twice while
    /// Redis rehashes). Redis drops expired keys from SCAN's replies, so expired sessions are not counted.
    package func count() async throws -> Int {
        try await StoreError.mappingRedisErrors {
            var seen = Set<Int>()
            try await self.client.scanKeys(matching: self.keys.sessionPattern) { keys in
                // Hash values, not the keys: 8 bytes a session, and a collision of 64-bit hashes is far too rare to matter.
                for key in keys {
                    if let bytes = key.bytes { seen.insert(bytes.hashValue) }
                }
            }
            return seen.count
        }
    }
}
