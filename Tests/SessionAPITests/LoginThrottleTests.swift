import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import RedisClient
import SessionAPI
import Synchronization
import TestSupport
import Testing

/// Failed logins are counted per account and per client address in a sliding window; past the limit a login
/// is 429 with `Retry-After`, before any hashing (issue 7).
@Suite(.storeBackend) struct LoginThrottleTests {
    static func configuration(_ directory: String, _ mode: AuthType, perAccount: Int = 3, perAddress: Int = 100) -> AppConfiguration {
        var configuration = AppConfiguration.test(directory: directory, authType: mode)
        configuration.loginFailuresPerAccount = perAccount
        configuration.loginFailuresPerAddress = perAddress
        return configuration
    }

    @Test(arguments: [AuthType.sessionAuth, .sessionDBAuth])
    func pastTheLimitALoginIs429EvenWithTheRightPassword(mode: AuthType) async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(Self.configuration(directory, mode)) { app, client in
                try await app.seedUser()
                for _ in 0..<3 {
                    expectError(try await client.loginForm(email: "bob@example.com", password: "wrong"), .unauthorized, "wrong password")
                }
                let refused = try await client.loginForm(email: "Bob@Example.com", password: "H0lbertonSchool98!")
                expectError(refused, .tooManyRequests, "Too many requests")
                let wait = try #require(Int(refused.headers[.retryAfter] ?? ""))
                #expect((1...900).contains(wait))
                #expect(refused.headers[values: .setCookie].isEmpty)
                // Another account is not held up.
                try await app.seedUser(email: "ann@example.com", password: "annpw")
                #expect(try await client.loginForm(email: "ann@example.com", password: "annpw").status == .ok)
            }
        }
    }

    @Test func unknownEmailsCountToo() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(Self.configuration(directory, .sessionAuth)) { _, client in
                for _ in 0..<3 {
                    expectError(try await client.loginForm(email: "nobody@example.com", password: "x"), .notFound, "no user found for this email")
                }
                expectError(try await client.loginForm(email: "nobody@example.com", password: "x"), .tooManyRequests, "Too many requests")
            }
        }
    }

    @Test func aSuccessClearsTheAccountsCount() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(Self.configuration(directory, .sessionAuth)) { app, client in
                try await app.seedUser()
                for _ in 0..<2 { _ = try await client.loginForm(email: "bob@example.com", password: "wrong") }
                _ = try await client.login()
                for _ in 0..<2 { _ = try await client.loginForm(email: "bob@example.com", password: "wrong") }
                #expect(try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!").status == .ok)
            }
        }
    }

    /// Guessing across many accounts from one address hits the address's limit.
    @Test func oneAddressIsLimitedAcrossAccounts() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(Self.configuration(directory, .sessionAuth, perAccount: 100, perAddress: 4), setup: .live) { app, client in
                try await app.seedUser()
                for index in 0..<4 { _ = try await client.loginForm(email: "user\(index)@example.com", password: "x") }
                expectError(
                    try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!"),
                    .tooManyRequests,
                    "Too many requests"
                )
            }
        }
    }

    /// The throttled answer costs no hashing: with no room on the hashing pool it is still 429, not 503.
    @Test func throttledLoginsAreRefusedBeforeAnyHashing() async throws {
        try await withDataDirectory { directory in
            var configuration = Self.configuration(directory, .sessionAuth)
            configuration.passwordHashQueueLimit = 0
            let throttle = MemoryLoginThrottle(limits: ThrottleLimits(perAccount: 3, perAddress: 100, windowSeconds: 900))
            for _ in 0..<3 { try await throttle.recordFailure(account: "bob@example.com", address: nil) }
            let opened = try await AppStores.open(configuration, logger: testLogger())
            let stores = AppStores(users: opened.users, sessions: opened.sessions, throttle: throttle, services: opened.services)
            try await TestApp.run(configuration, stores: stores) { _, client in
                expectError(try await client.loginForm(email: "bob@example.com", password: "pw"), .tooManyRequests, "Too many requests")
                // Another account does reach the hasher (and finds it full).
                expectError(try await client.loginForm(email: "ann@example.com", password: "pw"), .serviceUnavailable, "Service Unavailable")
            }
        }
    }

    @Test func basicAuthIsThrottledToo() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(Self.configuration(directory, .basicAuth)) { app, client in
                try await app.seedUser()
                for _ in 0..<3 { expectError(try await client.me(headers: .basic("bob@example.com", "wrong")), .forbidden, "Forbidden") }
                let refused = try await client.me(headers: .basic("bob@example.com", "H0lbertonSchool98!"))
                expectError(refused, .tooManyRequests, "Too many requests")
                #expect(refused.headers[.retryAfter] != nil)
            }
        }
    }

    @Test func theWindowSlides() async throws {
        let clock = ManualSeconds()
        let throttle = MemoryLoginThrottle(limits: ThrottleLimits(perAccount: 2, perAddress: 0, windowSeconds: 60), now: clock.now)
        try await throttle.recordFailure(account: "a", address: "10.0.0.1")
        clock.advance(30)
        try await throttle.recordFailure(account: "a", address: "10.0.0.1")
        #expect(try await throttle.retryAfter(account: "a", address: "10.0.0.1") == 30)
        clock.advance(31)
        #expect(try await throttle.retryAfter(account: "a", address: "10.0.0.1") == nil)
    }
}

/// Two processes sharing one Redis share the count.
@Suite struct SharedLoginThrottleTests {
    @Test func throttlingHoldsAcrossTwoProcessesOnOneRedis() async throws {
        let redis = try await RedisServerProcess.start()
        do {
            let directory = try CrossProcessTests.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let environment = [
                "AUTH_TYPE": "session_redis_auth", "REDIS_URL": "redis://127.0.0.1:\(redis.port)", "USER_STORE": "redis", "DATA_DIR": directory.path,
                "LOGIN_FAILURES_PER_ACCOUNT": "3", "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
            ]
            let first = try await ServerProcess(environment: environment)
            defer { first.terminate() }
            let second = try await ServerProcess(environment: environment)
            defer { second.terminate() }
            let create = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com"],
                environment: environment,
                stdin: "H0lbertonSchool98!\n"
            )
            #expect(create.status == 0, "\(create.stderr)")
            let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            let wrong = ByteBuffer(string: "email=bob%40example.com&password=wrong")
            let right = ByteBuffer(string: "email=bob%40example.com&password=H0lbertonSchool98%21")
            for server in [first, second, first] {
                let status = try await server.withClient { try await $0.post("/api/v1/auth_session/login", headers: form, body: wrong).status }
                #expect(status == .unauthorized)
            }
            let refused = try await second.withClient { try await $0.post("/api/v1/auth_session/login", headers: form, body: right) }
            #expect(refused.status == .tooManyRequests)
            #expect(refused.headers[.retryAfter] != nil)
        } catch {
            try? await redis.stop()
            throw error
        }
        try await redis.stop()
    }
}

/// A clock in seconds that moves only when the test says so.
final class ManualSeconds: Sendable {
    private let seconds = Mutex<Double>(1_700_000_000)
    func advance(_ by: Double) { self.seconds.withLock { $0 += by } }
    var now: @Sendable () -> Double { { self.seconds.withLock { $0 } } }
}
