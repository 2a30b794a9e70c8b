import Synchronization

/// How a ``NearCache``'s lookups ended, and why entries were dropped, for metrics.
package struct NearCacheObserver: Sendable {
    package enum LookupResult: String, Sendable, CaseIterable {
        case hit, miss, bypass
    }

    package enum InvalidationReason: String, Sendable, CaseIterable {
        /// Redis announced a change of one key (or this process changed it).
        case key
        /// Everything was dropped: a `FLUSHALL`, or invalidations (re)started.
        case flush
        /// Invalidations stopped flowing: dropped and bypassed.
        case lost
    }

    package var lookup: @Sendable (LookupResult) -> Void
    package var invalidated: @Sendable (InvalidationReason) -> Void

    package init(lookup: @escaping @Sendable (LookupResult) -> Void, invalidated: @escaping @Sendable (InvalidationReason) -> Void) {
        self.lookup = lookup
        self.invalidated = invalidated
    }

    /// The counters `session_api_near_cache_lookups_total` and `session_api_near_cache_invalidations_total` of `cache`.
    package init(metrics: AppMetrics, cache: String) {
        let counters = metrics.nearCacheCounters(
            cache,
            results: LookupResult.allCases.map(\.rawValue),
            reasons: InvalidationReason.allCases.map(\.rawValue)
        )
        self.lookup = { counters.lookup($0.rawValue) }
        self.invalidated = { counters.invalidated($0.rawValue) }
    }
}

