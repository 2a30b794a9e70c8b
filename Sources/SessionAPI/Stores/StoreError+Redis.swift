import RedisClient

extension StoreError {
    /// Runs a Redis operation, turning every client failure (down, paused, timeout, `LOADING` after a
    /// restart, ...) into `.unavailable`, which the API answers with 503.
    @discardableResult
    static func mappingRedisErrors<T>(_ operation: () async throws -> T) async throws -> T {
        do {
            return try await operation()
        } catch let error as RedisClientError {
            throw StoreError(.unavailable, "redis: \(error)")
        }
    }
}
