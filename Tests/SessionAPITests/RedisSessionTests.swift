import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// `session_redis_auth` behind the API: the key layout operators rely on, TTLs, idle expiry, index pruning,
/// revocation, and what clients see while Redis is down, paused or restarted. Each test has its own redis-server.
@Suite struct RedisSessionTests {
    /// Runs `body` with a private redis-server (AOF on, so a restart keeps sessions) and a configuration using it.
    static func withRedis<T: Sendable>(
        users: UserStoreKind = .json,
        _ body: @Sendable (RedisServerProcess, AppConfiguration) async throws -> T
    ) async throws -> T {
        let server = try await RedisServerProcess.start(extraArguments: ["--appendonly", "yes", "--appendfsync", "always"])
        do {
            let result = try await withDataDirectory { directory in
                var configuration = AppConfiguration.test(directory: directory)
                configuration.authType = .sessionRedisAuth
                // A generous first connect: on a loaded 2-core machine one second is not always enough.
                configuration.redis = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: server.port), connectTimeout: .seconds(5))
                configuration.redisPrefix = "session-api:"
                configuration.userStore = users
                configuration.sessionDuration = 86_400
                return try await body(server, configuration)
            }
            try await server.stop()
            return result
        } catch {
            try? await server.stop()
            throw error
        }
    }

    /// A client for looking behind the API, as an operator with redis-cli would.
    static func withInspector<T>(_ server: RedisServerProcess, _ body: (RedisClient) async throws -> T) async throws -> T {
        let configuration = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: server.port), connectTimeout: .seconds(5))
        return try await RedisClient.withClient(configuration, logger: testLogger()) {
            try await body($0)
        }
    }

    static func sessionKey(_ cookie: String) throws -> String {
        let value = try #require(SetCookie(cookie)).value
        return "session-api:session:" + RedisKeys.sessionHash(value)
    }

    @Test(arguments: [UserStoreKind.json, .redis])
    func keyLayoutTTLAndNoUsableCookieInRedis(users: UserStoreKind) async throws {
        try await Self.withRedis(users: users) { server, configuration in
            var configuration = configuration
            configuration.sessionDuration = 600
            try await TestApp.run(configuration) { app, client in
                let user = try await app.seedUser()
                let cookie = try await client.login(headers: [.userAgent: "test-agent/1.0"])
                let sessionID = try #require(SetCookie(cookie)).value
                try await Self.withInspector(server) { redis throws in
                    let key = try Self.sessionKey(cookie)
                    // The key is the SHA-256 hex of the cookie value, exactly as `printf %s "$COOKIE" | sha256sum` prints it.
                    #expect(key.hasSuffix(":" + RedisKeys.sessionHash(sessionID)))
                    let fields = try await redis.hgetall(key).mapValues { String(decoding: $0, as: UTF8.self) }
                    #expect(fields["user_id"] == user.id)
                    #expect(fields["user_agent"] == "test-agent/1.0")
                    #expect(isTimestamp(fields["created_at"] ?? ""))
                    #expect(isTimestamp(fields["expires_at"] ?? ""))
                    let ttl = try await redis.ttl(key)
                    #expect(ttl > 590 && ttl <= 600)
                    let index = try await redis.zrangeWithScores("session-api:user-sessions:{\(user.id)}", start: 0, stop: -1)
                    #expect(index.map { String(decoding: $0.member, as: UTF8.self) } == [RedisKeys.sessionHash(sessionID)])
                    #expect(abs(Int(index[0].score) - (Timestamp.now() + 600)) <= 5)
                    #expect(try await redis.ttl("session-api:user-sessions:{\(user.id)}") > 590)
                    // No key or value anywhere holds the session ID itself.
                    var cursor = "0"
                    repeat {
                        let page = try await redis.send(["SCAN", RedisArgument(cursor), "COUNT", "1000"])
                        let parts = try #require(page.array)
                        cursor = try #require(parts[0].string)
                        for key in try #require(parts[1].array).compactMap(\.string) {
                            #expect(!key.contains(sessionID))
                            let dump = try await redis.send(["DUMP", RedisArgument(key)])
                            #expect(!String(decoding: dump.bytes ?? [], as: UTF8.self).contains(sessionID))
                        }
                    } while cursor != "0"
                }
            }
        }
    }

    @Test func absoluteExpiryWithAShortDuration() async throws {
        try await Self.withRedis { _, configuration in
            var configuration = configuration
            configuration.sessionDuration = 1
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                let expired = try await eventually(timeout: .seconds(5)) {
                    try await client.me(headers: .cookie(cookie)).status == .forbidden
                }
                #expect(expired)
            }
        }
    }

    @Test func idleTimeoutSlidesWithUseAndExpiresWithout() async throws {
        try await Self.withRedis { server, configuration in
            var configuration = configuration
            configuration.sessionDuration = 60
            // 4 s: a TTL slides only once less than 80% of the window is left (and a near-cache hit does not read
            // it), so right after the last use it may be down to 3.2 s; with a 2 s window that left 1.3 s of slack
            // before the check below, which a loaded CI machine's parallel cluster suite overran.
            configuration.sessionIdleTimeout = 4
            try await TestApp.run(configuration) { app, client in
                // One inspector for the whole test: connecting one on a loaded machine can take longer than the idle timeout.
                try await Self.withInspector(server) { redis throws in
                    try await app.seedUser()
                    let cookie = try await client.login()
                    let key = try Self.sessionKey(cookie)
                    // Used every 300 ms for 6 s, longer than the idle timeout: it stays valid.
                    let start = ContinuousClock.now
                    while ContinuousClock.now - start < .seconds(6) {
                        #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                        try await Task.sleep(for: .milliseconds(300))
                    }
                    // Each use moves the TTL to the idle timeout, never more.
                    let ttl = try await redis.pttl(key)
                    #expect(ttl > 0 && ttl <= 4000)
                    // Left alone (watched through Redis, since every API call would slide it), it expires.
                    let gone = try await eventually(timeout: .seconds(10)) { try await redis.exists(key) == 0 }
                    #expect(gone)
                    expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
                }
            }
        }
    }

    @Test func idleTimeoutNeverExtendsPastTheAbsoluteLifetime() async throws {
        try await Self.withRedis { _, configuration in
            var configuration = configuration
            configuration.sessionDuration = 2
            configuration.sessionIdleTimeout = 1
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                let loggedIn = ContinuousClock.now
                // Kept busy, it still ends at its absolute deadline (2 s, plus Redis' second granularity), long before
                // the 10 s an idle timeout that slid past it would keep it.
                var status = HTTPResponse.Status.ok
                while status == .ok, ContinuousClock.now - loggedIn < .seconds(10) {
                    status = try await client.me(headers: .cookie(cookie)).status
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(status == .forbidden)
                #expect(ContinuousClock.now - loggedIn < .seconds(8))
            }
        }
    }

    @Test(arguments: [UserStoreKind.json, .redis])
    func logoutLoginAndDeletionRemoveKeysAtomically(users: UserStoreKind) async throws {
        try await Self.withRedis(users: users) { server, configuration in
            try await TestApp.run(configuration) { app, client in
                let bob = try await app.seedUser()
                let first = try await client.login()
                let second = try await client.login()
                // Logging in with a cookie revokes it: key and index entry.
                let third = try await client.login(headers: .cookie(second))
                try await Self.withInspector(server) { redis throws in
                    #expect(try await redis.exists(try Self.sessionKey(second)) == 0)
                    let index = try await redis.zrangeWithScores("session-api:user-sessions:{\(bob.id)}", start: 0, stop: -1)
                    #expect(index.count == 2)
                }
                #expect(try await client.logout(headers: .cookie(first)).status == .ok)
                try await Self.withInspector(server) { redis throws in
                    #expect(try await redis.exists(try Self.sessionKey(first)) == 0)
                    #expect(try await redis.zrangeWithScores("session-api:user-sessions:{\(bob.id)}", start: 0, stop: -1).count == 1)
                }
                // Deleting the user ends every session it had.
                try await app.seedUser(email: "admin@example.com")
                let admin = try await client.login(email: "admin@example.com")
                #expect(try await client.deleteUser(id: bob.id, headers: .cookie(admin)).status == .ok)
                expectError(try await client.me(headers: .cookie(third)), .forbidden, "Forbidden")
                try await Self.withInspector(server) { redis throws in
                    #expect(try await redis.exists(try Self.sessionKey(third), "session-api:user-sessions:{\(bob.id)}") == 0)
                    if users == .redis {
                        #expect(try await redis.exists("session-api:user:{\(bob.id)}", "session-api:user-email:bob@example.com") == 0)
                        #expect(try await redis.scard("session-api:users") == 1)
                    }
                }
            }
        }
    }

    @Test func expiredEntriesArePrunedFromTheUserIndex() async throws {
        try await Self.withRedis { server, configuration in
            var long = configuration
            long.sessionDuration = 600
            var short = configuration
            short.sessionDuration = 1
            // One long session keeps the index alive; three short ones expire inside it.
            let bob = try await TestApp.run(long) { app, client in
                let bob = try await app.seedUser()
                _ = try await client.login()
                return bob
            }
            let index = "session-api:user-sessions:{\(bob.id)}"
            try await TestApp.run(short) { _, client in
                for _ in 0..<3 { _ = try await client.login() }
                #expect(try await Self.withInspector(server) { try await $0.zrangeWithScores(index, start: 0, stop: -1).count } == 4)
                let loggedIn = Timestamp.now()
                let later = try await eventually(timeout: .seconds(5)) { Timestamp.now() > loggedIn + 1 }
                #expect(later)
                // The next login prunes the expired entries: the long session and itself remain.
                _ = try await client.login()
                #expect(try await Self.withInspector(server) { try await $0.zrangeWithScores(index, start: 0, stop: -1).count } == 2)
            }
        }
    }

    @Test func redisDownIs503WithinTheTimeoutAndServiceResumesWithoutARestart() async throws {
        try await Self.withRedis { server, configuration in
            var configuration = configuration
            configuration.redis?.commandTimeout = .milliseconds(300)
            try await TestApp.run(configuration, setup: .live) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()

                try await server.kill()
                let start = ContinuousClock.now
                let down = try await client.me(headers: .cookie(cookie))
                #expect(ContinuousClock.now - start < .seconds(2))
                expectError(down, .serviceUnavailable, "Service Unavailable")
                #expect(down.headers[.retryAfter] == "1")
                #expect(try await client.status().status == .ok)
                #expect(try await client.get("/readyz").status == .serviceUnavailable)

                // Redis comes back (AOF: the session survived); the same app serves it again.
                try await server.restart()
                let back = try await eventually(timeout: .seconds(10)) {
                    try await client.me(headers: .cookie(cookie)).status == .ok
                }
                #expect(back)
                #expect(try await client.get("/readyz").status == .ok)
            }
        }
    }

    @Test func pausedRedisIs503NotAHang() async throws {
        try await Self.withRedis { server, configuration in
            var configuration = configuration
            configuration.redis?.commandTimeout = .milliseconds(300)
            try await TestApp.run(configuration, setup: .live) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                try server.pause()
                let start = ContinuousClock.now
                let response = try await client.me(headers: .cookie(cookie))
                let elapsed = ContinuousClock.now - start
                try server.resume()
                expectError(response, .serviceUnavailable, "Service Unavailable")
                #expect(elapsed < .seconds(2))
                let back = try await eventually(timeout: .seconds(10)) {
                    try await client.me(headers: .cookie(cookie)).status == .ok
                }
                #expect(back)
            }
        }
    }

    @Test func scriptCacheFlushIsHarmless() async throws {
        try await Self.withRedis(users: .redis) { server, configuration in
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                _ = try await client.login()
                try await Self.withInspector(server) { _ = try await $0.send(["SCRIPT", "FLUSH"]) }
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
            }
        }
    }
}
