import Foundation
import RedisClient

extension AppConfiguration {
    /// Reads the Redis topology and replication settings: `REDIS_SENTINELS` with `REDIS_SENTINEL_MASTER` (and
    /// `REDIS_SENTINEL_USERNAME`, `REDIS_SENTINEL_PASSWORD`), or `REDIS_CLUSTER_NODES`; `REDIS_WAIT_REPLICAS` and
    /// `REDIS_WAIT_TIMEOUT_MS`; and checks that `REDIS_PREFIX` holds no hash-tag brace.
    ///
    /// Call it after `REDIS_URL` is parsed into `redis`: with a topology, the URL gives the data connections'
    /// credentials, database and TLS, and its host is not used; without a URL, they are none, 0 and plain TCP.
    /// Reads the TLS files the URL names (``RedisClientConfiguration/validate()``), so a wrong path fails here.
    /// - Throws: `ConfigurationError` naming the variable that cannot be used.
    mutating func readRedisTopology(_ environment: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        func endpoints(_ name: String, defaultPort: Int) throws(ConfigurationError) -> [RedisClientConfiguration.Endpoint]? {
            guard let list = value(name) else { return nil }
            do {
                return try RedisClientConfiguration.Endpoint.list(list, defaultPort: defaultPort)
            } catch {
                throw ConfigurationError(variable: name, reason: error.message)
            }
        }
        func milliseconds(_ name: String, _ range: ClosedRange<Int>, _ what: String) throws(ConfigurationError) -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(variable: name, reason: "'\(text)' is not \(what) (\(range.lowerBound)-\(range.upperBound))")
            }
            return number
        }

        if let prefix = environment["REDIS_PREFIX"], prefix.contains(where: { $0 == "{" || $0 == "}" }) {
            throw ConfigurationError(
                variable: "REDIS_PREFIX",
                reason: "'\(prefix)' must not contain { or }: they would change the Redis Cluster hash tag of every key"
            )
        }

        let sentinels = try endpoints("REDIS_SENTINELS", defaultPort: 26379)
        let clusterNodes = try endpoints("REDIS_CLUSTER_NODES", defaultPort: 6379)
        let master = value("REDIS_SENTINEL_MASTER")
        let sentinelUsername = value("REDIS_SENTINEL_USERNAME")
        let sentinelPassword = environment["REDIS_SENTINEL_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        if sentinels != nil, clusterNodes != nil {
            throw ConfigurationError(
                variable: "REDIS_CLUSTER_NODES",
                reason: "cannot go with REDIS_SENTINELS: Redis is either a Sentinel master or a Cluster"
            )
        }
        if sentinels == nil {
            for (name, isSet) in [
                ("REDIS_SENTINEL_MASTER", master != nil), ("REDIS_SENTINEL_USERNAME", sentinelUsername != nil),
                ("REDIS_SENTINEL_PASSWORD", sentinelPassword != nil),
            ] where isSet {
                throw ConfigurationError(variable: name, reason: "needs REDIS_SENTINELS")
            }
        }

        var topology: RedisClientConfiguration.Topology?
        if let sentinels {
            guard let master else {
                throw ConfigurationError(
                    variable: "REDIS_SENTINEL_MASTER",
                    reason: "needed with REDIS_SENTINELS: the name the Sentinels monitor the master under"
                )
            }
            topology = .sentinel(.init(endpoints: sentinels, masterName: master, username: sentinelUsername, password: sentinelPassword))
        } else if let clusterNodes {
            topology = .cluster(.init(seeds: clusterNodes))
        }
        if let topology {
            var redis = self.redis ?? RedisClientConfiguration()
            if value("REDIS_URL")?.lowercased().hasPrefix("unix:") == true {
                throw ConfigurationError(
                    variable: "REDIS_URL",
                    reason: "a unix:// URL cannot go with \(sentinels != nil ? "REDIS_SENTINELS" : "REDIS_CLUSTER_NODES")"
                )
            }
            if clusterNodes != nil, redis.database != 0 {
                throw ConfigurationError(variable: "REDIS_URL", reason: "database \(redis.database): a Redis Cluster has only database 0")
            }
            redis.topology = topology
            self.redis = redis
        }

        let replicas = try milliseconds("REDIS_WAIT_REPLICAS", 1...100, "a number of replicas")
        let timeout = try milliseconds("REDIS_WAIT_TIMEOUT_MS", 1...60_000, "a number of milliseconds")
        if let replicas {
            guard self.redis != nil else {
                throw ConfigurationError(variable: "REDIS_WAIT_REPLICAS", reason: "needs a Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES)")
            }
            self.redisReplicaWait = RedisReplicaWait(
                replicas: replicas,
                timeout: .milliseconds(timeout ?? RedisReplicaWait.defaultTimeoutMilliseconds)
            )
        } else if timeout != nil {
            throw ConfigurationError(variable: "REDIS_WAIT_TIMEOUT_MS", reason: "needs REDIS_WAIT_REPLICAS")
        }

        do {
            try self.redis?.validate()
        } catch {
            throw ConfigurationError(variable: "REDIS_URL", reason: error.message)
        }
    }
}
