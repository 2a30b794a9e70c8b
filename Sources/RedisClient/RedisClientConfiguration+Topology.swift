extension RedisClientConfiguration {
    /// How the client finds the server(s): one server at ``RedisClientConfiguration/endpoint`` (the default), the master
    /// that a set of Sentinels names, or a Redis Cluster.
    ///
    /// In every topology, ``RedisClientConfiguration/username``, ``RedisClientConfiguration/password`` and
    /// ``RedisClientConfiguration/tls`` apply to the data connections (and TLS to the Sentinel connections too), so a
    /// configuration is typically built from `REDIS_URL` first, then given a topology:
    /// ```swift
    /// var configuration = try RedisClientConfiguration(url: "rediss://:secret@unused/0?ca=/etc/ssl/redis-ca.pem")
    /// configuration.topology = .sentinel(
    ///     .init(endpoints: try RedisClientConfiguration.Endpoint.list("10.0.0.1,10.0.0.2,10.0.0.3", defaultPort: 26379), masterName: "sessions")
    /// )
    /// ```
    /// With a Sentinel or Cluster topology, the host and port of ``RedisClientConfiguration/endpoint`` are not used.
    public struct Topology: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case standalone
            case sentinel(Sentinel)
            case cluster(Cluster)
        }

        let base: Base

        /// One server, at ``RedisClientConfiguration/endpoint``.
        public static var standalone: Self { .init(base: .standalone) }

        /// The master that the Sentinels name; see ``Sentinel``.
        public static func sentinel(_ sentinel: Sentinel) -> Self {
            .init(base: .sentinel(sentinel))
        }

        /// A Redis Cluster reached through its seed nodes; see ``Cluster``.
        public static func cluster(_ cluster: Cluster) -> Self {
            .init(base: .cluster(cluster))
        }

        /// The Sentinel settings, when this is a Sentinel topology.
        public var sentinel: Sentinel? {
            if case .sentinel(let sentinel) = self.base { return sentinel }
            return nil
        }

        /// The Cluster settings, when this is a Cluster topology.
        public var cluster: Cluster? {
            if case .cluster(let cluster) = self.base { return cluster }
            return nil
        }

        public var description: String {
            switch self.base {
            case .standalone:
                return "standalone"
            case .sentinel(let sentinel):
                return "sentinel master '\(sentinel.masterName)' via \(sentinel.endpoints.map(\.description).joined(separator: ","))"
            case .cluster(let cluster):
                return "cluster via \(cluster.seeds.map(\.description).joined(separator: ","))"
            }
        }
    }

    /// Redis Sentinel: the client asks the Sentinels for the master, checks with `ROLE` that it is one, and moves every
    /// connection to the new master after a failover.
    ///
    /// It asks the Sentinels in turn (`SENTINEL get-master-addr-by-name`) at start-up and whenever the master looks
    /// gone: a connection to it is lost, a command gets a `READONLY` or `MASTERDOWN` error, or a Sentinel announces
    /// `+switch-master` (the client keeps one subscriber connection to a Sentinel for that). While no master is
    /// known, commands fail at once with ``RedisClientError/Code/notConnected``.
    public struct Sentinel: Sendable, Hashable {
        /// The Sentinels (port 26379 by default in ``Endpoint/list(_:defaultPort:)``); asked in turn, the last one that
        /// answered first.
        public var endpoints: [Endpoint]
        /// The name the Sentinels monitor the master under (`sentinel monitor NAME ...`).
        public var masterName: String
        /// The ACL user for `AUTH` on the Sentinels, or `nil`.
        public var username: String?
        /// The password for `AUTH` on the Sentinels (their `requirepass`), or `nil`; separate from the data password.
        public var password: String?

        /// Creates Sentinel settings.
        /// - Parameters:
        ///   - endpoints: The Sentinels; at least one.
        ///   - masterName: The monitored master's name.
        ///   - username: The ACL user on the Sentinels, or `nil`.
        ///   - password: The Sentinels' password, or `nil`.
        public init(endpoints: [Endpoint], masterName: String, username: String? = nil, password: String? = nil) {
            self.endpoints = endpoints
            self.masterName = masterName
            self.username = username
            self.password = password
        }
    }

    /// Redis Cluster: the client reads the slot map from the seed nodes and sends each command to the primary that
    /// owns its keys' slot.
    public struct Cluster: Sendable, Hashable {
        /// Some nodes of the cluster; any one that answers is enough to learn the others.
        public var seeds: [Endpoint]

        /// Creates Cluster settings.
        /// - Parameter seeds: Some nodes of the cluster; at least one.
        public init(seeds: [Endpoint]) {
            self.seeds = seeds
        }
    }
}

extension RedisClientConfiguration.Endpoint {
    /// Parses a comma-separated list of `host[:port]` (IPv6 in brackets), as in `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`.
    /// - Parameters:
    ///   - list: Such as `10.0.0.1:26379,10.0.0.2,[::1]:26380`; spaces around entries are ignored.
    ///   - defaultPort: The port of an entry without one (26379 for Sentinels, 6379 for cluster nodes).
    /// - Returns: The endpoints, in order; never empty.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/invalidConfiguration`` naming the bad entry.
    public static func list(_ list: String, defaultPort: Int) throws(RedisClientError) -> [Self] {
        var endpoints: [Self] = []
        for entry in list.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = entry.trimmingPrefix(while: \.isWhitespace)
            let text = trimmed[..<(trimmed.lastIndex(where: { !$0.isWhitespace }).map { trimmed.index(after: $0) } ?? trimmed.startIndex)]
            guard !text.isEmpty else {
                throw RedisClientError(.invalidConfiguration, message: "invalid endpoint list '\(list)': an entry is empty")
            }
            do {
                let (host, port) = try RedisURLParser.hostAndPort(text, defaultPort: defaultPort)
                endpoints.append(.tcp(host: host, port: port))
            } catch {
                throw RedisClientError(.invalidConfiguration, message: "invalid endpoint '\(text)' in '\(list)': \(error.reason)")
            }
        }
        return endpoints
    }
}
