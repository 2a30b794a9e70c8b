import Logging
import NIOCore
import NIOPosix
import RedisClient
import Synchronization
import TestSupport
import Testing

/// Sentinel mode against 1 master + 1 replica + 3 Sentinels started by the test on loopback: the client follows a
/// failover by itself, commands fail fast during the switch, and never hang.
///
/// Serialized: one set of five servers at a time keeps the machine's load (and so the other suites' timing bounds) sane.
@Suite(.serialized) struct RedisClientSentinelTests {
    @Test func followsAFailoverAfterTheMasterIsKilled() async throws {
        try await Self.withSentinels(readyForFailover: true) { fixture in
            try await Self.withClient(fixture) { client in
                let events = client.topologyEvents()
                try await client.set("before", value: "kill")
                #expect(try await Self.port(of: client) == fixture.master.port)

                let stats = TrafficStats()
                let clock = ContinuousClock()
                let failover = FailoverTimes()
                let generationBefore = client.topologyGeneration
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            var iteration = 0
                            while !stats.stop.load(ordering: .relaxed) {
                                iteration += 1
                                let start = clock.now
                                do {
                                    try await client.set("w\(worker):\(iteration % 50)", value: "\(iteration)")
                                    stats.successes.add(1, ordering: .relaxed)
                                    failover.succeeded(startedAt: start, at: clock.now)
                                    // About 1,000 commands a second per worker: enough traffic, and CPU left for the suites running alongside.
                                    try await Task.sleep(for: .milliseconds(1))
                                } catch {
                                    stats.record(error)
                                    failover.failed(after: clock.now - start)
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                        }
                    }
                    defer { stats.stop.store(true, ordering: .relaxed) }
                    try await RedisClientFailureTests.waitUntil { stats.successes.load(ordering: .relaxed) >= 100 }

                    try await fixture.master.kill()
                    failover.killed(at: clock.now)
                    // The same client, not recreated, ends up writing to the former replica.
                    try await RedisSentinelFixture.poll("writes to reach the new master", within: .seconds(30)) {
                        failover.interruption != nil
                    }
                    stats.stop.store(true, ordering: .relaxed)
                    try await group.waitForAll()
                }
                #expect(try await Integration.eventually { try await Self.port(of: client) } == fixture.replica.port)
                #expect(try await client.getString("before") == "kill", "replicated before the kill")

                let interruption = try #require(failover.interruption)
                let failures = stats.failures.withLock { $0 }
                print("Sentinel failover: writes failed for \(interruption) after the master was killed; failures by code: \(failures)")
                #expect(stats.otherErrors.withLock { $0 }.isEmpty)
                #expect(Set(failures.keys).isSubset(of: [.notConnected, .connectionClosed, .timeout]), "\(failures)")
                // Failing fast: no failed command waited longer than the command timeout (plus scheduling slack).
                #expect(failover.slowestFailure < Self.commandTimeout + RedisClientFailureTests.schedulingMargin)
                #expect(client.topologyGeneration > generationBefore)
                let newMaster = RedisClientConfiguration.Endpoint.tcp(host: "127.0.0.1", port: fixture.replica.port)
                #expect(await Integration.firstEvent(in: events) { $0.kind == .masterChanged && $0.endpoint == newMaster } != nil)
            }
        }
    }

    @Test func movesToTheNewMasterOnReadonly() async throws {
        try await Self.withSentinels { fixture in
            try await Self.withClient(fixture) { client in
                try await client.set("k", value: "v1")
                #expect(try await Self.port(of: client) == fixture.master.port)

                // Swap the roles by hand, without a Sentinel failover (which would kill the clients' connections): the
                // client's connections to the old master stay up, and its next write gets READONLY.
                try await fixture.onEverySentinel(["SENTINEL", "REMOVE", fixture.masterName])
                try await fixture.replica.cli(["REPLICAOF", "NO", "ONE"])
                try await fixture.master.cli(["REPLICAOF", "127.0.0.1", "\(fixture.replica.port)"])
                try await RedisSentinelFixture.poll("the old master to be a replica") {
                    try await fixture.master.cli(["ROLE"]).hasPrefix("slave")
                }
                let error = await Integration.errorOf { try await client.set("k", value: "v2") }
                #expect(error?.code == .commandError)
                #expect(error?.message.hasPrefix("READONLY") == true, "\(String(describing: error))")

                try await fixture.onEverySentinel(["SENTINEL", "MONITOR", fixture.masterName, "127.0.0.1", "\(fixture.replica.port)", "2"])
                _ = try await Integration.eventually(within: .seconds(20)) { try await client.set("k", value: "v3") }
                #expect(try await Self.port(of: client) == fixture.replica.port)
                #expect(try await fixture.replica.cli(["GET", "k"]).hasPrefix("v3"))
            }
        }
    }

    /// The near-cache's listener follows the master too: when the Sentinels name another one (here by a swap of roles
    /// that leaves every connection up), it stops (the cache is dropped) and starts again on the new master, whose
    /// changes it then announces.
    @Test func theInvalidationListenerFollowsANewMaster() async throws {
        try await Self.withSentinels { fixture in
            try await Self.withClient(fixture) { client in
                let recorder = RedisInvalidationListenerTests.Recorder()
                let listener = RedisInvalidationListener(client: client, prefixes: ["k"], heartbeat: .milliseconds(200)) {
                    recorder.record($0)
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { await listener.run() }
                    defer { group.cancelAll() }
                    try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) == 1 }
                    try await fixture.onEverySentinel(["SENTINEL", "REMOVE", fixture.masterName])
                    try await fixture.replica.cli(["REPLICAOF", "NO", "ONE"])
                    try await fixture.master.cli(["REPLICAOF", "127.0.0.1", "\(fixture.replica.port)"])
                    try await fixture.onEverySentinel(["SENTINEL", "MONITOR", fixture.masterName, "127.0.0.1", "\(fixture.replica.port)", "2"])
                    // A write reaches the old master first: READONLY makes the client ask the Sentinels again.
                    _ = try await Integration.eventually(within: .seconds(20)) { try await client.set("k", value: "v") }
                    try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) == 2 }
                    #expect(recorder.count(of: .stopped) >= 1)
                    let since = recorder.all.count
                    try await fixture.replica.cli(["SET", "k2", "v"])
                    try await RedisClientFailureTests.waitUntil { recorder.all.dropFirst(since).contains(.keys(["k2"])) }
                }
            }
        }
    }

    @Test func sentinelsWithTheirOwnPasswordAndADataPassword() async throws {
        try await Self.withSentinels(password: "data-secret", sentinelPassword: "sentinel-secret") { fixture in
            try await Self.withClient(
                fixture,
                {
                    $0.password = "data-secret"
                    if var sentinel = $0.topology.sentinel {
                        sentinel.password = "sentinel-secret"
                        $0.topology = .sentinel(sentinel)
                    }
                }
            ) { client in
                try await client.set("k", value: "authenticated")
                #expect(try await client.getString("k") == "authenticated")
                #expect(try await Self.port(of: client) == fixture.master.port)
            }
            // A wrong Sentinel password: no master is found, and the error says why.
            try await Self.withClient(fixture, { $0.password = "data-secret" }) { client in
                let error = await Integration.errorOf { try await client.ping() }
                #expect(error?.code == .notConnected)
                #expect(error.map { "\($0)" }?.contains("NOAUTH") == true, "\(String(describing: error))")
            }
        }
    }

    @Test func sentinelAndDataConnectionsOverTLS() async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.removeDirectory() }
        let tls = RedisServerProcess.TLSOptions(
            certificatePath: certificates.serverCertificatePath,
            privateKeyPath: certificates.serverKeyPath,
            caCertificatePath: certificates.caCertificatePath,
            requireClientCertificates: false
        )
        try await Self.withSentinels(tls: tls) { fixture in
            // Every process serves TLS only: the Sentinel queries, the ROLE checks and the data connections all use it.
            let url = "rediss://unused?ca=\(certificates.caCertificatePath)"
            try await Self.withClient(fixture, { $0.tls = try? RedisClientConfiguration(url: url).tls }) { client in
                try await client.set("k", value: "over TLS")
                #expect(try await client.getString("k") == "over TLS")
                #expect(try await Self.port(of: client) == fixture.master.port)
            }
            // A CA that did not sign the Sentinels' certificates: no master, and the reason is TLS verification.
            let wrongURL = "rediss://unused?ca=\(certificates.otherCACertificatePath)"
            try await Self.withClient(fixture, { $0.tls = try? RedisClientConfiguration(url: wrongURL).tls }) { client in
                let error = await Integration.errorOf { try await client.ping() }
                #expect(error?.code == .notConnected)
                #expect(error?.message.contains("TLS verification failed") == true, "\(String(describing: error))")
            }
        }
    }

    @Test func noReachableSentinelFailsFast() async throws {
        let ports = try (0..<3).map { _ in try RedisServerProcess.freePort() }
        var configuration = RedisClientConfiguration(
            topology: .sentinel(.init(endpoints: ports.map { .tcp(host: "127.0.0.1", port: $0) }, masterName: "m")),
            connectTimeout: .seconds(1)
        )
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
            // Once the Sentinels were asked (the very first command may instead see the first-connection wait end on a
            // loaded machine), the error says what they answered.
            try await RedisSentinelFixture.poll("the error to name the Sentinels' answer", within: .seconds(10)) {
                let error = await Integration.errorOf { try await client.ping() }
                return error?.code == .notConnected && error?.message.contains("no Sentinel named a reachable master 'm'") == true
            }
            let clock = ContinuousClock()
            let start = clock.now
            for _ in 0..<20 {
                #expect(await Integration.errorOf { try await client.ping() }?.code == .notConnected)
            }
            #expect(clock.now - start < RedisClientFailureTests.schedulingMargin)
        }
    }

    @Test func waitCountsTheReplicasThatHaveTheWrite() async throws {
        try await Self.withSentinels { fixture in
            try await Self.withClient(fixture) { client in
                let (reply, replicas) = try await client.send(["SET", "durable", "yes"], waitingForReplicas: 1, timeout: .seconds(2))
                #expect(reply == .simpleString("OK"))
                #expect(replicas == 1)
                let script = RedisScript("return redis.call('INCR', KEYS[1])")
                let scripted = try await client.evalsha(script, keys: ["counter"], waitingForReplicas: 1, timeout: .seconds(2))
                #expect(scripted.reply == .integer(1))
                #expect(scripted.acknowledgedReplicas == 1)
                #expect(try await fixture.replica.cli(["GET", "durable"]).hasPrefix("yes"))
            }
        }
    }

    // MARK: Helpers

    static let commandTimeout = Duration.seconds(1)

    private static func withSentinels(
        password: String? = nil,
        sentinelPassword: String? = nil,
        tls: RedisServerProcess.TLSOptions? = nil,
        readyForFailover: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisSentinelFixture) async throws -> Void
    ) async throws {
        let fixture = try await RedisSentinelFixture.start(
            password: password,
            sentinelPassword: sentinelPassword,
            tls: tls,
            readyForFailover: readyForFailover
        )
        do {
            try await body(fixture)
        } catch {
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }

    /// A Sentinel-mode client on its own two event loops.
    private static func withClient(
        _ fixture: RedisSentinelFixture,
        isolation: isolated (any Actor)? = #isolation,
        _ customize: (inout RedisClientConfiguration) -> Void = { _ in },
        _ body: (RedisClient) async throws -> Void
    ) async throws {
        var configuration = try RedisClientConfiguration(url: "redis://unused")
        configuration.topology = .sentinel(
            .init(endpoints: try RedisClientConfiguration.Endpoint.list(fixture.sentinelList, defaultPort: 26379), masterName: fixture.masterName)
        )
        configuration.connectTimeout = .seconds(1)
        configuration.commandTimeout = Self.commandTimeout
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        customize(&configuration)
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

    /// The port of the server the client's commands reach (its TLS port when it serves TLS only).
    private static func port(of client: RedisClient) async throws -> Int? {
        for parameter in ["port", "tls-port"] {
            let reply = try await client.send(["CONFIG", "GET", RedisArgument(parameter)])
            if let port = reply.array?.last?.string.flatMap({ Int($0) }), port != 0 {
                return port
            }
        }
        return nil
    }
}

/// When a failover test killed a server, the first success after that, and the slowest failed command.
final class FailoverTimes: Sendable {
    private struct State {
        var killedAt: ContinuousClock.Instant?
        var firstSuccessAfterKill: ContinuousClock.Instant?
        var slowestFailure: Duration = .zero
    }

    private let state = Mutex(State())

    func killed(at instant: ContinuousClock.Instant) {
        self.state.withLock { $0.killedAt = instant }
    }

    /// A command that started at `start` succeeded at `instant`; only one sent after the kill counts (a reply sent
    /// by the old master just before it died may arrive after the kill was recorded).
    func succeeded(startedAt start: ContinuousClock.Instant, at instant: ContinuousClock.Instant) {
        self.state.withLock { state in
            if let killedAt = state.killedAt, start > killedAt, state.firstSuccessAfterKill == nil {
                state.firstSuccessAfterKill = instant
            }
        }
    }

    func failed(after elapsed: Duration) {
        self.state.withLock { $0.slowestFailure = max($0.slowestFailure, elapsed) }
    }

    /// From the kill to the first success after it, once there was one.
    var interruption: Duration? {
        self.state.withLock { state in
            guard let killedAt = state.killedAt, let success = state.firstSuccessAfterKill else { return nil }
            return success - killedAt
        }
    }

    var slowestFailure: Duration {
        self.state.withLock { $0.slowestFailure }
    }
}
