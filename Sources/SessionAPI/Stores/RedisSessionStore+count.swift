import RedisClient

extension RedisSessionStore {
    /// The live sessions of every user: `SCAN MATCH <prefix>session:* COUNT 1000`, never `KEYS` (so Redis is never
    /// blocked for long), each key counted once (SCAN may return a key twice while Redis rehashes). Redis drops
    /// expired keys from SCAN's replies, so expired sessions are not counted.
    package func count() async throws -> Int {
        try await StoreError.mappingRedisErrors {
            let pattern = self.keys.sessionPattern
            var seen = Set<Int>()
            var cursor = "0"
            repeat {
                let reply = try await self.client.send(["SCAN", RedisArgument(cursor), "MATCH", RedisArgument(pattern), "COUNT", 1000])
                guard let page = reply.array, page.count == 2, let next = page[0].string, let keys = page[1].array else {
                    throw RedisClientError(.unexpectedReply, message: "unexpected reply to SCAN")
                }
                // Hash values, not the keys: 8 bytes a session, and a collision of 64-bit hashes is far too rare to matter.
                for key in keys {
                    if let bytes = key.bytes { seen.insert(bytes.hashValue) }
                }
                cursor = next
            } while cursor != "0"
            return seen.count
        }
    }
}
