import Logging
import RedisClient
import ServiceLifecycle

/// The near-cache of one process (`NEAR_CACHE`): session lookups, and users when they live in Redis, answered
/// from memory while Redis' key invalidations flow, so that a repeat request needs no Redis round trip and a
/// logout, a revocation or an operator's `DEL` anywhere still ends the session everywhere as the invalidation
/// arrives (see README, "Near-cache").
///
/// One ``RedisInvalidationListener`` (one connection per process) hears about every key under
/// `<prefix>session:` (and `<prefix>user:{`), and routes each announced key to the cache holding it.
package final class RedisNearCache: Sendable {
    /// A session's hash key -> its user and absolute expiry.
    package let sessions: NearCache<CachedSession>
    /// A user's hash key -> the user; `nil` when users are not in Redis.
    package let users: NearCache<User>?
    private let sessionPrefix: String
    private let userPrefix: String

    /// What a session lookup needs: whose it is.
    package struct CachedSession: Sendable {
        package var userID: String
    }

    package init(keys: RedisKeys, capacity: Int, timeToLiveSeconds: Int, cachesUsers: Bool, metrics: AppMetrics?) {
        self.sessions = NearCache(
            capacity: capacity,
            timeToLiveSeconds: timeToLiveSeconds,
            observer: metrics.map { NearCacheObserver(metrics: $0, cache: "sessions") }
        )
        self.users =
            cachesUsers
            ? NearCache(
                capacity: capacity,
                timeToLiveSeconds: timeToLiveSeconds,
                observer: metrics.map { NearCacheObserver(metrics: $0, cache: "users") }
            ) : nil
        self.sessionPrefix = keys.session(hash: "")
        self.userPrefix = String(keys.user(id: "").dropLast())
        metrics?.observeNearCache { [sessions, users] in [("sessions", sessions.count)] + (users.map { [("users", $0.count)] } ?? []) }
    }

    /// The key prefixes Redis must announce.
    package var trackedPrefixes: [String] {
        [self.sessionPrefix] + (self.users == nil ? [] : [self.userPrefix])
    }

    /// The listener that keeps both caches right; run it as a service (after the client it uses).
    package func listener(client: RedisClient) -> RedisInvalidationListener {
        RedisInvalidationListener(client: client, prefixes: self.trackedPrefixes) { [self] invalidation in
            self.apply(invalidation)
        }
    }

    /// Applies one invalidation to the caches it concerns.
    package func apply(_ invalidation: RedisInvalidation) {
        switch invalidation {
        case .started:
            self.sessions.reset(flowing: true)
            self.users?.reset(flowing: true)
        case .stopped:
            self.sessions.reset(flowing: false)
            self.users?.reset(flowing: false)
        case .flushed:
            self.sessions.reset(flowing: nil)
            self.users?.reset(flowing: nil)
        case .keys(let keys):
            for key in keys {
                if key.hasPrefix(self.sessionPrefix) {
                    self.sessions.invalidate(key)
                } else if let users = self.users, key.hasPrefix(self.userPrefix) {
                    users.invalidate(key)
                }
            }
        }
    }
}
