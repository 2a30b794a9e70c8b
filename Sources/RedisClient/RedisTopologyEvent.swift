/// A change in how ``RedisClient`` reaches Redis: a connection came up or went down, the Sentinels named a new
/// master, or the cluster's slot map changed.
///
/// Meant for caches kept next to the client: anything cached from replies may be stale after such an event (another
/// server now answers, or replies were missed while disconnected). See ``RedisClient/topologyEvents()`` and
/// ``RedisClient/topologyGeneration``.
public struct RedisTopologyEvent: Sendable, Hashable, CustomStringConvertible {
    /// What happened, as an extensible set of kinds (new kinds are not a breaking change).
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case connected
            case disconnected
            case masterChanged
            case clusterMapChanged
        }

        let base: Base

        /// A pool connection (or a cluster node's connection) is up, for the first time or again.
        public static var connected: Self { .init(base: .connected) }
        /// A pool connection (or a cluster node's connection) was lost or closed.
        public static var disconnected: Self { .init(base: .disconnected) }
        /// The Sentinels name another master than before; ``RedisTopologyEvent/endpoint`` is the new one.
        public static var masterChanged: Self { .init(base: .masterChanged) }
        /// The cluster's slot map changed (a failover, a resharding, new nodes).
        public static var clusterMapChanged: Self { .init(base: .clusterMapChanged) }

        public var description: String {
            switch self.base {
            case .connected: "connected"
            case .disconnected: "disconnected"
            case .masterChanged: "masterChanged"
            case .clusterMapChanged: "clusterMapChanged"
            }
        }
    }

    /// What happened.
    public var kind: Kind
    /// The server concerned, when there is one.
    public var endpoint: RedisClientConfiguration.Endpoint?
    /// ``RedisClient/topologyGeneration`` right after this event.
    public var generation: UInt64

    public var description: String {
        "\(self.kind)\(self.endpoint.map { " \($0)" } ?? "") (generation \(self.generation))"
    }
}
