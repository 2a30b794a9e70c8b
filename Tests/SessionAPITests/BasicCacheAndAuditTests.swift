import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// Basic auth remembers verified credentials for a while (issue 7): a repeated request costs no hash;
/// a password change or a deletion ends that at once; wrong passwords are never remembered.
@Suite(.storeBackend) struct BasicCredentialCacheTests {
    static func request(_ email: String, _ password: String) -> Request {
        Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/api/v1/users/me", headerFields: .basic(email, password)),
            body: .init(buffer: ByteBuffer())
        )
    }

    /// With the hasher full (every hash refused), only a remembered credential still authenticates.
    @Test func aRememberedCredentialCostsNoHash() async throws {
        try await withDataDirectory { directory in
            let configuration = AppConfiguration.test(directory: directory, authType: .basicAuth)
            try await AppStores.withStores(configuration, logger: testLogger()) { stores in
                let user = try await UserAdministration.createUser(
                    email: "bob@example.com",
                    password: "pw",
                    firstName: nil,
                    lastName: nil,
                    users: stores.users,
                    hasher: PasswordHasher(parameters: .testing)
                )
                let cache = BasicCredentialCache(lifetime: .seconds(60))
                let full = PasswordHasher(parameters: .testing, maximumQueued: 0)
                let authenticator = BasicAuthenticator(users: stores.users, hasher: full, cache: cache, throttle: stores.throttle, audit: .logOnly)
                let log = AuthenticationLog(logger: testLogger(), clientIP: nil)
                await #expect(throws: PasswordHasher.Overloaded.self) {
                    _ = try await authenticator.authenticate(Self.request("bob@example.com", "pw"), log: log)
                }
                cache.insert(email: "bob@example.com", password: "pw", for: user)
                #expect(try await authenticator.authenticate(Self.request("bob@example.com", "pw"), log: log)?.user.id == user.id)
                // Not for another password, nor another spelling of the email, nor once the hash has changed.
                await #expect(throws: PasswordHasher.Overloaded.self) {
                    _ = try await authenticator.authenticate(Self.request("bob@example.com", "px"), log: log)
                }
                #expect(try await stores.users.replacePasswordHash(id: user.id, expected: user.passwordHash, with: "$argon2id$other"))
                await #expect(throws: PasswordHasher.Overloaded.self) {
                    _ = try await authenticator.authenticate(Self.request("bob@example.com", "pw"), log: log)
                }
            }
        }
    }

    @Test func aChangedOrDeletedUserIsRefusedAtOnce() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            let bob = try await app.seedUser(password: "old-pw")
            #expect(try await client.me(headers: .basic("bob@example.com", "old-pw")).status == .ok)
            #expect(try await client.me(headers: .basic("bob@example.com", "old-pw")).status == .ok)
            // A new password: the remembered one no longer works.
            let newHash = try await PasswordHasher(parameters: .testing).hash("new-pw")
            #expect(try await app.stores.users.replacePasswordHash(id: bob.id, expected: bob.passwordHash, with: newHash))
            expectError(try await client.me(headers: .basic("bob@example.com", "old-pw")), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .basic("bob@example.com", "new-pw")).status == .ok)
            // Deleted: refused, remembered or not.
            #expect(try await app.stores.users.delete(id: bob.id))
            expectError(try await client.me(headers: .basic("bob@example.com", "new-pw")), .forbidden, "Forbidden")
        }
    }

    @Test func wrongPasswordsAreNeverRemembered() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser(password: "pw")
            for _ in 0..<3 { expectError(try await client.me(headers: .basic("bob@example.com", "nope")), .forbidden, "Forbidden") }
            #expect(try await client.me(headers: .basic("bob@example.com", "pw")).status == .ok)
            expectError(try await client.me(headers: .basic("bob@example.com", "nope")), .forbidden, "Forbidden")
        }
    }

    @Test func entriesExpireAndStayBounded() async throws {
        let user = User(id: "u1", email: "a@b.c", passwordHash: "h", createdAt: "2026-01-01T00:00:00", updatedAt: "2026-01-01T00:00:00")
        let short = BasicCredentialCache(lifetime: .milliseconds(1))
        short.insert(email: "a@b.c", password: "pw", for: user)
        let expired = try await eventually(timeout: .seconds(5)) { !short.contains(email: "a@b.c", password: "pw", for: user) }
        #expect(expired)
        let small = BasicCredentialCache(lifetime: .seconds(60), capacity: 2)
        for index in 0..<5 { small.insert(email: "a@b.c", password: "pw\(index)", for: user) }
        #expect(small.contains(email: "a@b.c", password: "pw4", for: user))
        #expect([0, 1, 2, 3].filter { small.contains(email: "a@b.c", password: "pw\($0)", for: user) }.count <= 1)
    }
}

