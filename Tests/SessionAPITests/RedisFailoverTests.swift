import Foundation
import HTTPTypes
import HummingbirdTesting
import RedisClient
import SessionAPI
import Synchronization
import TestSupport
import Testing

/// The API through a Redis failover, on servers the test starts: a Cluster of 3 primaries with a replica each whose
/// primary is killed during logins and `/users/me`, and a Sentinel master that is killed, with and without `WAIT`.
/// The same app keeps running throughout (no restart).
///
/// "Lost" here means what asynchronous replication allows: a write the dead primary acknowledged but had not yet
/// sent to the replica that took over. The tests wait until the replicas have every write made before a checkpoint:
/// those sessions must all survive; sessions made between the checkpoint and the kill may be lost, and are counted.
///
/// Only in the default backend run (each test starts its own servers, whatever `SESSION_API_TEST_BACKEND` says),
/// and serialized: one failover at a time keeps a 2-core machine's timing sane.
@Suite(.serialized, .enabled(if: TestBackend.current == .files)) struct RedisFailoverTests {
    static let commandTimeout = Duration.milliseconds(500)
    /// Slack for a loaded machine on top of the command timeout, for "fails fast".
    static let margin = Duration.seconds(1)
    /// `REDIS_WAIT_TIMEOUT_MS` in the Sentinel test with `WAIT`.
    static let waitTimeout = Duration.milliseconds(200)
    static let sentinelLoginWorkers = 3

    // MARK: Cluster

    @Test func clusterPrimaryKilledDuringLoginsAndMe() async throws {
        let cluster = try await RedisClusterFixture.start(primaries: 3, replicasPerPrimary: 1)
        do {
            try await Self.clusterFailover(cluster)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func clusterFailover(_ cluster: RedisClusterFixture) async throws {
        var redis = RedisClientConfiguration(connectTimeout: .seconds(2), commandTimeout: Self.commandTimeout)
        redis.topology = .cluster(.init(seeds: try RedisClientConfiguration.Endpoint.list(cluster.seedList, defaultPort: 6379)))
        redis.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try await withDataDirectory { directory in
            var configuration = Self.configuration(directory: directory, redis: redis)
            // The data path's failover is measured here: with the near-cache, a cached session answers 200 before its
            // slots do, which this test's window would count as "back". The cache through a failover: scripts/chaos.
            configuration.nearCache = false
            try await TestApp.run(configuration) { app, client in
                let before = try await Self.seedAndLogIn(app, client, users: 24)
                try await Self.waitUntilReplicated(cluster.runningNodes)

                // The primary to kill, and which of the sessions made so far need it (their session hash or user hash is in one of its slots).
                let victim = try #require(try await cluster.primaries().first)
                let slots = try await Self.slotOwners(cluster)
                func needsVictim(_ session: LoggedIn) -> Bool {
                    slots[Self.slot(of: "session-api:session:" + SessionID.handle(of: session.cookieValue))] == victim.port
                        || slots[Self.slot(of: "session-api:user:{\(session.userID)}")] == victim.port
                }
                let affected = before.filter(needsVictim)
                let unaffected = before.filter { !needsVictim($0) }
                try #require(!affected.isEmpty && !unaffected.isEmpty)

                let load = Load(sessions: before)
                let killedAt = try await load.run(client, users: 24) {
                    try await victim.kill()
                } until: { killedAt in
                    // Back: a session that needs the victim's slots answers again, and some time passed after that.
                    try await cluster.waitUntilHealthy()
                    try await RedisSentinelFixture.poll("a session in the killed primary's slots to answer") {
                        try await client.me(headers: .cookie(affected[0].cookie)).status == .ok
                    }
                    _ = killedAt
                }
                let records = load.records
                let back = try #require(records.first { $0.path == .me && $0.start > killedAt && $0.status == .ok && needsVictim($0.session) })
                let window = (killedAt - Self.margin)...(back.end + Self.margin)
                // Only 200 and 503; a 503 only while the killed primary's slots had none, fast, and for /users/me only
                // for sessions that need those slots.
                #expect(records.allSatisfy { $0.status == .ok || $0.status == .serviceUnavailable }, "\(Set(records.map(\.status)))")
                let unavailable = records.filter { $0.status == .serviceUnavailable }
                #expect(unavailable.allSatisfy { window.contains($0.start) })
                #expect(unavailable.filter { $0.path == .me }.allSatisfy { needsVictim($0.session) })
                #expect(unavailable.map(\.duration).max() ?? .zero < Self.commandTimeout * 2 + Self.margin)
                let servedUnaffected = records.filter { $0.path == .me && window.contains($0.start) && !needsVictim($0.session) }
                #expect(servedUnaffected.allSatisfy { $0.status == .ok })

                // Every session made before the checkpoint works, for its own user; and every one made after the failover.
                try await Self.expectAllValid(before, client)
                let madeAfter = load.logins.filter { $0.loggedInAt > back.end }
                try await Self.expectAllValid(madeAfter, client)
                let lost = try await Self.lost(load.logins.filter { $0.loggedInAt < killedAt }, client)
                print(
                    """
                    FAILOVER cluster: primary \(victim.port) killed; its slots answered again after \(back.end - killedAt); \
                    503s: \(unavailable.count) of \(records.count) requests (\(unavailable.filter { $0.path == .me }.count) /users/me, \
                    all for sessions in its slots; \(servedUnaffected.count) others served meanwhile); sessions made after the \
                    replication checkpoint and before the kill: \(load.logins.filter { $0.loggedInAt < killedAt }.count), lost: \(lost)
                    """
                )
            }
        }
    }

    // MARK: Sentinel

    @Test(arguments: [false, true])
    func sentinelMasterKilledDuringLogins(waitForReplica: Bool) async throws {
        let fixture = try await RedisSentinelFixture.start(readyForFailover: true)
        do {
            try await Self.sentinelFailover(fixture, waitForReplica: waitForReplica)
        } catch {
            await fixture.stop()
            throw error
        }
        await fixture.stop()
    }

    static func sentinelFailover(_ fixture: RedisSentinelFixture, waitForReplica: Bool) async throws {
        var redis = RedisClientConfiguration(connectTimeout: .seconds(2), commandTimeout: Self.commandTimeout)
        redis.topology = .sentinel(
            .init(endpoints: try RedisClientConfiguration.Endpoint.list(fixture.sentinelList, defaultPort: 26379), masterName: fixture.masterName)
        )
        redis.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        try await withDataDirectory { directory in
            var configuration = Self.configuration(directory: directory, redis: redis)
            if waitForReplica {
                configuration.redisReplicaWait = RedisReplicaWait(replicas: 1, timeout: Self.waitTimeout)
            }
            try await TestApp.run(configuration) { app, client in
                let before = try await Self.seedAndLogIn(app, client, users: 16)
                try await Self.waitUntilReplicated([fixture.master, fixture.replica])
                let load = Load(sessions: before, loginWorkers: Self.sentinelLoginWorkers)
                let killedAt = try await load.run(client, users: 16) {
                    try await fixture.master.kill()
                } until: { killedAt in
                    try await RedisSentinelFixture.poll("the app to answer through the new master", within: .seconds(60)) {
                        load.records.contains { $0.start > killedAt && $0.status == .ok && $0.path == .login }
                    }
                }
                let records = load.records
                #expect(records.allSatisfy { $0.status == .ok || $0.status == .serviceUnavailable }, "\(Set(records.map(\.status)))")
                let firstLogin = try #require(records.first { $0.start > killedAt && $0.status == .ok && $0.path == .login })
                let firstMe = try #require(records.first { $0.start > killedAt && $0.status == .ok && $0.path == .me })
                let unavailable = records.filter { $0.status == .serviceUnavailable }
                let slowest503 = unavailable.map(\.duration).max() ?? .zero
                #expect(unavailable.allSatisfy { $0.start >= killedAt - Self.margin && $0.start <= firstLogin.end + Self.margin })
                // 503s come fast: /users/me within the command timeout; a login may first wait behind the WAITs of the
                // logins ahead of it on the waiter's connection (each at most the WAIT timeout).
                let slowestMe = unavailable.filter { $0.path == .me }.map(\.duration).max() ?? .zero
                #expect(slowestMe < Self.commandTimeout + Self.margin, "/users/me 503s must come fast")
                let waits = waitForReplica ? Self.waitTimeout * Self.sentinelLoginWorkers : .zero
                #expect(slowest503 < Self.commandTimeout + waits + Self.margin, "503s must come fast")

                try await Self.expectAllValid(before, client)
                try await Self.expectAllValid(load.logins.filter { $0.loggedInAt > firstLogin.end }, client)
                let beforeKill = load.logins.filter { $0.loggedInAt < killedAt }
                let lastSecond = beforeKill.filter { $0.loggedInAt > killedAt - .seconds(1) }
                let lost = try await Self.lost(beforeKill, client)
                let loginTimes = records.filter { $0.path == .login && $0.status == .ok && $0.end < killedAt }.map(\.duration).sorted()
                let median = loginTimes.isEmpty ? .zero : loginTimes[loginTimes.count / 2]
                print(
                    """
                    FAILOVER sentinel\(waitForReplica ? " with WAIT 1 (200 ms)" : ""): master killed; first login through the new master \
                    \(firstLogin.end - killedAt) after the kill, first /users/me \(firstMe.end - killedAt); 503s: \
                    \(unavailable.count) (slowest \(slowest503)); logins before the kill: \(beforeKill.count) (\(lastSecond.count) \
                    in its last second), median login \(median); sessions lost: \(lost)
                    """
                )
                if waitForReplica {
                    // Every login waited until the replica had its session: the promoted replica has them all.
                    #expect(lost == 0)
                }
            }
        }
    }

    // MARK: Helpers

    static func configuration(directory: String, redis: RedisClientConfiguration) -> AppConfiguration {
        var configuration = AppConfiguration.test(directory: directory)
        configuration.authType = .sessionRedisAuth
        configuration.userStore = .redis
        configuration.redis = redis
        configuration.redisPrefix = "session-api:"
        configuration.sessionDuration = 3600
        return configuration
    }

    static func email(_ index: Int) -> String { "user\(index)@example.com" }

    /// Creates `users` users and logs each one in twice.
    static func seedAndLogIn(_ app: TestApp, _ client: any TestClientProtocol, users: Int) async throws -> [LoggedIn] {
        var sessions: [LoggedIn] = []
        for index in 0..<users {
            let user = try await app.seedUser(email: Self.email(index))
            for _ in 0..<2 {
                let cookie = try await client.login(email: Self.email(index))
                sessions.append(LoggedIn(cookie: cookie, userID: user.id, loggedInAt: .now))
            }
        }
        return sessions
    }

    /// Waits until every replica among `nodes` has every write its primary had when this was called.
    static func waitUntilReplicated(_ nodes: [RedisServerProcess]) async throws {
        var offsets: [Int: Int] = [:]
        for node in nodes {
            let info = Self.fields(try await node.cli(["INFO", "replication"]))
            if info["role"] == "master", let offset = info["master_repl_offset"].flatMap({ Int($0) }) { offsets[node.port] = offset }
        }
        for node in nodes {
            try await RedisSentinelFixture.poll("replica \(node.port) to catch up") {
                let info = Self.fields(try await node.cli(["INFO", "replication"]))
                guard info["role"] == "slave" else { return true }
                guard let master = info["master_port"].flatMap({ Int($0) }), let wanted = offsets[master] else { return false }
                return info["master_link_status"] == "up" && (info["slave_repl_offset"].flatMap { Int($0) } ?? -1) >= wanted
            }
        }
    }

    static func fields(_ info: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return fields
    }

    /// Slot -> port of the primary serving it.
    static func slotOwners(_ cluster: RedisClusterFixture) async throws -> [Int: Int] {
        var owners: [Int: Int] = [:]
        for primary in try await cluster.primaries() {
            for line in try await primary.cli(["CLUSTER", "NODES"]).split(separator: "\n") where line.contains("myself") {
                for range in line.split(separator: " ").dropFirst(8) where !range.hasPrefix("[") {
                    let bounds = range.split(separator: "-").compactMap { Int($0) }
                    if let low = bounds.first, let high = bounds.last {
                        for slot in low...high { owners[slot] = primary.port }
                    }
                }
            }
        }
        return owners
    }

    /// The Redis Cluster hash slot of `key` (CRC16-XMODEM of its hash tag, or of the key, mod 16384).
    static func slot(of key: String) -> Int {
        var bytes = Array(key.utf8)
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            bytes = Array(bytes[(open + 1)..<close])
        }
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte) << 8
            for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        }
        return Int(crc) % 16384
    }

    static func expectAllValid(
        _ sessions: [LoggedIn],
        _ client: any TestClientProtocol,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        for session in sessions {
            let response = try await client.me(headers: .cookie(session.cookie))
            #expect(response.status == .ok, "a session made before the checkpoint: \(response.status)", sourceLocation: sourceLocation)
            if response.status == .ok {
                #expect(try response.user().id == session.userID, sourceLocation: sourceLocation)
            }
        }
    }

    /// How many of `sessions` are refused now (403): lost in the failover.
    static func lost(_ sessions: [LoggedIn], _ client: any TestClientProtocol) async throws -> Int {
        var lost = 0
        for session in sessions {
            let status = try await client.me(headers: .cookie(session.cookie)).status
            #expect(status == .ok || status == .forbidden)
            if status == .forbidden { lost += 1 }
        }
        return lost
    }
}

