import Logging
import NIOCore
import NIOPosix
import Synchronization
import TestSupport
import Testing

@testable import RedisClient

/// Cluster mode against a Redis Cluster the test builds on loopback (3 primaries, with or without a replica each).
///
/// Serialized: one cluster at a time keeps the machine's load (and so the other suites' timing bounds) sane.
@Suite(.serialized) struct RedisClientClusterTests {
    /// The near-cache's listener subscribes on every primary: keys of every slot are announced; losing one primary
    /// stops it at once.
    @Test func theInvalidationListenerHearsEveryPrimary() async throws {
        try await Self.withCluster(replicasPerPrimary: 0) { cluster in
            try await Self.withClient(cluster) { client in
                let recorder = RedisInvalidationListenerTests.Recorder()
                let listener = RedisInvalidationListener(client: client, prefixes: ["k"], heartbeat: .milliseconds(200)) {
                    recorder.record($0)
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await listener.run() }
                    defer { group.cancelAll() }
                    try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) == 1 }
                    // Forty keys spread over the slots, so over all three primaries.
                    let keys = (0..<40).map { "k\($0)" }
                    for key in keys {
                        try await client.set(key, value: "v")
                    }
                    try await RedisClientFailureTests.waitUntil { Set(recorder.keys).isSuperset(of: keys) }
                    let primaries = try await cluster.primaries()
                    #expect(primaries.count == 3)
                    try await primaries[0].kill()
                    try await RedisClientFailureTests.waitUntil { recorder.count(of: .stopped) >= 1 }
                }
            }
        }
    }

    @Test func routesCommandsScriptsAndPipelinesAcrossSlots() async throws {
        try await Self.withCluster(replicasPerPrimary: 0) { cluster in
            try await Self.withClient(cluster) { client in
                // Many keys across every node, concurrently.
                try await withThrowingDiscardingTaskGroup { group in
                    for index in 0..<600 {
                        group.addTask { try await client.set("key:\(index)", value: "value-\(index)") }
                    }
                }
                for index in stride(from: 0, to: 600, by: 7) {
                    #expect(try await client.getString("key:\(index)") == "value-\(index)")
                }
                // Every node holds some: the keys really were spread.
                for node in cluster.nodes {
                    let size = try await node.cli(["DBSIZE"]).filter(\.isNumber)
                    #expect((Int(size) ?? 0) > 100, "node \(node.port) holds \(size) keys")
                }
                // SCAN on every primary: each key once (one node's SCAN would see about a third of them).
                var scanned: [String] = []
                try await client.scanKeys(matching: "key:*", count: 100) { keys in scanned += keys.compactMap(\.string) }
                #expect(Set(scanned) == Set((0..<600).map { "key:\($0)" }))
                #expect(scanned.count == 600)
                // The slots computed here are the server's.
                for key in ["foo", "{user1000}.following", "session-api:session:abc", "a{b}c", "{}x", "\u{00E9}t\u{00E9}"] {
                    let slot = try await client.send(["CLUSTER", "KEYSLOT", RedisArgument(key)])
                    #expect(slot == .integer(Int64(RedisHashSlot.of(key.utf8))), "\(key)")
                }

                // A pipeline over keys of every slot comes back in order (RedisUserStore.allUsers does this).
                let replies = try await client.pipeline((0..<600).map { ["GET", RedisArgument("key:\($0)")] })
                #expect(replies == (0..<600).map { .bulkString(Array("value-\($0)".utf8)) })

                // A multi-key script whose keys share a hash tag; the same keys without one are refused before sending.
                let script = RedisScript(
                    "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return redis.call('MGET', KEYS[1], KEYS[2])"
                )
                let both = try await client.evalsha(script, keys: ["{user:7}:a", "{user:7}:b"], arguments: ["x"])
                #expect(both == .array([.bulkString(Array("x".utf8)), .bulkString(Array("x".utf8))]))
                let crossSlot = await Integration.errorOf { try await client.evalsha(script, keys: ["user:7:a", "user:8:b"], arguments: ["x"]) }
                #expect(crossSlot?.code == .crossSlot)
                #expect(await Integration.errorOf { try await client.del("foo", "bar") }?.code == .crossSlot)
                #expect(try await client.del("{t}1", "{t}2") == 0)

                // NOSCRIPT after SCRIPT FLUSH on every node: each node is sent the script again.
                _ = try await client.send(["SCRIPT", "FLUSH"])
                for user in 0..<30 {
                    _ = try await client.evalsha(script, keys: ["{user:\(user)}:a", "{user:\(user)}:b"], arguments: ["y"])
                }
                for node in cluster.nodes {
                    #expect(try await node.cli(["SCRIPT", "EXISTS", script.sha1]).hasPrefix("1"), "node \(node.port) has the script")
                }
                // SCRIPT LOAD goes to every primary.
                let other = RedisScript("return 'loaded'")
                #expect(try await client.send(["SCRIPT", "LOAD", RedisArgument(other.source)]).string == other.sha1)
                for node in cluster.nodes {
                    #expect(try await node.cli(["SCRIPT", "EXISTS", other.sha1]).hasPrefix("1"))
                }

                // A transaction and a write with WAIT on one slot.
                let results = try await client.transaction([["SET", "{tx}a", "1"], ["INCR", "{tx}a"]])
                #expect(results == [.simpleString("OK"), .integer(2)])
                #expect(await Integration.errorOf { try await client.transaction([["SET", "a", "1"], ["SET", "b", "1"]]) }?.code == .crossSlot)
                #expect(try await client.ping() == "PONG")
            }
        }
    }

    @Test func followsASKDuringAMigrationAndMOVEDAfterIt() async throws {
        try await Self.withCluster(replicasPerPrimary: 0) { cluster in
            try await Self.withClient(cluster) { client in
                let key = "migrating-key"
                let slot = RedisHashSlot.of(key.utf8)
                try await client.set(key, value: "before")
                let source = try #require(try await cluster.primary(ofSlot: slot))
                let destination = try #require(cluster.nodes.first { $0.port != source.port })
                let sourceID = try await cluster.id(of: source)
                let destinationID = try await cluster.id(of: destination)
                let events = client.topologyEvents()

                // Half-way through a migration: the key already moved, the slot not yet.
                try await destination.cli(["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", sourceID])
                try await source.cli(["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", destinationID])
                try await source.cli(["MIGRATE", "127.0.0.1", "\(destination.port)", key, "0", "5000"])
                #expect(try await client.getString(key) == "before", "ASK: the key is on the destination")
                try await client.set(key, value: "during")
                let asking = try await destination.cli(["INFO", "commandstats"])
                #expect(asking.contains("cmdstat_asking:calls="), "the client sent ASKING to the destination")

                // The migration ends: the source now answers MOVED, the client updates its map.
                for node in cluster.nodes {
                    try await node.cli(["CLUSTER", "SETSLOT", "\(slot)", "NODE", destinationID])
                }
                #expect(try await client.getString(key) == "during")
                #expect(await Integration.firstEvent(in: events) { $0.kind == .clusterMapChanged } != nil)
                #expect(try await client.getString(key) == "during")
            }
        }
    }

    @Test func reshardingUnderLoadLosesNothing() async throws {
        try await Self.withCluster(replicasPerPrimary: 0) { cluster in
            try await Self.withClient(cluster) { client in
                let primaries = try await cluster.primaries()
                let from = try await cluster.id(of: primaries[0])
                let to = try await cluster.id(of: primaries[1])
                let stats = TrafficStats()
                let written = WrittenValues()
                let events = client.topologyEvents()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<6 {
                        group.addTask {
                            var iteration = 0
                            while !stats.stop.load(ordering: .relaxed) {
                                iteration += 1
                                let key = worker * 1000 + iteration % 500
                                do {
                                    try await client.set("reshard:\(key)", value: "\(iteration)")
                                    written.record(key: key, value: iteration)
                                    stats.successes.add(1, ordering: .relaxed)
                                    // About 1,000 commands a second per worker: enough traffic, and CPU left for the suites running alongside.
                                    try await Task.sleep(for: .milliseconds(1))
                                } catch {
                                    stats.record(error)
                                }
                            }
                        }
                    }
                    defer { stats.stop.store(true, ordering: .relaxed) }
                    try await RedisClientFailureTests.waitUntil { stats.successes.load(ordering: .relaxed) >= 200 }
                    try await RedisServerProcess.runTool(
                        "redis-cli",
                        [
                            "--cluster", "reshard", "127.0.0.1:\(primaries[0].port)", "--cluster-from", from, "--cluster-to", to,
                            "--cluster-slots", "300", "--cluster-yes", "--cluster-pipeline", "20",
                        ],
                        timeout: .seconds(60)
                    )
                    let after = stats.successes.load(ordering: .relaxed)
                    try await RedisClientFailureTests.waitUntil { stats.successes.load(ordering: .relaxed) >= after + 200 }
                    stats.stop.store(true, ordering: .relaxed)
                    try await group.waitForAll()
                }
                print(
                    "Cluster resharding of 300 slots under load: \(stats.successes.load(ordering: .relaxed)) writes, failures: \(stats.failures.withLock { $0 })"
                )
                #expect(stats.failureCount == 0, "\(stats.failures.withLock { $0 }) \(stats.otherErrors.withLock { $0 })")
                #expect(await Integration.firstEvent(in: events) { $0.kind == .clusterMapChanged } != nil, "MOVED was followed")
                let expected = written.values
                let replies = try await client.pipeline(expected.keys.sorted().map { ["GET", RedisArgument("reshard:\($0)")] })
                let values = replies.map { $0.string.flatMap { Int($0) } }
                #expect(values == expected.keys.sorted().map { expected[$0] })
            }
        }
    }

    @Test func aKilledPrimaryIsReplacedByItsReplicaWithoutARestart() async throws {
        try await Self.withCluster(replicasPerPrimary: 1) { cluster in
            try await Self.withClient(cluster) { client in
                let victimKey = "victim"
                let slot = RedisHashSlot.of(victimKey.utf8)
                let victim = try #require(try await cluster.primary(ofSlot: slot))
                // A key on another primary keeps working throughout (cluster-require-full-coverage no).
                var bystanderKey = "bystander"
                for index in 0... {
                    bystanderKey = "bystander:\(index)"
                    if try await cluster.primary(ofSlot: RedisHashSlot.of(bystanderKey.utf8))?.port != victim.port { break }
                }
                try await client.set(victimKey, value: "0")
                try await client.set(bystanderKey, value: "0")

                let clock = ContinuousClock()
                let failover = FailoverTimes()
                let victimStats = TrafficStats()
                let bystanderStats = TrafficStats()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (key, stats, measured) in [(victimKey, victimStats, true), (bystanderKey, bystanderStats, false)] {
                        group.addTask {
                            while !victimStats.stop.load(ordering: .relaxed) {
                                let start = clock.now
                                do {
                                    _ = try await client.incr(key)
                                    stats.successes.add(1, ordering: .relaxed)
                                    // About 1,000 commands a second per worker: enough traffic, and CPU left for the suites running alongside.
                                    if measured { failover.succeeded(startedAt: start, at: clock.now) }
                                    try await Task.sleep(for: .milliseconds(1))
                                } catch {
                                    stats.record(error)
                                    if measured { failover.failed(after: clock.now - start) }
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                        }
                    }
                    defer { victimStats.stop.store(true, ordering: .relaxed) }
                    try await RedisClientFailureTests.waitUntil { victimStats.successes.load(ordering: .relaxed) >= 100 }
                    try await victim.kill()
                    failover.killed(at: clock.now)
                    try await RedisSentinelFixture.poll("writes to the killed primary's slot to succeed again", within: .seconds(30)) {
                        failover.interruption != nil
                    }
                    let bystanderBefore = bystanderStats.successes.load(ordering: .relaxed)
                    try await RedisClientFailureTests.waitUntil { victimStats.successes.load(ordering: .relaxed) >= 100 }
                    try await RedisClientFailureTests.waitUntil { bystanderStats.successes.load(ordering: .relaxed) > bystanderBefore }
                    victimStats.stop.store(true, ordering: .relaxed)
                    try await group.waitForAll()
                }
                let interruption = try #require(failover.interruption)
                print(
                    "Cluster failover: writes to the killed primary's slot failed for \(interruption); failures: \(victimStats.failures.withLock { $0 }); other slots: \(bystanderStats.failures.withLock { $0 }) failures, \(bystanderStats.successes.load(ordering: .relaxed)) successes"
                )
                #expect(victimStats.otherErrors.withLock { $0 }.isEmpty)
                #expect(Set(victimStats.failures.withLock { $0 }.keys).isSubset(of: [.notConnected, .connectionClosed, .timeout]))
                #expect(failover.slowestFailure < Self.commandTimeout + RedisClientFailureTests.schedulingMargin)
                #expect(bystanderStats.failureCount == 0, "other slots keep working: \(bystanderStats.failures.withLock { $0 })")
                // The nodes' own views converge a little later than the client's (it follows whichever node knows first).
                try await RedisSentinelFixture.poll("the cluster to name a new primary for the slot", within: .seconds(10)) {
                    try await cluster.primary(ofSlot: slot).map { $0.port != victim.port } ?? false
                }
            }
        }
    }

    @Test func noReachableSeedFailsFast() async throws {
        let ports = try (0..<2).map { _ in try RedisServerProcess.freePort() }
        var configuration = RedisClientConfiguration(topology: .cluster(.init(seeds: ports.map { .tcp(host: "127.0.0.1", port: $0) })))
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
            try await RedisSentinelFixture.poll("the error to say no node answered", within: .seconds(10)) {
                let error = await Integration.errorOf { try await client.get("k") }
                return error?.code == .notConnected && error?.message.contains("no Redis Cluster node answered") == true
            }
        }
    }

    // MARK: Helpers

    static let commandTimeout = Duration.seconds(1)

    private static func withCluster(
        replicasPerPrimary: Int,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisClusterFixture) async throws -> Void
    ) async throws {
        let cluster = try await RedisClusterFixture.start(primaries: 3, replicasPerPrimary: replicasPerPrimary)
        do {
            try await body(cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    /// A cluster-mode client seeded with two of the nodes, on its own two event loops.
    private static func withClient(
        _ cluster: RedisClusterFixture,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisClient) async throws -> Void
    ) async throws {
        var configuration = RedisClientConfiguration()
        configuration.topology = .cluster(
            .init(
                seeds: try RedisClientConfiguration.Endpoint.list(
                    cluster.nodes.prefix(2).map { "127.0.0.1:\($0.port)" }.joined(separator: ","),
                    defaultPort: 6379
                )
            )
        )
        configuration.connectTimeout = .seconds(1)
        configuration.commandTimeout = Self.commandTimeout
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try configuration.validate()
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        do {
            try await RedisClient.withClient(configuration, eventLoopGroup: eventLoopGroup, logger: Integration.logger) { client in
                try await body(client)
            }
        } catch {
            try await eventLoopGroup.shutdownGracefully()
            throw error
        }
        try await eventLoopGroup.shutdownGracefully()
    }
}

/// The last value written to each key by a traffic test.
final class WrittenValues: Sendable {
    private let state = Mutex<[Int: Int]>([:])

    func record(key: Int, value: Int) {
        self.state.withLock { $0[key] = value }
    }

    var values: [Int: Int] {
        self.state.withLock { $0 }
    }
}
