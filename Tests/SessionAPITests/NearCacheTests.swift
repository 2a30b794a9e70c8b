import RedisClient
import Testing

@testable import SessionAPI

/// The near-cache's rules on their own, with a hand-driven clock: bypassed until invalidations flow, a read that
/// raced an invalidation never cached, no entry used past its deadline, bounded.
@Suite struct NearCacheTests {
    static func flowingCache(capacity: Int = 10, ttl: Int = 60) -> NearCache<String> {
        let cache = NearCache<String>(capacity: capacity, timeToLiveSeconds: ttl)
        cache.reset(flowing: true)
        return cache
    }

    /// Reads `key` through the cache as a store does: a hit, or a ticket filled with `value`.
    static func read(_ cache: NearCache<String>, _ key: String, value: String, validUntil: Int = .max, now: Int = 0) -> String? {
        switch cache.lookup(key, now: now) {
        case .hit(let cached): return cached
        case .miss(let ticket):
            cache.fill(ticket, with: value, validUntil: validUntil, now: now)
            return nil
        case .bypass: return nil
        }
    }

    @Test func bypassedUntilInvalidationsFlowAndAfterTheyStop() {
        let cache = NearCache<String>(capacity: 10, timeToLiveSeconds: 60)
        guard case .bypass = cache.lookup("k", now: 0) else {
            Issue.record("a new cache is used before invalidations flow")
            return
        }
        cache.reset(flowing: true)
        #expect(Self.read(cache, "k", value: "v") == nil)
        #expect(Self.read(cache, "k", value: "v") == "v")
        cache.reset(flowing: false)
        guard case .bypass = cache.lookup("k", now: 0) else {
            Issue.record("used after invalidations stopped")
            return
        }
        cache.reset(flowing: true)
        #expect(cache.count == 0, "started again: what was cached before is gone")
    }

    @Test func aReadThatRacedAnInvalidationIsNeverCached() {
        let cache = Self.flowingCache()
        guard case .miss(let ticket) = cache.lookup("k", now: 0) else {
            Issue.record("expected a miss")
            return
        }
        cache.invalidate("k")  // the key changed while the read was in flight
        cache.fill(ticket, with: "old", validUntil: .max, now: 0)
        #expect(cache.count == 0)
        // The same after a flush, or a lost connection, in between.
        for reset: Bool? in [nil, false] {
            cache.reset(flowing: true)
            guard case .miss(let raced) = cache.lookup("k", now: 0) else {
                Issue.record("expected a miss")
                return
            }
            cache.reset(flowing: reset)
            cache.reset(flowing: true)
            cache.fill(raced, with: "old", validUntil: .max, now: 0)
            #expect(cache.count == 0)
        }
    }

    @Test func anOlderOfTwoConcurrentReadsIsDropped() {
        let cache = Self.flowingCache()
        guard case .miss(let first) = cache.lookup("k", now: 0), case .miss(let second) = cache.lookup("k", now: 0) else {
            Issue.record("expected misses")
            return
        }
        cache.fill(first, with: "first", validUntil: .max, now: 0)
        #expect(cache.count == 0)
        cache.fill(second, with: "second", validUntil: .max, now: 0)
        #expect(Self.read(cache, "k", value: "unused") == "second")
    }

    @Test func noEntryIsUsedPastItsDeadlineOrTheTTL() {
        let cache = Self.flowingCache(ttl: 10)
        _ = Self.read(cache, "short", value: "v", validUntil: 5_000, now: 0)
        #expect(Self.read(cache, "short", value: "v", now: 4_999) == "v")
        #expect(Self.read(cache, "short", value: "v", now: 5_000) == nil, "at its own deadline it is a miss")
        _ = Self.read(cache, "long", value: "v", now: 0)
        #expect(Self.read(cache, "long", value: "v", now: 9_999) == "v")
        #expect(Self.read(cache, "long", value: "v", now: 10_000) == nil, "the TTL caps it")
        // A deadline already passed is not cached at all.
        _ = Self.read(cache, "past", value: "v", validUntil: 100, now: 100)
        #expect(Self.read(cache, "past", value: "v", now: 100) == nil)
    }

