import Synchronization

/// Counts topology changes and hands each one to every open ``RedisClient/topologyEvents()`` stream.
///
/// Sendable: an atomic counter and a lock-protected table of stream continuations.
final class RedisTopologyEvents: Sendable {
    private let generation = Atomic<UInt64>(0)
    private let subscribers = Mutex<Subscribers>(Subscribers())
    /// ``RedisClientObserver/reconnected``, if the client has an observer.
    private let reconnectObserver: (@Sendable (RedisClientConfiguration.Endpoint) -> Void)?

    init(reconnected: (@Sendable (RedisClientConfiguration.Endpoint) -> Void)? = nil) {
        self.reconnectObserver = reconnected
    }

    /// A pool connection came up again after it had been up before: tells the client's observer.
    func reconnected(_ endpoint: RedisClientConfiguration.Endpoint) {
        self.reconnectObserver?(endpoint)
    }

    private struct Subscribers {
        var nextID = 0
        var continuations: [Int: AsyncStream<RedisTopologyEvent>.Continuation] = [:]
    }

    /// The number of changes so far.
    var currentGeneration: UInt64 {
        self.generation.load(ordering: .acquiring)
    }

    /// Records a change and tells every subscriber.
    func emit(_ kind: RedisTopologyEvent.Kind, endpoint: RedisClientConfiguration.Endpoint?) {
        // Under the lock, so every subscriber sees the events in generation order.
        self.subscribers.withLock { subscribers in
            let generation = self.generation.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue
            let event = RedisTopologyEvent(kind: kind, endpoint: endpoint, generation: generation)
            for continuation in subscribers.continuations.values {
                continuation.yield(event)
            }
        }
    }

    /// A new stream of the events from now on; it keeps the newest 1,000 events a slow reader has not taken yet.
    func stream() -> AsyncStream<RedisTopologyEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: RedisTopologyEvent.self, bufferingPolicy: .bufferingNewest(1000))
        let id = self.subscribers.withLock { subscribers in
            let id = subscribers.nextID
            subscribers.nextID += 1
            subscribers.continuations[id] = continuation
            return id
        }
        continuation.onTermination = { _ in
            _ = self.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every stream (the client stopped).
    func finish() {
        let continuations = self.subscribers.withLock { subscribers in
            defer { subscribers.continuations = [:] }
            return Array(subscribers.continuations.values)
        }
        for continuation in continuations {
            continuation.finish()
        }
    }
}
