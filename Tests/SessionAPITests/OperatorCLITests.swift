import Foundation
import HTTPTypes
import HummingbirdTesting
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// The operator's commands (`user list | show | delete | set-password`, `session list | revoke | count | inspect`)
/// through the real binary, against both user stores and both session stores another process can reach.
///
/// The suite makes its own stores (a private redis-server for the Redis ones) whatever `SESSION_API_TEST_BACKEND`
/// says, so it runs once, with the default backend, rather than three times the same.
@Suite(.enabled(if: TestBackend.current == .files, "covers every store itself"))
struct OperatorCLITests {
    struct Stores: Sendable, CustomTestStringConvertible {
        let userStore: UserStoreKind
        let authType: AuthType
        var testDescription: String { "users \(self.userStore.rawValue), sessions \(self.authType.rawValue)" }
    }

    static let combinations = [
        Stores(userStore: .json, authType: .sessionDBAuth),
        Stores(userStore: .json, authType: .sessionRedisAuth),
        Stores(userStore: .redis, authType: .sessionDBAuth),
        Stores(userStore: .redis, authType: .sessionRedisAuth),
    ]

    /// One scenario's stores: the binary's environment, and the same stores opened in the test process.
    struct Fixture: Sendable {
        let environment: [String: String]
        let configuration: AppConfiguration

        func run(_ arguments: [String], stdin: String? = nil) async throws -> SessionAPIBinary.Result {
            try await SessionAPIBinary.run(arguments, environment: self.environment, stdin: stdin)
        }

        func withStores<T: Sendable>(_ body: @escaping @Sendable (AppStores) async throws -> T) async throws -> T {
            try await AppStores.withStores(self.configuration, logger: testLogger(), body)
        }
    }

    /// Runs `body` with a data directory and, for the stores that need one, a private redis-server.
    func withFixture(_ stores: Stores, _ body: (Fixture) async throws -> Void) async throws {
        try await withDataDirectory { directory in
            try await withRedisServer { redis in
                let environment = [
                    "DATA_DIR": directory, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
                    "AUTH_TYPE": stores.authType.rawValue,
                    "USER_STORE": stores.userStore.rawValue, "REDIS_URL": "redis://127.0.0.1:\(redis.port)",
                    "REDIS_PREFIX": "cli-\(UUID().uuidString):", "SESSION_DURATION": "3600",
                ]
                let configuration = try AppConfiguration(environment: environment)
                try await body(Fixture(environment: environment, configuration: configuration))
            }
        }
    }

    /// A failed run: the status, nothing on stdout, one line on stderr (no crash trace).
    func expectFailure(
        _ result: SessionAPIBinary.Result,
        _ status: Int32,
        _ text: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(result.status == status, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "stdout: \(result.stdout)", sourceLocation: sourceLocation)
        #expect(result.errorLines.count == 1, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.contains(text), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
    }

    func expectSuccess(_ result: SessionAPIBinary.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 0, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stderr.isEmpty, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
    }