    @Test func itHoldsAtMostItsCapacity() {
        let cache = Self.flowingCache(capacity: 3)
        for index in 0..<10 {
            _ = Self.read(cache, "k\(index)", value: "v")
        }
        #expect(cache.count == 3)
        #expect(Self.read(cache, "k9", value: "v") == "v", "the newest entry is kept")
    }

    /// Full, it drops an entry not used since the clock hand last passed (CLOCK): the used ones stay.
    @Test func evictionSparesTheEntriesInUse() {
        let cache = Self.flowingCache(capacity: 3)
        for key in ["a", "b", "c"] { _ = Self.read(cache, key, value: key) }
        #expect(Self.read(cache, "a", value: "a") == "a")
        #expect(Self.read(cache, "c", value: "c") == "c")
        _ = Self.read(cache, "d", value: "d")  // b is the one not used since it came in
        #expect(cache.count == 3)
        for key in ["a", "c", "d"] { #expect(Self.read(cache, key, value: key) == key, "\(key)") }
        #expect(Self.read(cache, "b", value: "b") == nil)  // gone: this read fills it again, in place of one of the three
        #expect(cache.count == 3)

        // A hot set of 3 among a stream of one-off keys, capacity 4: the hot keys keep hitting.
        let hot = Self.flowingCache(capacity: 4)
        var hits = 0
        for round in 0..<200 {
            for key in ["h1", "h2", "h3"] where Self.read(hot, key, value: key) != nil { hits += 1 }
            _ = Self.read(hot, "once-\(round)", value: "x")
        }
        #expect(hits >= 3 * 200 - 10, "\(hits) hits of 600")
        #expect(hot.count == 4)
    }

    /// Invalidated and expired entries free their slots; a flush empties the clock.
    @Test func freedSlotsAreReused() {
        let cache = Self.flowingCache(capacity: 2)
        _ = Self.read(cache, "a", value: "a")
        _ = Self.read(cache, "b", value: "b", validUntil: 50)
        cache.invalidate("a")
        #expect(Self.read(cache, "b", value: "b", now: 60) == nil)  // expired: dropped, then filled again (valid now)
        _ = Self.read(cache, "c", value: "c")
        _ = Self.read(cache, "d", value: "d")
        #expect(cache.count == 2)
        cache.reset(flowing: true)
        #expect(cache.count == 0)
        for key in ["e", "f"] { _ = Self.read(cache, key, value: key) }
        for key in ["e", "f"] { #expect(Self.read(cache, key, value: key) == key) }
    }

    @Test func anAbandonedReadLeavesNothing() {
        let cache = Self.flowingCache()
        guard case .miss(let ticket) = cache.lookup("k", now: 0) else {
            Issue.record("expected a miss")
            return
        }
        cache.abandon(ticket)
        cache.fill(ticket, with: "late", validUntil: .max, now: 0)
        #expect(cache.count == 0)
    }

    /// The invalidation router: each announced key goes to the cache that holds it; users only when cached.
    @Test func announcedKeysReachTheCacheHoldingThem() {
        let keys = RedisKeys(prefix: "p:")
        let nearCache = RedisNearCache(keys: keys, capacity: 10, timeToLiveSeconds: 60, cachesUsers: true, metrics: nil)
        #expect(nearCache.trackedPrefixes == ["p:session:", "p:user:{"])
        nearCache.apply(.started)
        let session = keys.session(hash: "abc")
        let user = keys.user(id: "42")
        if case .miss(let ticket) = nearCache.sessions.lookup(session, now: 0) {
            nearCache.sessions.fill(ticket, with: .init(userID: "42"), validUntil: .max, now: 0)
        }
        if let users = nearCache.users, case .miss(let ticket) = users.lookup(user, now: 0) {
            users.fill(
                ticket,
                with: User(id: "42", email: "a@example.com", passwordHash: nil, createdAt: "", updatedAt: ""),
                validUntil: .max,
                now: 0
            )
        }
        #expect(nearCache.sessions.count == 1 && nearCache.users?.count == 1)
        nearCache.apply(.keys([user, keys.userSessions(userID: "42")]))
        #expect(nearCache.sessions.count == 1 && nearCache.users?.count == 0)
        nearCache.apply(.keys([session]))
        #expect(nearCache.sessions.count == 0)
        nearCache.apply(.stopped)
        #expect(!nearCache.sessions.isFlowing && nearCache.users?.isFlowing == false)
    }
}
