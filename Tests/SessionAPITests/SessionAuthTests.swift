import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// Login, logout and session cookies in every session mode (`session_auth` unless a test says otherwise).
@Suite(.storeBackend) struct SessionAuthTests {
    static let sessionModes: [AuthType] = [.sessionAuth, .sessionExpAuth, .sessionDBAuth]

    /// Checks a login's `Set-Cookie`: `<name>=<UUIDv4>; Path=/; HttpOnly; SameSite=Lax`, attributes in any order.
    func expectSessionCookie(_ response: TestResponse, name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let cookie = try #require(response.setCookie, "\(response.headers[values: .setCookie])", sourceLocation: sourceLocation)
        #expect(cookie.name == name, sourceLocation: sourceLocation)
        #expect(SessionID.isWellFormed(cookie.value), "\(cookie.value)", sourceLocation: sourceLocation)
        #expect(cookie.value == cookie.value.lowercased(), sourceLocation: sourceLocation)
        #expect(UUID(uuidString: cookie.value) != nil, sourceLocation: sourceLocation)
        // UUID version 4, RFC 4122 variant.
        let characters = Array(cookie.value)
        #expect(characters.count == 36 && characters[14] == "4", sourceLocation: sourceLocation)
        #expect(characters.count == 36 && "89ab".contains(characters[19]), sourceLocation: sourceLocation)
        #expect(cookie.attributes == ["Path=/", "HttpOnly", "SameSite=Lax"], sourceLocation: sourceLocation)
    }

    // MARK: Login

