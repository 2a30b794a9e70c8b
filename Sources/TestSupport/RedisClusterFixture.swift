import Foundation

/// A Redis Cluster on free 127.0.0.1 ports, built by the test: `redis-server --cluster-enabled yes` per node (each in
/// its own temporary directory), then `redis-cli --cluster create ... --cluster-replicas N --cluster-yes`.
///
/// Nodes use `cluster-node-timeout 1000` (a dead primary is replaced within a few seconds), `cluster-replica-validity-factor 0`
/// (a replica may always take over) and `cluster-require-full-coverage no` (the other slots keep working while one primary is
/// being replaced). ``stop()`` stops every process by PID.
package final class RedisClusterFixture: Sendable {
    /// Every node, in the order given to `redis-cli --cluster create` (primaries first).
    package let nodes: [RedisServerProcess]

    private init(nodes: [RedisServerProcess]) {
        self.nodes = nodes
    }

    /// Starts `primaries * (1 + replicasPerPrimary)` nodes, creates the cluster and waits until every node says
    /// `cluster_state:ok`.
    package static func start(primaries: Int = 3, replicasPerPrimary: Int = 1) async throws -> RedisClusterFixture {
        var nodes: [RedisServerProcess] = []
        do {
            for _ in 0..<(primaries * (1 + replicasPerPrimary)) {
                nodes.append(
                    try await RedisServerProcess.start(
                        extraArguments: [
                            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                            "--cluster-replica-validity-factor", "0", "--cluster-require-full-coverage", "no",
                        ],
                        clusterBus: true
                    )
                )
            }
            try await RedisServerProcess.runTool(
                "redis-cli",
                ["--cluster", "create"] + nodes.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "\(replicasPerPrimary)", "--cluster-yes"],
                timeout: .seconds(60)
            )
            let fixture = RedisClusterFixture(nodes: nodes)
            try await fixture.waitUntilHealthy()
            return fixture
        } catch {
            for node in nodes {
                try? await node.stop()
                node.removeDirectory()
            }
            throw error
        }
    }

    /// The seed list as `REDIS_CLUSTER_NODES` would give it (every node).
    package var seedList: String {
        self.nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// Stops every node by PID and deletes their directories.
    package func stop() async {
        for node in self.nodes {
            try? await node.stop()
            node.removeDirectory()
        }
    }

    /// The nodes that run.
    package var runningNodes: [RedisServerProcess] {
        self.nodes.filter { $0.pid != nil }
    }

    /// Waits until every running node says `cluster_state:ok` and sees every slot served.
    package func waitUntilHealthy(within limit: Duration = .seconds(60)) async throws {
        for node in self.runningNodes {
            try await RedisSentinelFixture.poll("node \(node.port) to report cluster_state:ok", within: limit) {
                let info = try await node.cli(["CLUSTER", "INFO"])
                return info.contains("cluster_state:ok") && info.contains("cluster_slots_assigned:16384")
                    && info.contains("cluster_slots_ok:16384")
            }
        }
    }

    /// A node's ID (`CLUSTER MYID`).
    package func id(of node: RedisServerProcess) async throws -> String {
        try await node.cli(["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The running node that serves `slot` as primary, as `node` (the first running node by default) sees it.
    package func primary(ofSlot slot: Int, askedOf node: RedisServerProcess? = nil) async throws -> RedisServerProcess? {
        guard let asked = node ?? self.runningNodes.first else { return nil }
        for line in try await asked.cli(["CLUSTER", "NODES"]).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 8, fields[2].contains("master"), !fields[2].contains("fail") else { continue }
            let port = fields[1].split(separator: "@").first.flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
            for range in fields.dropFirst(8) where !range.hasPrefix("[") {
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                if let low = bounds.first, let high = bounds.last, (low...high).contains(slot) {
                    return self.nodes.first { $0.port == port }
                }
            }
        }
        return nil
    }

    /// The running primaries, as the first running node sees them.
    package func primaries() async throws -> [RedisServerProcess] {
        guard let asked = self.runningNodes.first else { return [] }
        var primaries: [RedisServerProcess] = []
        for line in try await asked.cli(["CLUSTER", "NODES"]).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 8, fields[2].contains("master"), !fields[2].contains("fail") else { continue }
            let port = fields[1].split(separator: "@").first.flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
            if let node = self.nodes.first(where: { $0.port == port }), node.pid != nil {
                primaries.append(node)
            }
        }
        return primaries
    }
}