/// Every security event leaves one structured log line, and in the Redis modes a stream entry; no password,
/// hash or cookie value in either (issue 7).
@Suite struct AuditTrailTests {
    static let password = "Sup3r-Secret-pw"

    @Test(arguments: [UserStoreKind.json, .redis])
    func eventsAreRecordedWithoutSecrets(users: UserStoreKind) async throws {
        let redis = try await RedisServerProcess.start()
        do {
            try await withDataDirectory { directory in
                var configuration = AppConfiguration.test(directory: directory, authType: .sessionRedisAuth)
                configuration.redis = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: redis.port), connectTimeout: .seconds(5))
                configuration.redisPrefix = "audit-test:"
                configuration.sessionDuration = 3600
                configuration.userStore = users
                let lines = RecordingLogHandler.Lines()
                try await TestApp.run(configuration, logger: RecordingLogHandler.logger(lines)) { app, client in
                    let bob = try await app.seedUser(password: Self.password)
                    expectError(try await client.loginForm(email: "bob@example.com", password: "wrong-guess"), .unauthorized, "wrong password")
                    _ = try await client.loginForm(email: "nobody@example.com", password: "x")
                    let other = try await client.login(password: Self.password)
                    let cookie = try await client.login(password: Self.password)
                    let created = try await client.createUser(email: "ann@example.com", password: "ann-pw", headers: .cookie(cookie))
                    let ann = try created.user()
                    #expect(try await client.updateUser(id: ann.id, json: #"{"first_name":"Ann"}"#, headers: .cookie(cookie)).status == .ok)
                    #expect(try await client.deleteUser(id: ann.id, headers: .cookie(cookie)).status == .ok)
                    #expect(try await client.execute(uri: "/api/v1/users/me/sessions", method: .delete, headers: .cookie(cookie)).status == .ok)
                    expectError(try await client.me(headers: .cookie(other)), .forbidden, "Forbidden")
                    #expect(try await client.logout(headers: .cookie(cookie)).status == .ok)

                    let expected = [
                        "login.failure", "login.success", "user.created", "user.updated", "user.deleted", "session.revoked", "logout",
                    ]
                    let log = lines.all.filter { $0.contains(" audit ") }
                    for event in expected { #expect(log.contains { $0.contains("event=\(event)") }, "\(event) not logged: \(log)") }
                    #expect(
                        log.contains {
                            $0.contains("event=login.failure") && $0.contains("detail=wrong password") && $0.contains("user_id=\(bob.id)")
                        }
                    )
                    #expect(log.contains { $0.contains("event=login.failure") && $0.contains("detail=unknown email") })

                    let stream = try await RedisClient.withClient(app.configuration.redis ?? RedisClientConfiguration(), logger: testLogger()) {
                        try await $0.send(["XRANGE", "audit-test:audit", "-", "+"])
                    }
                    let entries = (stream.array ?? []).compactMap { $0.array?.last?.array?.compactMap(\.string) }
                    let events = entries.compactMap { fields in fields.firstIndex(of: "event").map { fields[$0 + 1] } }
                    for event in expected { #expect(events.contains(event), "\(event) not in the stream: \(events)") }

                    // No secret anywhere: passwords, their hashes, cookie values.
                    let hashes = [try await app.stores.users.user(id: bob.id)?.passwordHash].compactMap { $0 }
                    let cookieValues = [other, cookie].compactMap { $0.split(separator: "=").last.map(String.init) }
                    let everything = lines.all + entries.map { $0.joined(separator: " ") }
                    for secret in [Self.password, "wrong-guess", "ann-pw"] + hashes + cookieValues {
                        #expect(!everything.contains { $0.contains(secret) }, "a secret is in the audit trail or the log")
                    }
                    #expect(!everything.contains { $0.contains("$argon2") })
                }
            }
        } catch {
            try? await redis.stop()
            throw error
        }
        try await redis.stop()
    }

    @Test func theStreamIsCapped() async throws {
        let redis = try await RedisServerProcess.start()
        do {
            let configuration = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: redis.port), connectTimeout: .seconds(5))
            try await RedisClient.withClient(configuration, logger: testLogger()) { client in
                let trail = AuditTrail(redis: client, keys: RedisKeys(prefix: "cap:"))
                for index in 0..<(AuditTrail.streamLength + 500) {
                    await trail.record(AuditEvent(.loginFailed, account: "a\(index)@example.com"), logger: testLogger())
                }
                let length = try await client.send(["XLEN", "cap:audit"]).int64 ?? 0
                // MAXLEN ~ trims whole macro nodes: about the cap, never the whole history.
                #expect(length >= Int64(AuditTrail.streamLength))
                #expect(length < Int64(AuditTrail.streamLength + 500))
            }
        } catch {
            try? await redis.stop()
            throw error
        }
        try await redis.stop()
    }
}
