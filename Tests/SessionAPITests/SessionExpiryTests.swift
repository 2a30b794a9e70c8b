import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// The expiry rule, the session stores under an injected clock, and expiry and persistence through the API.
@Suite(.storeBackend) struct SessionExpiryTests {
    // MARK: SessionExpiry

    @Test func expiresOnceOlderThanTheDuration() {
        let clock = ManualClock(1000)
        let expiry = SessionExpiry(duration: 60, now: clock.now)
        #expect(!expiry.isExpired(createdAt: 1000))
        clock.advance(by: 60)
        // As the original: invalid once created_at + duration < now.
        #expect(!expiry.isExpired(createdAt: 1000))
        clock.advance(by: 1)
        #expect(expiry.isExpired(createdAt: 1000))
        #expect(!expiry.isExpired(createdAt: 1001))
    }

    @Test(arguments: [0, -1, -86_400])
    func durationZeroOrLessNeverExpires(duration: Int) {
        let clock = ManualClock(1000)
        let expiry = SessionExpiry(duration: duration, now: clock.now)
        clock.advance(by: 100 * 365 * 86_400)
        #expect(!expiry.isExpired(createdAt: 1000))
        #expect(!expiry.isExpired(createdAt: 0))
    }

    @Test func defaultClockIsTheWallClock() {
        let expiry = SessionExpiry(duration: 60)
        let now = Int(Date().timeIntervalSince1970)
        #expect(abs(expiry.now() - now) <= 2)
        #expect(!expiry.isExpired(createdAt: now))
        #expect(expiry.isExpired(createdAt: now - 120))
    }

    // MARK: Session stores (one contract, every store)

    enum StoreKind: String, CaseIterable, Sendable {
        case memory
        case jsonFile
    }

