import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// A session store that works, except that every session has vanished by the time it is deleted.
struct VanishingSessionStore: SessionStore {
    let inner = MemorySessionStore(expiry: SessionExpiry(duration: 0))

    func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String {
        try await self.inner.createSession(userID: userID, metadata: metadata, replacing: previousSessionID)
    }

    func userID(sessionID: String) async throws -> String? {
        try await self.inner.userID(sessionID: sessionID)
    }

    func deleteSession(sessionID: String) async throws -> Bool {
        false
    }

    func sessions(userID: String) async throws -> [SessionInfo] {
        try await self.inner.sessions(userID: userID)
    }

    func deleteSession(userID: String, handle: String) async throws -> Bool {
        false
    }

    func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int {
        0
    }

    func checkReady() async throws {}
}

/// A session store whose backing service is down.
struct UnavailableSessionStore: SessionStore {
    static let error = StoreError(.unavailable, "connection refused (internal detail)")

    func createSession(userID: String, metadata: SessionMetadata, replacing previousSessionID: String?) async throws -> String { throw Self.error }
    func userID(sessionID: String) async throws -> String? { throw Self.error }
    func deleteSession(sessionID: String) async throws -> Bool { throw Self.error }
    func sessions(userID: String) async throws -> [SessionInfo] { throw Self.error }
    func deleteSession(userID: String, handle: String) async throws -> Bool { throw Self.error }
    func deleteSessions(userID: String, keeping sessionID: String?) async throws -> Int { throw Self.error }
    func checkReady() async throws { throw Self.error }
}

/// What clients see when a store misbehaves: the rare 404 on logout, 503 when a store is down.
@Suite(.storeBackend) struct StoreFailureTests {
    /// Runs `body` against a session-auth app whose session store is `sessions`.
    func withSessions(
        _ sessions: some SessionStore,
        _ body: @Sendable (TestApp, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await withDataDirectory { directory in
            let configuration = AppConfiguration.test(directory: directory, authType: .sessionAuth)
            let stores = AppStores(users: try await JSONFileUserStore(directory: directory), sessions: sessions)
            try await TestApp.run(configuration, stores: stores, body)
        }
    }

    @Test func logoutOfASessionThatVanishedIs404() async throws {
        try await self.withSessions(VanishingSessionStore()) { app, client in
            try await app.seedUser()
            let cookie = try await client.login()
            #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
            expectError(try await client.logout(headers: .cookie(cookie)), .notFound, "Not found")
        }
    }

    @Test func sessionStoreDownIs503() async throws {
        try await self.withSessions(UnavailableSessionStore()) { app, client in
            try await app.seedUser()
            let me = try await client.me(headers: .cookie("_my_session_id=\(SessionID.generate())"))
            expectError(me, .serviceUnavailable, "Service Unavailable")
            #expect(me.headers[.retryAfter] == "1")
            #expect(!me.text.contains("internal detail"))
            let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
            expectError(login, .serviceUnavailable, "Service Unavailable")
            #expect(login.headers[values: .setCookie].isEmpty)
            // A malformed cookie is refused before the store is asked.
            expectError(try await client.me(headers: .cookie("_my_session_id=garbage")), .forbidden, "Forbidden")
            // No credentials: 401 without asking the store either.
            expectError(try await client.me(), .unauthorized, "Unauthorized")
        }
    }

    @Test func healthProbes() async throws {
        try await self.withSessions(UnavailableSessionStore()) { _, client in
            let health = try await client.get("/healthz")
            #expect(health.status == .ok)
            #expect(health.text == #"{"status":"OK"}"#)
            let ready = try await client.get("/readyz")
            expectError(ready, .serviceUnavailable, "Service Unavailable")
        }
        try await TestApp.run(.sessionDBAuth) { _, client in
            let health = try await client.get("/healthz")
            let ready = try await client.get("/readyz")
            #expect(health.status == .ok)
            #expect(ready.status == .ok)
        }
    }
}

/// A login flood cannot queue bcrypt work without bound.
@Suite struct PasswordHasherLimitTests {
    @Test func hashesBeyondTheQueueLimitFailFastWithUnavailable() async throws {
        let hasher = PasswordHasher(parameters: .init(memoryKiB: 4096, iterations: 3, parallelism: 1), maximumQueued: 2)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (try? await hasher.hash("pw")) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.contains(true))
        #expect(outcomes.contains(false))
        // Once the flood is over, there is room again.
        #expect(try await hasher.hash("pw").hasPrefix("$argon2id$"))
        await #expect(throws: PasswordHasher.Overloaded.self) {
            let busy = PasswordHasher(parameters: .testing, maximumQueued: 0)
            _ = try await busy.hash("pw")
        }
    }
}
