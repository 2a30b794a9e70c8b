import Foundation
import HTTPTypes
import HummingbirdTesting
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// `REDIS_WAIT_REPLICAS`: a login's two writes (index, then session hash) are each followed by `WAIT` on a client of
/// their own, so a `WAIT` that blocks never holds `/users/me`; a short one pauses the waiting. Counted on the server
/// (`INFO commandstats`), not timed.
@Suite struct RedisReplicaWaitTests {
    static func waitCalls(_ server: RedisServerProcess) async throws -> Int {
        let stats = try await server.cli(["INFO", "commandstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_wait:") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last.flatMap({ Int($0) })
        else { return 0 }
        return calls
    }

    @Test func everyLoginWaitsForTheReplica() async throws {
        try await RedisSessionTests.withRedis { master, configuration in
            let replica = try await RedisServerProcess.start(extraArguments: ["--replicaof", "127.0.0.1", "\(master.port)"])
            do {
                try await RedisSentinelFixture.poll("the replica to sync") {
                    try await replica.cli(["INFO", "replication"]).contains("master_link_status:up")
                }
                var configuration = configuration
                configuration.redisReplicaWait = RedisReplicaWait(replicas: 1, timeout: .seconds(2))
                try await TestApp.run(configuration) { app, client in
                    try await app.seedUser()
                    // The first use of a script is NOSCRIPT, then EVAL: RedisClient sends its WAIT twice then.
                    _ = try await client.login()
                    let before = try await Self.waitCalls(master)
                    for _ in 0..<3 {
                        let cookie = try await client.login()
                        // On the replica already, as WAIT said before the login answered.
                        let key = try RedisSessionTests.sessionKey(cookie)
                        #expect(try await replica.cli(["EXISTS", key]).hasPrefix("1"))
                    }
                    let calls = try await Self.waitCalls(master) - before
                    #expect(calls == 6, "\(calls)")
                }
            } catch {
                try? await replica.stop()
                throw error
            }
            try await replica.stop()
        }
    }

    @Test func withoutAReplicaOneWriteWaitsThenLoginsPause() async throws {
        try await RedisSessionTests.withRedis { server, configuration in
            var configuration = configuration
            configuration.redisReplicaWait = RedisReplicaWait(replicas: 1, timeout: .milliseconds(200))
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                // The first WAIT came back short: the login's second write, and the next logins, did not wait.
                let first = try await Self.waitCalls(server)
                for _ in 0..<3 { _ = try await client.login() }
                let calls = try await Self.waitCalls(server)
                #expect(first >= 1 && calls == first, "\(first), \(calls)")
            }
        }
    }

    @Test func aBlockedWaitDoesNotHoldMe() async throws {
        try await RedisSessionTests.withRedis { server, configuration in
            // A session made by an app that does not wait, for /users/me to answer.
            let cookie = try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                return try await client.login()
            }
            var waiting = configuration
            waiting.redisReplicaWait = RedisReplicaWait(replicas: 1, timeout: .seconds(5))
            try await TestApp.run(waiting) { _, client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { _ = try await client.login() }
                    try await RedisSentinelFixture.poll("the login's WAIT to block") {
                        try await server.cli(["INFO", "clients"]).contains("blocked_clients:1")
                    }
                    #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                    #expect(try await server.cli(["INFO", "clients"]).contains("blocked_clients:1"), "answered while the WAIT still blocked")
                    try await group.waitForAll()
                }
            }
        }
    }
}