    /// Runs `body` with a fresh store of `kind` whose clock the test controls.
    func withStore(
        _ kind: StoreKind,
        duration: Int,
        clock: ManualClock,
        _ body: (any SessionStore, String) async throws -> Void
    ) async throws {
        try await withDataDirectory { directory in
            let expiry = SessionExpiry(duration: duration, now: clock.now)
            let store: any SessionStore =
                switch kind {
                case .memory: MemorySessionStore(expiry: expiry)
                case .jsonFile: try await JSONFileSessionStore(directory: directory, expiry: expiry)
                }
            try await body(store, directory)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func createLookUpDelete(kind: StoreKind) async throws {
        try await self.withStore(kind, duration: 0, clock: ManualClock()) { store, _ in
            let first = try await store.startSession(userID: "user-1", metadata: SessionMetadata(ip: "127.0.0.1", userAgent: "tests"))
            let second = try await store.startSession(userID: "user-1")
            let other = try await store.startSession(userID: "user-2")
            #expect(SessionID.isWellFormed(first))
            #expect(Set([first, second, other]).count == 3)
            #expect(try await store.userID(sessionID: first) == "user-1")
            #expect(try await store.userID(sessionID: other) == "user-2")
            #expect(try await store.userID(sessionID: SessionID.generate()) == nil)

            #expect(try await store.deleteSession(sessionID: first))
            #expect(try await !store.deleteSession(sessionID: first))
            #expect(try await store.userID(sessionID: first) == nil)
            #expect(try await store.userID(sessionID: second) == "user-1")

            try await store.deleteSessions(userID: "user-1")
            #expect(try await store.userID(sessionID: second) == nil)
            #expect(try await store.userID(sessionID: other) == "user-2")
            try await store.checkReady()
        }
    }

    @Test(arguments: StoreKind.allCases)
    func sessionsExpireByTheInjectedClock(kind: StoreKind) async throws {
        let clock = ManualClock()
        try await self.withStore(kind, duration: 60, clock: clock) { store, _ in
            let session = try await store.startSession(userID: "user-1")
            clock.advance(by: 30)
            let younger = try await store.startSession(userID: "user-2")
            clock.advance(by: 30)
            #expect(try await store.userID(sessionID: session) == "user-1")
            clock.advance(by: 1)
            #expect(try await store.userID(sessionID: session) == nil)
            #expect(try await store.userID(sessionID: younger) == "user-2")
            clock.advance(by: 30)
            #expect(try await store.userID(sessionID: younger) == nil)
            // Time going on does not bring them back.
            clock.advance(by: 1000)
            #expect(try await store.userID(sessionID: session) == nil)
        }
    }

    @Test(arguments: StoreKind.allCases, [0, -5])
    func durationZeroOrLessSessionsNeverExpire(kind: StoreKind, duration: Int) async throws {
        let clock = ManualClock()
        try await self.withStore(kind, duration: duration, clock: clock) { store, _ in
            let session = try await store.startSession(userID: "user-1")
            clock.advance(by: 10 * 365 * 86_400)
            #expect(try await store.userID(sessionID: session) == "user-1")
            // A new session does not prune the old one either.
            _ = try await store.startSession(userID: "user-2")
            #expect(try await store.userID(sessionID: session) == "user-1")
        }
    }

    @Test func jsonFileSessionsAreInTheOriginalsFormat() async throws {
        let clock = ManualClock(1_700_000_000)
        try await self.withStore(.jsonFile, duration: 0, clock: clock) { store, directory in
            let session = try await store.startSession(userID: "user-1")
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/.db_UserSession.json"))
            let records = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
            #expect(records.count == 1)
            let (key, record) = try #require(records.first)
            #expect(record["id"] as? String == key)
            #expect(record["user_id"] as? String == "user-1")
            #expect(record["session_id"] as? String == session)
            #expect(record["created_at"] as? String == Timestamp.string(epochSeconds: 1_700_000_000))
            #expect(record["created_at"] as? String == "2023-11-14T22:13:20")
            #expect(isTimestamp(record["updated_at"] as? String ?? ""))
        }
    }

    @Test func jsonFileSessionsSurviveANewStore() async throws {
        let clock = ManualClock()
        try await self.withStore(.jsonFile, duration: 60, clock: clock) { store, directory in
            let session = try await store.startSession(userID: "user-1")
            let reopened = try await JSONFileSessionStore(directory: directory, expiry: SessionExpiry(duration: 60, now: clock.now))
            #expect(try await reopened.userID(sessionID: session) == "user-1")
            clock.advance(by: 61)
            #expect(try await reopened.userID(sessionID: session) == nil)
            // Deleted by one instance, gone for the other.
            clock.advance(by: -61)
            #expect(try await reopened.deleteSession(sessionID: session))
            #expect(try await store.userID(sessionID: session) == nil)
        }
    }

    // MARK: Through the API

    @Test func sessionExpAuthExpiresAfterSessionDuration() async throws {
        try await withDataDirectory { directory in
            let configuration = try AppConfiguration(environment: [
                "AUTH_TYPE": "session_exp_auth",
                "SESSION_DURATION": "3",
                "DATA_DIR": directory,
                "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
                "LOG_LEVEL": "warning",
            ])
            // 3 s, not 1: a login and the next request may be a second apart on a loaded machine (the cluster pass).
            #expect(configuration.sessionDuration == 3)
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let start = ContinuousClock.now
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                let expired = try await eventually(timeout: .seconds(15)) {
                    try await client.me(headers: .cookie(cookie)).status == .forbidden
                }
                #expect(expired, "the session was still valid 15 s after login with SESSION_DURATION=3")
                // Invalid once created_at + 3 < now (whole seconds): valid for more than 3 s after the login.
                #expect(ContinuousClock.now - start >= .seconds(3))
                expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
                // A new login works again.
                let fresh = try await client.login()
                #expect(try await client.me(headers: .cookie(fresh)).status == .ok)
            }
        }
    }

    @Test func sessionDBAuthSurvivesARestart() async throws {
        try await withDataDirectory { directory in
            let configuration = AppConfiguration.test(directory: directory, authType: .sessionDBAuth)
            let cookie = try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                return cookie
            }
            if configuration.authType == .sessionDBAuth {
                let file = try Data(contentsOf: URL(fileURLWithPath: directory + "/.db_UserSession.json"))
                let sessionID = try #require(SetCookie(cookie)).value
                #expect(String(decoding: file, as: UTF8.self).contains(sessionID))
            }

            // A new app on the same data directory: the session is still valid.
            try await TestApp.run(configuration) { _, client in
                let me = try await client.me(headers: .cookie(cookie))
                #expect(me.status == .ok)
                #expect(try me.user().email == "bob@example.com")
                #expect(try await client.logout(headers: .cookie(cookie)).status == .ok)
            }
            // Logged out in the second app: gone for a third.
            try await TestApp.run(configuration) { _, client in
                expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
            }
        }
    }

    @Test func sessionDBAuthExpiry() async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionDBAuth)
            configuration.sessionDuration = 60
            let clock = ManualClock(Timestamp.now())
            let stores = AppStores(
                users: try await JSONFileUserStore(directory: directory),
                sessions: try await JSONFileSessionStore(directory: directory, expiry: SessionExpiry(duration: 60, now: clock.now))
            )
            try await TestApp.run(configuration, stores: stores) { app, client in
                try await app.seedUser()
                let cookie = try await client.login()
                clock.advance(by: 60)
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                clock.advance(by: 1)
                expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
            }
        }
    }

    @Test func sessionDBAuthExpiryAppliesAfterARestart() async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionDBAuth)
            configuration.sessionDuration = 60
            let cookie = try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                return try await client.login()
            }
            // The restarted app reads the session's created_at from the file and applies SESSION_DURATION to it.
            let later = ManualClock(Timestamp.now() + 120)
            let stores = AppStores(
                users: try await JSONFileUserStore(directory: directory),
                sessions: try await JSONFileSessionStore(directory: directory, expiry: SessionExpiry(duration: 60, now: later.now))
            )
            try await TestApp.run(configuration, stores: stores) { _, client in
                expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
            }
        }
    }
}
