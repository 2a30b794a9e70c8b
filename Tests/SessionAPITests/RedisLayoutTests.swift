import Foundation
import HTTPTypes
import HummingbirdTesting
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// The Cluster-safe key layout on one redis-server: the keys that change together share a hash tag, and the
/// states a crash between two one-slot steps can leave are skipped, repaired or expire by themselves. Each
/// state is made by hand, as a crash would leave it; the same API flows run on a real cluster in
/// `SESSION_API_TEST_BACKEND=cluster` and in `RedisFailoverTests`.
@Suite struct RedisLayoutTests {
    static let prefix = "session-api:"

    @Test func keysOfOneUserShareItsHashTag() {
        let keys = RedisKeys(prefix: Self.prefix)
        #expect(keys.user(id: "u1") == "session-api:user:{u1}")
        #expect(keys.userSessions(userID: "u1") == "session-api:user-sessions:{u1}")
        // Found from the cookie alone (no tag), as before.
        #expect(keys.session(hash: "ab") == "session-api:session:ab")
        #expect(keys.userEmail(normalizedEmail: "bob@example.com") == "session-api:user-email:bob@example.com")
        #expect(keys.users == "session-api:users")
    }

    @Test(arguments: ["{app}:", "a}b", "x{"])
    func aPrefixWithABraceIsRefused(prefix: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["REDIS_URL": "redis://127.0.0.1", "REDIS_PREFIX": prefix])
        }
        #expect(error.variable == "REDIS_PREFIX")
    }

    @Test func aDanglingIndexEntryIsSkippedThenPrunedButAYoungOneIsLeftForItsLogin() async throws {
        try await RedisSessionTests.withRedis { server, configuration in
            try await TestApp.run(configuration) { app, client in
                let bob = try await app.seedUser()
                let cookie = try await client.login()
                let index = "session-api:user-sessions:{\(bob.id)}"
                let now = Double(Timestamp.now())
                // Entries that name no hash: an old one (a crash after the index step, a day ago) and a young one
                // (a login that has not written its hash yet).
                let old = String(repeating: "a", count: 64)
                let young = String(repeating: "b", count: 64)
                try await RedisSessionTests.withInspector(server) { redis in
                    _ = try await redis.zadd(index, members: [(score: now + 3600, member: old), (score: now + 86_400, member: young)])
                }
                let listed = try UserSessionsTests.sessionList(try await client.get("/api/v1/users/me/sessions", headers: .cookie(cookie)))
                #expect(listed.count == 1)
                let ended = try await client.execute(uri: "/api/v1/users/me/sessions", method: .delete, headers: .cookie(cookie))
                #expect(ended.status == .ok)
                #expect(try ended.jsonObject()["ended"] as? Int == 0)
                let left = try await RedisSessionTests.withInspector(server) { redis in
                    try await redis.zrangeWithScores(index, start: 0, stop: -1).map { String(decoding: $0.member, as: UTF8.self) }
                }
                #expect(Set(left) == [young, SessionID.handle(of: try #require(SetCookie(cookie)).value)])
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
            }
        }
    }

    @Test func theBoundEndsTheOldestAcrossSlots() async throws {
        try await RedisSessionTests.withRedis(users: .redis) { server, configuration in
            var configuration = configuration
            configuration.sessionMaximumPerUser = 2
            try await TestApp.run(configuration) { app, client in
                let bob = try await app.seedUser()
                var cookies: [String] = []
                for _ in 0..<4 { cookies.append(try await client.login()) }
                #expect(try await client.me(headers: .cookie(cookies[0])).status == .forbidden)
                #expect(try await client.me(headers: .cookie(cookies[1])).status == .forbidden)
                #expect(try await client.me(headers: .cookie(cookies[2])).status == .ok)
                #expect(try await client.me(headers: .cookie(cookies[3])).status == .ok)
                try await RedisSessionTests.withInspector(server) { redis throws in
                    #expect(try await redis.zrangeWithScores("session-api:user-sessions:{\(bob.id)}", start: 0, stop: -1).count == 2)
                    for cookie in cookies.prefix(2) {
                        #expect(try await redis.exists(try RedisSessionTests.sessionKey(cookie)) == 0)
                    }
                }
            }
        }
    }

    @Test func aClaimNamingNoUserIsTakenOverAndAPendingOneIsNot() async throws {
        try await RedisSessionTests.withRedis(users: .redis) { server, configuration in
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser(email: "admin@example.com")
                let admin = try await client.login(email: "admin@example.com")
                try await RedisSessionTests.withInspector(server) { redis in
                    // A delete cut short after its first step: a permanent claim whose user is gone.
                    _ = try await redis.set("session-api:user-email:ann@example.com", value: "gone-user")
                    // A create under way (or crashed before its last step): a claim with a TTL.
                    _ = try await redis.set("session-api:user-email:cy@example.com", value: "pending-user", expiresInSeconds: 60)
                }
                let ann = try await client.createUser(email: "Ann@example.com", password: "pw", headers: .cookie(admin))
                #expect(ann.status == .created)
                let annID = try ann.user().id
                let cy = try await client.createUser(email: "cy@example.com", password: "pw", headers: .cookie(admin))
                expectError(cy, .conflict, "email already registered")
                try await RedisSessionTests.withInspector(server) { redis throws in
                    #expect(try await redis.getString("session-api:user-email:ann@example.com") == annID)
                    // Both made permanent by the create's last steps.
                    #expect(try await redis.ttl("session-api:user-email:ann@example.com") == -1)
                    #expect(try await redis.ttl("session-api:user:{\(annID)}") == -1)
                }
                #expect(try await client.login(email: "ann@example.com", password: "pw").hasPrefix("_my_session_id="))
            }
        }
    }

    @Test func anIDWithoutAHashIsLeftOutOfTheListingAndForgotten() async throws {
        try await RedisSessionTests.withRedis(users: .redis) { server, configuration in
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                try await RedisSessionTests.withInspector(server) { redis in
                    _ = try await redis.sadd("session-api:users", members: ["deleted-halfway"])
                }
                #expect(try await client.stats(headers: .cookie(cookie)).jsonObject()["users"] as? Int == 2)
                let listing = try await client.listUsers(headers: .cookie(cookie))
                #expect((try JSONSerialization.jsonObject(with: Data(listing.text.utf8)) as? [Any])?.count == 1)
                #expect(try await client.stats(headers: .cookie(cookie)).jsonObject()["users"] as? Int == 1)
            }
        }
    }

    @Test func theFirstLayoutIsMovedAtStartUp() async throws {
        try await RedisSessionTests.withRedis(users: .redis) { server, configuration in
            // What the first layout left: a user, its email claim, its id in `users`, a session and its index.
            let id = "0c0ffee0-0000-4000-8000-000000000001"
            let sessionID = "5d0c3c6a-1111-4222-8333-444455556666"
            let handle = SessionID.handle(of: sessionID)
            let hash = try await PasswordHasher(parameters: .testing).hash("H0lbertonSchool98!")
            let expires = Timestamp.now() + 3600
            try await RedisSessionTests.withInspector(server) { redis in
                _ = try await redis.send([
                    "HSET", RedisArgument("session-api:user:\(id)"), "id", RedisArgument(id), "email", "old@example.com", "_password",
                    RedisArgument(hash),
                    "created_at", "2026-01-01T00:00:00", "updated_at", "2026-01-01T00:00:00",
                ])
                _ = try await redis.set("session-api:user-email:old@example.com", value: id)
                _ = try await redis.sadd("session-api:users", members: [id])
                _ = try await redis.send([
                    "HSET", RedisArgument("session-api:session:\(handle)"), "user_id", RedisArgument(id), "created_at", "2026-01-01T00:00:00",
                    "expires_at", "", "expires_at_unix", RedisArgument(expires), "ip", "", "user_agent", "",
                ])
                _ = try await redis.expire("session-api:session:\(handle)", seconds: 3600)
                _ = try await redis.zadd("session-api:user-sessions:\(id)", members: [(score: Double(expires), member: handle)])
            }
            try await TestApp.run(configuration) { _, client in
                let cookie = "_my_session_id=\(sessionID)"
                let moved = try await eventually { try await client.me(headers: .cookie(cookie)).status == .ok }
                #expect(moved)
                let sessions = try UserSessionsTests.sessionList(try await client.get("/api/v1/users/me/sessions", headers: .cookie(cookie)))
                #expect(sessions.compactMap { $0["handle"] as? String } == [handle])
                #expect(try await client.login(email: "old@example.com").hasPrefix("_my_session_id="))
                try await RedisSessionTests.withInspector(server) { redis throws in
                    #expect(try await redis.exists("session-api:user:\(id)", "session-api:user-sessions:\(id)") == 0)
                    #expect(try await redis.getString("session-api:layout") == "2")
                }
            }
        }
    }
}