/// A session a login made, with when its 200 came.
struct LoggedIn: Sendable {
    let cookie: String
    let userID: String
    let loggedInAt: ContinuousClock.Instant

    var cookieValue: String { String(self.cookie.split(separator: "=", maxSplits: 1).last ?? "") }
}

/// Traffic during a failover: workers calling `/users/me` with known sessions, and workers logging users in; each
/// request recorded with its start, end and status.
final class Load: Sendable {
    enum Path: Sendable { case me, login }

    struct Record: Sendable {
        let path: Path
        let session: LoggedIn
        let start: ContinuousClock.Instant
        let end: ContinuousClock.Instant
        let status: HTTPResponse.Status
        var duration: Duration { self.end - self.start }
    }

    private let sessions: [LoggedIn]
    private let meWorkers: Int
    private let loginWorkers: Int
    private let state = Mutex<(records: [Record], logins: [LoggedIn])>(([], []))
    private let stopped = Atomic<Bool>(false)

    init(sessions: [LoggedIn], meWorkers: Int = 3, loginWorkers: Int = 2) {
        self.sessions = sessions
        self.meWorkers = meWorkers
        self.loginWorkers = loginWorkers
    }

    var records: [Record] { self.state.withLock { $0.records.sorted { $0.start < $1.start } } }
    /// Sessions made by the load's logins (200s), in order.
    var logins: [LoggedIn] { self.state.withLock { $0.logins } }