/// A bounded in-process cache of values read from Redis, kept right by Redis' key invalidations (see
/// ``RedisNearCache``): Redis stays the only source of truth, and an entry is dropped as soon as Redis announces
/// that its key changed.
///
/// The rules that keep it from ever answering with something Redis no longer holds:
/// - It starts bypassed, and is emptied and bypassed whenever invalidations stop flowing; it fills only while they
///   flow (``reset(flowing:)``).
/// - A read from Redis is cached only if nothing could have changed its key while it was in flight: ``lookup(_:now:)``
///   hands out a ``Ticket`` before the read is sent, and an invalidation of the key (or of everything) in the
///   meantime voids it, so ``fill(_:with:validUntil:now:)`` drops the late reply.
/// - An entry is used only before its own deadline: the value's expiry, the cache's TTL, whichever is first.
///
/// Full, it drops an entry not used since the clock hand last passed it (CLOCK, the second-chance approximation
/// of least recently used): a hit only sets a flag, an insert advances the hand past the entries used since.
/// Sendable: all state behind one lock; a lookup is one lock and one hash.
package final class NearCache<Value: Sendable>: Sendable {
    /// Permission to cache the answer of one read; voided by an invalidation of its key while the read is in flight.
    package struct Ticket: Sendable {
        let key: String
        let token: UInt64
    }

    package enum Lookup: Sendable {
        case hit(Value)
        /// Read from Redis, then ``fill(_:with:validUntil:now:)`` (or ``abandon(_:)``).
        case miss(Ticket)
        /// Invalidations are not flowing: read from Redis and cache nothing.
        case bypass
    }

    fileprivate struct Entry {
        var value: Value
        /// Milliseconds since the epoch.
        var validUntil: Int
        /// Its place on the clock (`State.ring`).
        var slot: Int
        /// Used since the hand last passed it: the hand spares it once.
        var used = false
    }

    fileprivate struct State {
        var entries: [String: Entry] = [:]
        /// The clock: each entry's key at its slot, `nil` where a slot is free.
        var ring: [String?] = []
        var freeSlots: [Int] = []
        var hand = 0
        /// The ticket token of the read in flight for each key (the latest, when several are).
        var pending: [String: UInt64] = [:]
        var nextToken: UInt64 = 0
        var flowing = false
    }

    /// The most entries kept.
    package let capacity: Int
    /// The longest an entry is used, in milliseconds.
    package let timeToLive: Int
    private let state = Mutex<State>(State())
    private let observer: NearCacheObserver?

    package init(capacity: Int, timeToLiveSeconds: Int, observer: NearCacheObserver? = nil) {
        self.capacity = max(1, capacity)
        self.timeToLive = max(0, timeToLiveSeconds) * 1000
        self.observer = observer
    }

    /// The entries held now.
    package var count: Int { self.state.withLock { $0.entries.count } }

    /// Whether invalidations flow (the cache is used).
    package var isFlowing: Bool { self.state.withLock { $0.flowing } }

    /// The value of `key` if cached and not past its deadline; else a ticket for the read, or `.bypass`.
    /// - Parameter now: Milliseconds since the epoch.
    package func lookup(_ key: String, now: Int) -> Lookup {
        let result = self.state.withLock { state -> Lookup in
            guard state.flowing else { return .bypass }
            if let entry = state.entries[key] {
                if now < entry.validUntil {
                    if !entry.used { state.entries[key]?.used = true }
                    return .hit(entry.value)
                }
                state.remove(key)
            }
            if state.pending.count >= self.capacity {
                // Only reads that failed without `abandon` pile up here; voiding them only costs their fills.
                state.pending.removeAll(keepingCapacity: true)
            }
            state.nextToken &+= 1
            state.pending[key] = state.nextToken
            return .miss(Ticket(key: key, token: state.nextToken))
        }
        if let observer = self.observer {
            switch result {
            case .hit: observer.lookup(.hit)
            case .miss: observer.lookup(.miss)
            case .bypass: observer.lookup(.bypass)
            }
        }
        return result
    }

    /// Caches what the ticket's read returned, unless the key was invalidated since, or the deadline (capped by the
    /// TTL) has passed already.
    package func fill(_ ticket: Ticket, with value: Value, validUntil: Int, now: Int) {
        let deadline = min(validUntil, now + self.timeToLive)
        self.state.withLock { state in
            guard state.pending[ticket.key] == ticket.token else { return }
            state.pending.removeValue(forKey: ticket.key)
            guard state.flowing, deadline > now else { return }
            if let slot = state.entries[ticket.key]?.slot {
                state.entries[ticket.key] = Entry(value: value, validUntil: deadline, slot: slot)
            } else {
                let slot = state.slot(capacity: self.capacity, now: now)
                state.ring[slot] = ticket.key
                state.entries[ticket.key] = Entry(value: value, validUntil: deadline, slot: slot)
            }
        }
    }

    /// The read failed, or found nothing to cache.
    package func abandon(_ ticket: Ticket) {
        self.state.withLock { state in
            if state.pending[ticket.key] == ticket.token { state.pending.removeValue(forKey: ticket.key) }
        }
    }

    /// Drops `key` and voids the reads of it in flight.
    package func invalidate(_ key: String) {
        self.state.withLock { state in
            state.remove(key)
            state.pending.removeValue(forKey: key)
        }
        self.observer?.invalidated(.key)
    }

    /// Drops everything and voids every read in flight; then fills again (`flowing: true`), stays bypassed
    /// (`false`), or keeps its mode (`nil`).
    package func reset(flowing: Bool?) {
        self.state.withLock { state in
            state.entries.removeAll()
            state.ring.removeAll()
            state.freeSlots.removeAll()
            state.hand = 0
            state.pending.removeAll()
            if let flowing { state.flowing = flowing }
        }
        self.observer?.invalidated(flowing == false ? .lost : .flush)
    }
}

extension NearCache.State {
    mutating func remove(_ key: String) {
        guard let entry = self.entries.removeValue(forKey: key) else { return }
        self.ring[entry.slot] = nil
        self.freeSlots.append(entry.slot)
    }

    /// A slot for a new entry: a free one, a new one below `capacity`, or the slot of the first entry the hand
    /// finds unused since its last pass (or expired), clearing the used flags it passes (at most one full turn).
    mutating func slot(capacity: Int, now: Int) -> Int {
        if let free = self.freeSlots.popLast() { return free }
        if self.ring.count < capacity {
            self.ring.append(nil)
            return self.ring.count - 1
        }
        while true {
            let slot = self.hand
            self.hand = (self.hand + 1) % self.ring.count
            guard let key = self.ring[slot], let entry = self.entries[key] else { return slot }
            if entry.used && now < entry.validUntil {
                self.entries[key]?.used = false
            } else {
                self.entries.removeValue(forKey: key)
                self.ring[slot] = nil
                return slot
            }
        }
    }
}