    @Test(arguments: sessionModes)
    func loginLogoutFlow(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            let seeded = try await app.seedUser(firstName: "Bob")
            let response = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
            #expect(response.status == .ok)
            let user = try expectUserJSON(response)
            #expect(user == UserResponse(seeded))
            try expectSessionCookie(response, name: "_my_session_id")
            let cookie = try #require(response.setCookie).pair

            let me = try await client.me(headers: .cookie(cookie))
            #expect(me.status == .ok)
            #expect(try expectUserJSON(me) == user)
            #expect(try await client.listUsers(headers: .cookie(cookie)).status == .ok)

            let logout = try await client.logout(headers: .cookie(cookie))
            #expect(logout.status == .ok)
            #expect(logout.text == "{}")
            // The browser is told to drop the cookie.
            let cleared = try #require(logout.setCookie)
            #expect(cleared.name == "_my_session_id")
            #expect(cleared.value.isEmpty)
            #expect(cleared.attributes.contains("Max-Age=0"))
            expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
            expectError(try await client.logout(headers: .cookie(cookie)), .forbidden, "Forbidden")
        }
    }

    @Test func loginWithJSONBody() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let response = try await client.loginJSON(email: "bob@example.com", password: "H0lbertonSchool98!")
            #expect(response.status == .ok)
            try expectUserJSON(response)
            try expectSessionCookie(response, name: "_my_session_id")
            let cookie = try #require(response.setCookie).pair
            #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
        }
    }

    @Test func loginEmailIsCaseInsensitive() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser(email: "bob@example.com")
            let cookie = try await client.login(email: "BOB@Example.com")
            #expect(try await client.me(headers: .cookie(cookie)).user().email == "bob@example.com")
        }
    }

    @Test func passwordWithSpecialCharactersInAForm() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            let password = "p&ss=w:rd +%é"
            try await app.seedUser(password: password)
            let cookie = try await client.login(password: password)
            #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
        }
    }

    @Test func bcryptsSeventyTwoByteLimitIsNoPrefixMatch() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            // The longest password accepted must not also accept itself plus a suffix (bcrypt, once, read 72 bytes).
            let password = String(repeating: "p", count: PasswordHasher.maximumPasswordBytes)
            try await app.seedUser(password: password)
            _ = try await client.login(password: password)
            let longer = try await client.loginForm(email: "bob@example.com", password: password + "suffix")
            expectError(longer, .unauthorized, "wrong password")
            #expect(longer.headers[values: .setCookie].isEmpty)
        }
    }

    struct LoginError: Sendable, CustomTestStringConvertible {
        let email: String?
        let password: String?
        let status: HTTPResponse.Status
        let message: String
        var testDescription: String { "\(self.email ?? "nil")/\(self.password ?? "nil") -> \(self.status.code) \(self.message)" }
    }

    static let loginErrors: [LoginError] = [
        LoginError(email: nil, password: "H0lbertonSchool98!", status: .badRequest, message: "email missing"),
        LoginError(email: "", password: "H0lbertonSchool98!", status: .badRequest, message: "email missing"),
        LoginError(email: nil, password: nil, status: .badRequest, message: "email missing"),
        LoginError(email: "bob@example.com", password: nil, status: .badRequest, message: "password missing"),
        LoginError(email: "bob@example.com", password: "", status: .badRequest, message: "password missing"),
        LoginError(email: "nobody@example.com", password: "H0lbertonSchool98!", status: .notFound, message: "no user found for this email"),
        LoginError(email: "bob@example.com", password: "wrong", status: .unauthorized, message: "wrong password"),
        LoginError(email: "bob@example.com", password: "h0lbertonschool98!", status: .unauthorized, message: "wrong password"),
    ]

    @Test(arguments: loginErrors, [true, false])
    func loginFailures(_ error: LoginError, json: Bool) async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let response =
                json
                ? try await client.loginJSON(email: error.email, password: error.password)
                : try await client.loginForm(email: error.email, password: error.password)
            expectError(response, error.status, error.message)
            #expect(response.headers[values: .setCookie].isEmpty)
        }
    }

    @Test func loginWithMalformedBodyIs400() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let json = try await client.loginRaw(body: Array("[1,2]".utf8), headers: [.contentType: "application/json"])
            expectError(json, .badRequest, "Wrong format")
            let notUTF8 = try await client.loginRaw(body: [0x65, 0x6D, 0x61, 0x69, 0x6C, 0x3D, 0xFF, 0xFE], headers: [:])
            try expectSomeError(notUTF8, .badRequest)
        }
    }

    @Test func loginBodyOverOneMebibyteIs413() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let padding = String(repeating: "a", count: 1 << 20)
            let form = try await client.loginRaw(
                body: Array("email=bob%40example.com&password=x&pad=\(padding)".utf8),
                headers: [.contentType: "application/x-www-form-urlencoded"]
            )
            try expectSomeError(form, .contentTooLarge)
            let json = try await client.loginRaw(
                body: Array(#"{"email":"bob@example.com","password":"\#(padding)"}"#.utf8),
                headers: [.contentType: "application/json"]
            )
            try expectSomeError(json, .contentTooLarge)
        }
    }

    @Test func customSessionName() async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionAuth)
            configuration.sessionName = "sid_custom"
            try await TestApp.run(configuration) { app, client in
                try await app.seedUser()
                let response = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
                #expect(response.status == .ok)
                try expectSessionCookie(response, name: "sid_custom")
                let cookie = try #require(response.setCookie)
                #expect(try await client.me(headers: .cookie(cookie.pair)).status == .ok)
                // The default name is just another cookie now: no credentials at all.
                expectError(try await client.me(headers: .cookie("_my_session_id=\(cookie.value)")), .unauthorized, "Unauthorized")
            }
        }
    }

    @Test func secondLoginWithTheOldCookieRevokesTheOldSession() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let first = try await client.login()
            let second = try await client.login(headers: .cookie(first))
            #expect(first != second)
            expectError(try await client.me(headers: .cookie(first)), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .cookie(second)).status == .ok)
        }
    }

    @Test(arguments: sessionModes)
    func concurrentLoginsAllGetValidSessions(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let cookies = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<16 {
                    group.addTask { try await client.login() }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(cookies).count == 16)
            for cookie in cookies {
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
            }
        }
    }

    @Test func loginsFromTwoClientsBothWork() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let laptop = try await client.login()
            let phone = try await client.login()
            #expect(laptop != phone)
            #expect(try await client.me(headers: .cookie(laptop)).status == .ok)
            #expect(try await client.me(headers: .cookie(phone)).status == .ok)
            #expect(try await client.logout(headers: .cookie(laptop)).status == .ok)
            #expect(try await client.me(headers: .cookie(phone)).status == .ok)
        }
    }

    // MARK: Logout

    @Test func logoutWithoutCookieIs401() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            expectError(try await client.logout(), .unauthorized, "Unauthorized")
        }
    }

    @Test func logoutWithUnknownCookieIs403() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let cookie = try await client.login()
            expectError(try await client.logout(headers: .cookie("_my_session_id=\(SessionID.generate())")), .forbidden, "Forbidden")
            expectError(try await client.logout(headers: .cookie("_my_session_id=garbage")), .forbidden, "Forbidden")
            // The real session is untouched.
            #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
        }
    }

    // MARK: Credentials

    @Test(arguments: sessionModes)
    func credentialsRule(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            for path in ["/api/v1/users", "/api/v1/users/me", "/api/v1/stats"] {
                expectError(try await client.get(path), .unauthorized, "Unauthorized")
                // An Authorization header is a credential, but not one that session auth accepts.
                let basic = try await client.get(path, headers: .basic("bob@example.com", "H0lbertonSchool98!"))
                expectError(basic, .forbidden, "Forbidden")
            }
            expectError(try await client.createUser(email: "x@example.com", password: "pw"), .unauthorized, "Unauthorized")
        }
    }

    /// Cookie values that cannot be a session ID: refused with 403, before any store is asked, never 500.
    static let malformedCookieValues: [String] = [
        "garbage",
        String(repeating: "a", count: 8192),
        String(repeating: "0", count: 36),
        "zzzzzzzz-zzzz-4zzz-8zzz-zzzzzzzzzzzz",
        SessionID.generate() + "0",
        String(SessionID.generate().dropLast()),
        "\"\(SessionID.generate())\"",
        "%00%FF",
    ]

    @Test(arguments: malformedCookieValues)
    func malformedCookieIs403(value: String) async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            expectError(try await client.me(headers: .cookie("_my_session_id=\(value)")), .forbidden, "Forbidden")
            expectError(try await client.listUsers(headers: .cookie("_my_session_id=\(value)")), .forbidden, "Forbidden")
        }
    }

    @Test func emptyCookieValueIsRefused() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            // Hummingbird reads `name=` as no cookie at all (401); the original answers 403. Either way: refused, as JSON.
            let response = try await client.me(headers: .cookie("_my_session_id="))
            #expect([.unauthorized, .forbidden].contains(response.status))
            try expectSomeError(response, response.status)
        }
    }

    @Test func hugeCookieHeaderIsNot500() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let cookie = try await client.login()
            let junk = (0..<200).map { "c\($0)=\(String(repeating: "x", count: 40))" }.joined(separator: "; ")
            #expect(try await client.me(headers: .cookie(junk + "; " + cookie)).status == .ok)
            let response = try await client.me(headers: .cookie(junk))
            expectError(response, .unauthorized, "Unauthorized")
        }
    }

    @Test func unknownWellFormedSessionIs403() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            expectError(try await client.me(headers: .cookie("_my_session_id=\(SessionID.generate())")), .forbidden, "Forbidden")
        }
    }

    @Test func createUserWhenLoggedIn() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let cookie = try await client.login()
            let response = try await client.createUser(email: "new@example.com", password: "pw", headers: .cookie(cookie))
            #expect(response.status == .created)
            try expectUserJSON(response)
            #expect(try await client.stats(headers: .cookie(cookie)).text == #"{"users":2}"#)
        }
    }

    // MARK: Deleting users

    @Test(arguments: sessionModes)
    func deletingAUserEndsItsSessions(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser(email: "alice@example.com", password: "alice-pw")
            let bob = try await app.seedUser(email: "bob@example.com", password: "bob-pw")
            let alice = try await client.login(email: "alice@example.com", password: "alice-pw")
            let bobCookie = try await client.login(email: "bob@example.com", password: "bob-pw")
            let bobSession = try #require(SetCookie(bobCookie + "; Path=/")).value
            let sessions = try #require(app.stores.sessions)
            #expect(try await sessions.userID(sessionID: bobSession) == bob.id)

            let response = try await client.deleteUser(id: bob.id, headers: .cookie(alice))
            #expect(response.status == .ok)
            #expect(response.text == "{}")
            #expect(try await sessions.userID(sessionID: bobSession) == nil)
            expectError(try await client.me(headers: .cookie(bobCookie)), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .cookie(alice)).status == .ok)
        }
    }

    @Test func deletingYourselfEndsYourSession() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            let bob = try await app.seedUser()
            let cookie = try await client.login()
            #expect(try await client.deleteUser(id: bob.id, headers: .cookie(cookie)).status == .ok)
            expectError(try await client.me(headers: .cookie(cookie)), .forbidden, "Forbidden")
            let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
            expectError(login, .notFound, "no user found for this email")
        }
    }
}