    /// Runs the workers; once 200 requests succeeded, runs `fault` and notes when, then `until` (which returns when
    /// the failover is over), then lets the load run one more second and stops it.
    /// - Returns: When `fault` ran.
    func run(
        _ client: any TestClientProtocol,
        users: Int,
        fault: @escaping @Sendable () async throws -> Void,
        until recovered: @escaping @Sendable (ContinuousClock.Instant) async throws -> Void
    ) async throws -> ContinuousClock.Instant {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<self.meWorkers {
                group.addTask { try await self.meWorker(worker, client) }
            }
            for worker in 0..<self.loginWorkers {
                group.addTask { try await self.loginWorker(worker, client, users: users) }
            }
            defer { self.stopped.store(true, ordering: .relaxed) }
            try await RedisSentinelFixture.poll("the load to be under way") {
                self.state.withLock { $0.records.filter { $0.status == .ok }.count } >= 200
            }
            let killedAt = ContinuousClock.now
            try await fault()
            try await recovered(killedAt)
            let end = ContinuousClock.now + .seconds(1)
            try await RedisSentinelFixture.poll("a second of load after the failover") { ContinuousClock.now >= end }
            self.stopped.store(true, ordering: .relaxed)
            try await group.waitForAll()
            return killedAt
        }
    }

    private func meWorker(_ worker: Int, _ client: any TestClientProtocol) async throws {
        var next = worker
        while !self.stopped.load(ordering: .relaxed) {
            let session = self.sessions[next % self.sessions.count]
            next += self.meWorkers
            let start = ContinuousClock.now
            let response = try await client.me(headers: .cookie(session.cookie))
            if response.status == .ok {
                #expect(try response.user().id == session.userID, "a session answered for another user")
            }
            self.record(Record(path: .me, session: session, start: start, end: .now, status: response.status))
            // About 200 requests a second per worker: load, with CPU left on a 2-core machine.
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    private func loginWorker(_ worker: Int, _ client: any TestClientProtocol, users: Int) async throws {
        var next = worker
        while !self.stopped.load(ordering: .relaxed) {
            let index = next % users
            next += self.loginWorkers
            let start = ContinuousClock.now
            let response = try await client.loginForm(email: RedisFailoverTests.email(index), password: "H0lbertonSchool98!")
            let end = ContinuousClock.now
            let userID = response.status == .ok ? try response.user().id : ""
            let session = LoggedIn(cookie: response.setCookie?.pair ?? "", userID: userID, loggedInAt: end)
            self.state.withLock { state in
                state.records.append(Record(path: .login, session: session, start: start, end: end, status: response.status))
                if response.status == .ok { state.logins.append(session) }
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private func record(_ record: Record) {
        self.state.withLock { $0.records.append(record) }
    }
}