    @Test(arguments: combinations)
    func everyCommandAgainstTheStores(stores: Stores) async throws {
        try await self.withFixture(stores) { fixture in
            // Users: bob through the binary (the password on stdin), ann through the library.
            let created = try await fixture.run(["user", "create", "--email", "bob@example.com", "--first-name", "Bob"], stdin: "old password\n")
            self.expectSuccess(created)
            let configuration = fixture.configuration
            let (bob, ann) = try await fixture.withStores { stores in
                let ann = try await UserAdministration.createUser(
                    email: "ann@example.com",
                    password: "pw",
                    firstName: nil,
                    lastName: "Lee\tTab",
                    users: stores.users,
                    hasher: PasswordHasher(configuration)
                )
                return (try #require(try await stores.users.user(email: "bob@example.com")), ann)
            }

            // user list: a line a user, tab-separated, control characters shown as ?; --json: the API's array.
            let list = try await fixture.run(["user", "list"])
            self.expectSuccess(list)
            let lines = list.stdout.split(separator: "\n").map(String.init)
            #expect(
                Set(lines) == [
                    "\(bob.id)\tbob@example.com\tBob\t-\t\(bob.createdAt)", "\(ann.id)\tann@example.com\t-\tLee?Tab\t\(ann.createdAt)",
                ]
            )
            let listJSON = try await fixture.run(["user", "list", "--json"])
            self.expectSuccess(listJSON)
            let apiJSON = try await fixture.withStores { stores in
                var output: [UInt8] = []
                User.writeJSON(try await stores.users.allUsers(), .public, into: &output)
                return String(decoding: output, as: UTF8.self)
            }
            #expect(listJSON.stdout == apiJSON + "\n")
            #expect(!listJSON.stdout.contains("password") && !listJSON.stdout.contains("$argon2"))

            // user show: by id or by email (as logins compare it); exit 3 for nobody.
            for reference in [bob.id, "BOB@example.com"] {
                let show = try await fixture.run(["user", "show", reference])
                self.expectSuccess(show)
                #expect(show.stdout == bob.jsonString(.public) + "\n")
            }
            self.expectFailure(try await fixture.run(["user", "show", "nobody@example.com"]), 3, "no user nobody@example.com")

            // Sessions: two of bob's, one of ann's.
            let (first, second, third) = try await fixture.withStores { stores in
                let sessions = try #require(stores.sessions)
                return (
                    try await sessions.createSession(userID: bob.id, metadata: SessionMetadata(ip: "10.0.0.1", userAgent: "curl/8"), replacing: nil),
                    try await sessions.createSession(userID: bob.id, metadata: SessionMetadata(), replacing: nil),
                    try await sessions.createSession(userID: ann.id, metadata: SessionMetadata(), replacing: nil)
                )
            }
            let count = try await fixture.run(["session", "count"])
            self.expectSuccess(count)
            #expect(count.stdout == "3\n")

            // session list: handles, never the cookie.
            let sessions = try await fixture.run(["session", "list", "--user", "bob@example.com"])
            self.expectSuccess(sessions)
            let rows = sessions.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
            #expect(rows.count == 2)
            #expect(Set(rows.map { $0[0] }) == [SessionID.handle(of: first), SessionID.handle(of: second)])
            #expect(rows.contains { $0[3] == "10.0.0.1" && $0[4] == "curl/8" })
            let sessionsJSON = try await fixture.run(["session", "list", "--user", bob.id, "--json"])
            self.expectSuccess(sessionsJSON)
            let objects = try #require(try JSONSerialization.jsonObject(with: Data(sessionsJSON.stdout.utf8)) as? [[String: Any]])
            #expect(objects.count == 2)
            #expect(Set(objects.compactMap { $0["handle"] as? String }) == [SessionID.handle(of: first), SessionID.handle(of: second)])
            #expect(objects.allSatisfy { $0["user_id"] as? String == bob.id && $0["created_at"] is String && $0["expires_at"] is String })
            for output in [sessions.stdout, sessionsJSON.stdout] {
                #expect(!output.contains(first) && !output.contains(second))
            }
            self.expectFailure(try await fixture.run(["session", "list", "--user", "nobody@example.com"]), 3, "no user")

            // session inspect: what the store holds, found from the cookie (or NAME=VALUE, or stdin with -).
            let inspect = try await fixture.run(["session", "inspect", "--cookie", first])
            self.expectSuccess(inspect)
            #expect(inspect.stdout.contains("handle\t\(SessionID.handle(of: first))\n"))
            #expect(inspect.stdout.contains("user_id\t\(bob.id)\n"))
            #expect(inspect.stdout.contains("live\tyes\n"))
            #expect(inspect.stdout.contains("ip\t10.0.0.1\n"))
            if stores.authType == .sessionRedisAuth {
                let prefix = configuration.redisPrefix
                #expect(inspect.stdout.contains("location\t\(prefix)session:\(SessionID.handle(of: first))\n"), "\(inspect.stdout)")
                let ttl = try #require(inspect.stdout.firstMatch(of: #/ttl\t(\d+) s\n/#).map { Int($0.1) ?? 0 }, "\(inspect.stdout)")
                #expect(ttl > 3000 && ttl <= 3600)
                let index = RedisKeys(prefix: prefix).userSessions(userID: bob.id)
                #expect(inspect.stdout.contains("index\t\(index) score "), "\(inspect.stdout)")
            } else {
                #expect(inspect.stdout.contains(".db_UserSession.json, record "), "\(inspect.stdout)")
                #expect(inspect.stdout.contains("ttl\tnone: this store keeps no TTL"))
            }
            let inspectJSON = try await fixture.run(
                ["session", "inspect", "--cookie", "-", "--json"],
                stdin: "\(configuration.sessionCookieName)=\(second)\n"
            )
            self.expectSuccess(inspectJSON)
            let inspected = try #require(try JSONSerialization.jsonObject(with: Data(inspectJSON.stdout.utf8)) as? [String: Any])
            #expect(inspected["handle"] as? String == SessionID.handle(of: second))
            #expect(inspected["live"] as? Bool == true)
            #expect((inspected["fields"] as? [String: Any])?["user_id"] as? String == bob.id)
            #expect(!inspect.stdout.contains(first) && !inspectJSON.stdout.contains(second))
            self.expectFailure(try await fixture.run(["session", "inspect", "--cookie", SessionID.generate()]), 3, "no session")
            self.expectFailure(try await fixture.run(["session", "inspect", "--cookie", "not-a-session"]), 3, "not a session ID")

            // session revoke: one by handle (exit 3 once it is gone), then all of a user's.
            let revoke = try await fixture.run(["session", "revoke", "--user", "bob@example.com", "--handle", SessionID.handle(of: first)])
            self.expectSuccess(revoke)
            #expect(revoke.stdout == "1 session ended\n")
            let again = try await fixture.run(["session", "revoke", "--user", bob.id, "--handle", SessionID.handle(of: first)])
            self.expectFailure(again, 3, "no session")
            self.expectFailure(try await fixture.run(["session", "revoke", "--user", bob.id]), 2, "--all or --handle")
            self.expectFailure(try await fixture.run(["session", "revoke", "--user", bob.id, "--all", "--handle", "x"]), 2, "--all or --handle")
            #expect(try await fixture.withStores { try await $0.sessions?.userID(sessionID: first) } == nil)
            #expect(try await fixture.withStores { try await $0.sessions?.userID(sessionID: second) } == bob.id)
            let all = try await fixture.run(["session", "revoke", "--user", "ann@example.com", "--all"])
            self.expectSuccess(all)
            #expect(all.stdout == "1 session ended\n")
            #expect(try await fixture.withStores { try await $0.sessions?.userID(sessionID: third) } == nil)

            // user set-password: from stdin, refused as the API refuses it, hashed as the server hashes (Argon2id with
            // PASSWORD_ARGON2_*); updated_at moves; the user's sessions end.
            // An updated_at from long ago, so that the change is visible without waiting for the clock.
            let before = try await fixture.withStores {
                try await $0.users.update(id: bob.id, firstName: nil, lastName: nil, updatedAt: "2001-01-01T00:00:00")
            }
            self.expectFailure(try await fixture.run(["user", "set-password", bob.id], stdin: "a\u{0}b\n"), 1, "NUL")
            self.expectFailure(try await fixture.run(["user", "set-password", bob.id], stdin: "\n"), 1, "password missing")
            let tooLong = String(repeating: "x", count: PasswordHasher.maximumPasswordBytes + 1)
            self.expectFailure(try await fixture.run(["user", "set-password", bob.id], stdin: tooLong + "\n"), 1, "too long")
            #expect(try await fixture.withStores { try await $0.users.user(id: bob.id) } == before)
            self.expectFailure(try await fixture.run(["user", "set-password", "nobody@example.com"], stdin: "pw\n"), 3, "no user")
            let set = try await fixture.run(["user", "set-password", "bob@example.com"], stdin: "new password\n")
            self.expectSuccess(set)
            #expect(set.stdout == "password set for user \(bob.id) (bob@example.com); 1 session ended\n")
            #expect(!set.stdout.contains("new password"))
            let hasher = PasswordHasher(configuration)
            let changed = try await fixture.withStores { try await $0.users.user(id: bob.id) }
            let hash = changed?.passwordHash
            #expect(hash?.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$") == true, "\(hash ?? "nil")")
            #expect(changed?.updatedAt != before?.updatedAt && changed?.createdAt == before?.createdAt)
            #expect(try await hasher.verify("new password", against: hash))
            #expect(try await !hasher.verify("old password", against: hash))
            #expect(try await fixture.withStores { try await $0.sessions?.userID(sessionID: second) } == nil)

            // user delete: the user and its sessions, as DELETE /users/:id; exit 3 the second time.
            let last = try await fixture.withStores { stores in
                try await #require(stores.sessions).createSession(userID: bob.id, metadata: SessionMetadata(), replacing: nil)
            }
            let delete = try await fixture.run(["user", "delete", "bob@example.com"])
            self.expectSuccess(delete)
            #expect(delete.stdout == "deleted user \(bob.id) (bob@example.com); 1 session ended\n")
            #expect(try await fixture.withStores { try await $0.sessions?.userID(sessionID: last) } == nil)
            #expect(try await fixture.withStores { try await $0.users.user(id: bob.id) } == nil)
            self.expectFailure(try await fixture.run(["user", "delete", bob.id]), 3, "no user")
            let finalCount = try await fixture.run(["session", "count"])
            self.expectSuccess(finalCount)
            #expect(finalCount.stdout == "0\n")

            // What the commands changed is in the audit stream wherever there is Redis (never a password or cookie).
            if stores.authType == .sessionRedisAuth || stores.userStore == .redis {
                let entries = try await self.auditEntries(fixture)
                #expect(
                    entries.compactMap { $0["event"] }.filter { $0 != "user.created" }
                        == ["session.revoked", "session.revoked", "user.updated", "user.deleted"],
                    "\(entries)"
                )
                #expect(entries.contains { $0["event"] == "user.deleted" && $0["user_id"] == bob.id })
                let text = "\(entries)"
                #expect(!text.contains("new password") && !text.contains(first) && !text.contains(second) && !text.contains("$argon2"))
            }
        }
    }

    /// A running `basic_auth` server with a long `BASIC_AUTH_CACHE_SECONDS` stops accepting a password as soon as
    /// it reads the user the CLI changed: its cache keeps the hash a credential matched, and every request reads the
    /// user (JSON file: polled, the server notices the other process's write by its file watch).
    @Test(arguments: [UserStoreKind.json, .redis])
    func setPasswordAndDeleteReachARunningServersBasicCache(userStore: UserStoreKind) async throws {
        try await self.withFixture(Stores(userStore: userStore, authType: .basicAuth)) { fixture in
            self.expectSuccess(try await fixture.run(["user", "create", "--email", "bob@example.com"], stdin: "old password\n"))
            var environment = fixture.environment
            environment["BASIC_AUTH_CACHE_SECONDS"] = "3600"
            let server = try await ServerProcess(environment: environment)
            defer { server.terminate() }
            try await server.withClient { client in
                let status = { @Sendable (password: String) in
                    try await client.get("/api/v1/users/me", headers: HTTPFields.basic("bob@example.com", password)).head.status
                }
                #expect(try await status("old password") == .ok)
                #expect(try await status("old password") == .ok)  // now from the cache
                self.expectSuccess(try await fixture.run(["user", "set-password", "bob@example.com"], stdin: "new password\n"))
                #expect(try await eventually { try await status("old password") == .forbidden })
                #expect(try await status("new password") == .ok)
                self.expectSuccess(try await fixture.run(["user", "delete", "bob@example.com"]))
                #expect(try await eventually { try await status("new password") == .forbidden })
            }
        }
    }

    /// The entries of the fixture's audit stream, oldest first, as field maps.
    func auditEntries(_ fixture: Fixture) async throws -> [[String: String]] {
        let url = try #require(fixture.environment["REDIS_URL"])
        let port = try #require(url.split(separator: ":").last.flatMap { Int($0) })
        let configuration = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .seconds(5))
        let reply = try await RedisClient.withClient(configuration, logger: testLogger()) { client in
            try await client.send(["XRANGE", RedisArgument(RedisKeys(prefix: fixture.configuration.redisPrefix).audit), "-", "+"])
        }
        return (reply.array ?? []).map { entry in
            let values = entry.array?.last?.array?.compactMap(\.string) ?? []
            return Dictionary(stride(from: 0, to: values.count - 1, by: 2).map { (values[$0], values[$0 + 1]) }, uniquingKeysWith: { $1 })
        }
    }

    /// Sessions that live in a server's memory, or modes without sessions, are a failure in one line, not a 0.
    @Test(arguments: [AuthType.sessionAuth, .sessionExpAuth, .basicAuth])
    func sessionCommandsNeedASharedStore(authType: AuthType) async throws {
        try await withDataDirectory { directory in
            let result = try await SessionAPIBinary.run(["session", "count"], environment: ["DATA_DIR": directory, "AUTH_TYPE": authType.rawValue])
            self.expectFailure(result, 1, authType.usesSessions ? "memory" : "has no sessions")
        }
    }

    /// A store that cannot be reached is exit 1 with one line (the client's retries are not logged).
    @Test func anUnreachableRedisIsOneLine() async throws {
        try await withDataDirectory { directory in
            let port = try ServerProcess.freePort()
            let environment = ["DATA_DIR": directory, "USER_STORE": "redis", "REDIS_URL": "redis://127.0.0.1:\(port)"]
            self.expectFailure(try await SessionAPIBinary.run(["user", "list"], environment: environment), 1, "store: redis")
        }
    }

    /// Every command has --help (exit 0); a wrong command line is exit 2 with one line.
    @Test func helpAndUsage() async throws {
        let commands = [
            [], ["serve"], ["user"], ["user", "create"], ["user", "list"], ["user", "show"], ["user", "delete"], ["user", "set-password"],
            ["session"], ["session", "list"], ["session", "revoke"], ["session", "count"], ["session", "inspect"],
        ]
        for command in commands {
            let help = try await SessionAPIBinary.run(command + ["--help"], environment: [:])
            #expect(help.status == 0, "\(command): \(help.stderr)")
            #expect(help.stdout.contains("USAGE:"), "\(command): \(help.stdout)")
        }
        for wrong in [["user", "show"], ["user", "frobnicate"], ["session", "list"], ["user", "list", "--bogus"]] {
            self.expectFailure(try await SessionAPIBinary.run(wrong, environment: [:]), 2, "see --help")
        }
    }
}
