import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// `/api/v1/users/me/sessions`: the caller's sessions (OWASP ASVS 3.3.4), in every session mode, and the
/// per-user bound on sessions.
@Suite(.storeBackend) struct UserSessionsTests {
    static let modes: [AuthType] = [.sessionAuth, .sessionExpAuth, .sessionDBAuth]

    static func sessionList(_ response: TestResponse) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [[String: Any]], "\(response.text)")
    }

    @Test(arguments: modes)
    func listShowsEverySessionWithAHandleNeverTheCookie(mode: AuthType) async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: mode)
            configuration.sessionDuration = 3600
            try await Self.listShowsEverySession(configuration)
        }
    }

    /// `session count` (the operators' figure) counts every live session once: in a Redis Cluster the session keys
    /// are spread over every primary, and each must be scanned.
    @Test func theSessionCountSeesEverySession() async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionDBAuth)
            configuration.sessionDuration = 3600
            try await TestApp.run(configuration) { app, _ in
                let bob = try await app.seedUser()
                let sessions = try #require(app.stores.sessions)
                for _ in 0..<30 {
                    _ = try await sessions.createSession(userID: bob.id, metadata: SessionMetadata(), replacing: nil)
                }
                #expect(try await sessions.count() == 30)
            }
        }
    }

    static func listShowsEverySession(_ configuration: AppConfiguration) async throws {
        try await TestApp.run(configuration) { app, client in
            try await app.seedUser()
            let phone = try await client.login(headers: [.userAgent: "phone/1.0"])
            let laptop = try await client.login(headers: [.userAgent: "laptop/2.0"])
            let response = try await client.get("/api/v1/users/me/sessions", headers: .cookie(laptop))
            #expect(response.status == .ok)
            #expect(response.headers[.cacheControl] == "no-store")
            let sessions = try Self.sessionList(response)
            #expect(sessions.count == 2)
            for session in sessions {
                #expect(session.keys.sorted() == ["created_at", "current", "expires_at", "handle", "ip", "user_agent"])
                #expect(SessionID.isHandle(session["handle"] as? String ?? ""))
                #expect(isTimestamp(session["created_at"] as? String ?? ""))
            }
            // Newest first (by the second they were made in); the caller's own is marked.
            let created = sessions.compactMap { $0["created_at"] as? String }
            #expect(created == created.sorted(by: >))
            let laptopHandle = SessionID.handle(of: String(laptop.split(separator: "=")[1]))
            let byHandle = Dictionary(uniqueKeysWithValues: sessions.map { ($0["handle"] as? String ?? "", $0) })
            #expect(byHandle[laptopHandle]?["current"] as? Bool == true)
            #expect(byHandle[laptopHandle]?["user_agent"] as? String == "laptop/2.0")
            #expect(byHandle[SessionID.handle(of: String(phone.split(separator: "=")[1]))]?["current"] as? Bool == false)
            #expect(Set(sessions.compactMap { $0["user_agent"] as? String }) == ["laptop/2.0", "phone/1.0"])
            // No cookie value anywhere in the answer.
            for cookie in [phone, laptop] {
                #expect(!response.text.contains(String(cookie.split(separator: "=")[1])))
            }
        }
    }

    @Test(arguments: modes)
    func endOneSession(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let eve = try await app.seedUser(email: "eve@example.com", password: "evepw")
            let phone = try await client.login()
            let laptop = try await client.login()
            let eves = try await client.login(email: "eve@example.com", password: "evepw")
            let phoneHandle = SessionID.handle(of: String(phone.split(separator: "=")[1]))
            let evesHandle = SessionID.handle(of: String(eves.split(separator: "=")[1]))
            // Someone else's handle, or none at all, is not found.
            expectError(
                try await client.execute(uri: "/api/v1/users/me/sessions/\(evesHandle)", method: .delete, headers: .cookie(laptop)),
                .notFound,
                "Not found"
            )
            expectError(
                try await client.execute(uri: "/api/v1/users/me/sessions/nope", method: .delete, headers: .cookie(laptop)),
                .notFound,
                "Not found"
            )
            #expect(try await client.me(headers: .cookie(eves)).status == .ok)
            // Ending the phone's session from the laptop.
            let ended = try await client.execute(uri: "/api/v1/users/me/sessions/\(phoneHandle)", method: .delete, headers: .cookie(laptop))
            #expect(ended.status == .ok)
            #expect(ended.text == "{}")
            expectError(try await client.me(headers: .cookie(phone)), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .cookie(laptop)).status == .ok)
            #expect(try await app.stores.sessions?.sessions(userID: eve.id).count == 1)
            // Naming its own handle is a logout: the cookie is cleared too.
            let laptopHandle = SessionID.handle(of: String(laptop.split(separator: "=")[1]))
            let own = try await client.execute(uri: "/api/v1/users/me/sessions/\(laptopHandle)", method: .delete, headers: .cookie(laptop))
            #expect(own.status == .ok)
            #expect(own.setCookie?.value == "")
            expectError(try await client.me(headers: .cookie(laptop)), .forbidden, "Forbidden")
        }
    }

    @Test(arguments: modes)
    func endEveryOtherSession(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            try await app.seedUser(email: "eve@example.com", password: "evepw")
            let others = [try await client.login(), try await client.login(), try await client.login()]
            let current = try await client.login()
            let eves = try await client.login(email: "eve@example.com", password: "evepw")
            let response = try await client.execute(uri: "/api/v1/users/me/sessions", method: .delete, headers: .cookie(current))
            #expect(response.status == .ok)
            #expect(response.text == #"{"ended":3}"#)
            for cookie in others { expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden") }
            #expect(try await client.me(headers: .cookie(current)).status == .ok)
            #expect(try await client.me(headers: .cookie(eves)).status == .ok)
            #expect(try Self.sessionList(try await client.get("/api/v1/users/me/sessions", headers: .cookie(current))).count == 1)
        }
    }

    @Test func withoutAuthenticationTheRoutesAre401() async throws {
        try await TestApp.run(.sessionAuth) { _, client in
            expectError(try await client.get("/api/v1/users/me/sessions"), .unauthorized, "Unauthorized")
            expectError(try await client.execute(uri: "/api/v1/users/me/sessions", method: .delete), .unauthorized, "Unauthorized")
        }
    }

    @Test(arguments: modes)
    func sessionsPerUserAreBounded(mode: AuthType) async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: mode)
            configuration.sessionMaximumPerUser = 3
            configuration.sessionDuration = 3600
            try await TestApp.run(configuration) { app, client in
                let bob = try await app.seedUser()
                var cookies: [String] = []
                for _ in 0..<5 { cookies.append(try await client.login()) }
                var live: [Bool] = []
                for cookie in cookies { live.append(try await client.me(headers: .cookie(cookie)).status == .ok) }
                // Three live, the newest always among them; the file store orders sessions of one second by
                // chance (its timestamps have seconds), the others by when they were made: the two oldest ended.
                #expect(live.filter { $0 }.count == 3, "\(live)")
                #expect(live.last == true)
                if app.configuration.authType != .sessionDBAuth {
                    #expect(live == [false, false, true, true, true])
                }
                #expect(try await app.stores.sessions?.sessions(userID: bob.id).count == 3)
            }
        }
    }

    /// Session fixation: a session ID the client chose (or was given) before login is never the one after it.
    @Test(arguments: modes)
    func aCookieSetBeforeLoginNeverSurvivesLogin(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let planted = "_my_session_id=3c84c31b-67cf-49c3-b32c-e9de28f7a8eb"
            let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!", headers: .cookie(planted))
            let issued = try #require(login.setCookie)
            #expect(issued.pair != planted)
            expectError(try await client.me(headers: .cookie(planted)), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .cookie(issued.pair)).status == .ok)
        }
    }

    @Test func cookiesCarryMaxAgeWhenSessionsExpire() async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionExpAuth)
            configuration.sessionDuration = 3600
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
                #expect(try #require(login.setCookie).attributes.contains("Max-Age=3600"))
                #expect(login.headers[.cacheControl] == "no-store")
                #expect(try await client.me(headers: .cookie(try #require(login.setCookie).pair)).headers[.cacheControl] == "no-store")
                #expect(try await client.status().headers[.cacheControl] == nil)
            }
        }
    }
}
