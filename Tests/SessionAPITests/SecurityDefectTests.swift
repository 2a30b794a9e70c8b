import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SessionAPI
import Testing

/// Issue 13's defects, one test (or more) each; every one of them failed on the code before the fix.
@Suite(.storeBackend) struct SecurityDefectTests {
    // MARK: 1. Passwords with NUL

    @Test(arguments: ["\u{0}LongSecret", "abc\u{0}def"])
    func aPasswordWithNULIsRefusedAtCreate(password: String) async throws {
        try await TestApp.run(nil) { app, client in
            let response = try await client.createUser(email: "nul@example.com", password: password)
            expectError(response, .badRequest, "password must not contain NUL (U+0000)")
            #expect(try await app.stores.users.count() == 0)
            await #expect(throws: UserAdministration.InputError.self) { try await app.seedUser(password: password) }
        }
    }

    /// bcrypt's C code stops at a NUL: `abc\0def` would log in as `abc`, `\0...` as the empty password.
    @Test(arguments: [AuthType.sessionAuth, .sessionDBAuth])
    func aPasswordWithNULIsRefusedAtLogin(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser(password: "abc")
            for password in ["abc\u{0}def", "abc\u{0}", "\u{0}"] {
                let form = try await client.loginForm(email: "bob@example.com", password: password)
                expectError(form, .badRequest, "password must not contain NUL (U+0000)")
                #expect(form.headers[values: .setCookie].isEmpty)
                let json = try await client.loginJSON(email: "bob@example.com", password: password)
                expectError(json, .badRequest, "password must not contain NUL (U+0000)")
            }
            #expect(try await client.loginForm(email: "bob@example.com", password: "abc").status == .ok)
        }
    }

    @Test func aBasicPasswordWithNULIsRefused() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser(password: "abc")
            expectError(try await client.me(headers: .basic("bob@example.com", "abc\u{0}def")), .forbidden, "Forbidden")
            #expect(try await client.me(headers: .basic("bob@example.com", "abc")).status == .ok)
        }
    }

    @Test func theHasherRefusesNULItself() async throws {
        let hasher = PasswordHasher(parameters: .testing)
        await #expect(throws: PasswordHasher.Unusable.self) { _ = try await hasher.hash("abc\u{0}def") }
        let hash = try await hasher.hash("abc")
        #expect(try await hasher.verify("abc", against: hash))
        #expect(try await !hasher.verify("abc\u{0}def", against: hash))
    }

    // MARK: 2. Open by default

    @Test func withoutAuthTypeTheServerListensOnLoopbackOnly() throws {
        var configuration = AppConfiguration()
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.listenHost == "127.0.0.1")
        #expect(configuration.noAuthenticationWarning?.contains("listening on 127.0.0.1 only") == true)
        configuration.host = "::1"
        #expect(configuration.listenHost == "::1")
        configuration.host = "0.0.0.0"
        configuration.authType = .noAuthentication
        #expect(configuration.listenHost == "0.0.0.0")
        #expect(configuration.noAuthenticationWarning?.contains("AUTH_TYPE=none") == true)
        configuration.authType = .sessionAuth
        #expect(configuration.listenHost == "0.0.0.0")
        #expect(configuration.noAuthenticationWarning == nil)
        #expect(try AppConfiguration(environment: ["AUTH_TYPE": "none", "API_HOST": "0.0.0.0"]).listenHost == "0.0.0.0")
    }

    /// With `AUTH_TYPE` unset, a page of another origin may read but not write: the preflight allows no
    /// `PUT`/`DELETE`/`POST` and no JSON `Content-Type`.
    @Test func withoutAuthTypeOtherOriginsCannotWrite() async throws {
        try await TestApp.run(nil) { _, client in
            for method in ["DELETE", "PUT", "POST"] {
                let response = try await client.execute(
                    uri: "/api/v1/users",
                    method: .options,
                    headers: [.origin: "https://evil.example", .accessControlRequestMethod: method, .accessControlRequestHeaders: "content-type"]
                )
                let methods = (response.headers[.accessControlAllowMethods] ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                #expect(!methods.contains(method), "\(methods)")
                #expect(!(response.headers[.accessControlAllowHeaders] ?? "").lowercased().contains("content-type"))
            }
        }
    }

    // MARK: 3. Configuration that fails open

    @Test(arguments: ["1h", "1.5", "1e3", "ten", "99999999999999999999", "86400s"])
    func aSessionDurationThatDoesNotParseIsAStartUpError(value: String) throws {
        for mode in ["session_exp_auth", "session_db_auth", "session_redis_auth"] {
            let error = try #require(throws: ConfigurationError.self) {
                try AppConfiguration(environment: ["SESSION_DURATION": value, "AUTH_TYPE": mode, "REDIS_URL": "redis://127.0.0.1"])
            }
            #expect(error.variable == "SESSION_DURATION")
        }
    }

    @Test(arguments: [
        ("SESSION_IDLE_TIMEOUT", "5m"), ("REDIS_COMMAND_TIMEOUT_MS", "1s"), ("REDIS_COMMAND_TIMEOUT_MS", "99999999999999"),
        ("SHUTDOWN_TIMEOUT", "ten"), ("PASSWORD_HASH_COST", "12.0"), ("PASSWORD_HASH_QUEUE_LIMIT", "0"), ("API_PORT", "80x"),
        ("SESSION_DURATION", "9223372036854775807"),
    ])
    func everyNumericSettingMustParse(name: String, value: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try AppConfiguration(environment: [name: value, "REDIS_URL": "redis://127.0.0.1"])
        }
        #expect(error.variable == name)
    }

    @Test func redisSessionsMustExpire() throws {
        for value in ["0", "-1"] {
            let error = try #require(throws: ConfigurationError.self) {
                try AppConfiguration(environment: ["SESSION_DURATION": value, "AUTH_TYPE": "session_redis_auth", "REDIS_URL": "redis://127.0.0.1"])
            }
            #expect(error.variable == "SESSION_DURATION")
        }
        // The original's modes keep 0 as "never".
        #expect(try AppConfiguration(environment: ["SESSION_DURATION": "0", "AUTH_TYPE": "session_exp_auth"]).sessionDuration == 0)
    }

    // MARK: 4. Cookie tossing

    @Test(arguments: [AuthType.sessionAuth, .sessionExpAuth, .sessionDBAuth])
    func twoDifferentSessionCookiesAreRefused(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            try await app.seedUser(email: "eve@example.com", password: "evil")
            let victim = try await client.login()
            let attacker = try await client.login(email: "eve@example.com", password: "evil")
            for header in ["\(attacker); \(victim)", "\(victim); \(attacker)", "theme=dark; \(attacker); lang=en; \(victim)"] {
                expectError(try await client.me(headers: .cookie(header)), .forbidden, "Forbidden")
            }
            // Two Cookie header lines count as one list.
            var twoLines = HTTPFields()
            twoLines.append(HTTPField(name: .cookie, value: attacker))
            twoLines.append(HTTPField(name: .cookie, value: victim))
            expectError(try await client.me(headers: twoLines), .forbidden, "Forbidden")
            // The same value twice is one cookie.
            #expect(try await client.me(headers: .cookie("\(victim); \(victim)")).status == .ok)
        }
    }

    @Test func hostPrefixNamesTheCookieAndNeedsSecure() async throws {
        let configuration = try AppConfiguration(environment: ["SESSION_COOKIE_HOST_PREFIX": "true", "AUTH_TYPE": "session_auth"])
        #expect(configuration.sessionCookieName == "__Host-_my_session_id")
        #expect(configuration.sessionCookieSecure)
        #expect(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["SESSION_COOKIE_HOST_PREFIX": "true", "SESSION_COOKIE_SECURE": "false", "AUTH_TYPE": "session_auth"])
        }
        #expect(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["SESSION_NAME": "__Host-sid", "AUTH_TYPE": "session_auth"])
        }
        try await withDataDirectory { directory in
            var test = AppConfiguration.test(directory: directory, authType: .sessionAuth)
            test.sessionCookieHostPrefix = true
            test.sessionCookieSecure = true
            try await TestApp.run(test) { app, client in
                try await app.seedUser()
                let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
                let cookie = try #require(login.setCookie)
                #expect(cookie.name == "__Host-_my_session_id")
                #expect(cookie.attributes == ["Path=/", "HttpOnly", "SameSite=Lax", "Secure"])
                #expect(try await client.me(headers: .cookie(cookie.pair)).status == .ok)
                // The unprefixed name is not this server's cookie.
                expectError(try await client.me(headers: .cookie("_my_session_id=\(cookie.value)")), .unauthorized, "Unauthorized")
            }
        }
    }

    // MARK: 5. Email identity

    @Test(arguments: ["\u{212A}@x.y", "\u{FF4B}@x.y", "K@X.Y"])
    func emailsThatNormaliseAlikeAreOneAccount(other: String) async throws {
        try await TestApp.run(nil) { _, client in
            let owner = try await client.createUser(email: "k@x.y", password: "pw")
            #expect(owner.status == .created)
            expectError(try await client.createUser(email: other, password: "pw"), .conflict, "email already registered")
        }
    }

    @Test func caseFoldingIsFull() async throws {
        try await TestApp.run(nil) { _, client in
            #expect(try await client.createUser(email: "strasse@x.y", password: "pw").status == .created)
            expectError(try await client.createUser(email: "Straße@x.y", password: "pw"), .conflict, "email already registered")
        }
    }

    @Test func anEmailIsShownAsGivenAndFoundByItsKey() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            let user = try await app.seedUser(email: "\u{FF22}ob@Example.com")
            #expect(user.email == "\u{FF22}ob@Example.com")
            // Log in with another spelling of the same key.
            let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
            #expect(login.status == .ok)
            #expect(try login.user().email == "\u{FF22}ob@Example.com")
        }
    }

    @Test(arguments: [
        ("bob@example.com\r\nBcc: x@y.z", "email must not contain control characters"),
        ("bob\n@example.com", "email must not contain control characters"),
        ("bob\u{0}@example.com", "email must not contain control characters"),
        ("bob.example.com", "email must have one @ between a name and a domain"),
        ("bob@@example.com", "email must have one @ between a name and a domain"),
        ("a@b@c", "email must have one @ between a name and a domain"),
        ("@example.com", "email must have one @ between a name and a domain"),
        ("bob@", "email must have one @ between a name and a domain"),
        (String(repeating: "a", count: 310) + "@example.com", "email too long"),
    ])
    func badEmailsAreRefused(email: String, message: String) async throws {
        try await TestApp.run(nil) { app, client in
            expectError(try await client.createUser(email: email, password: "pw"), .badRequest, message)
            #expect(try await app.stores.users.count() == 0)
        }
    }

    /// A file of the original with an email these rules refuse still loads, and its user still logs in.
    @Test func existingUsersKeepWorking() async throws {
        try await withDataDirectory { directory in
            let sha256OfPw = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"
            let file =
                #"{"u1": {"id": "u1", "email": "Legacy.User", "_password": "\#(sha256OfPw)", "first_name": null, "last_name": null, "created_at": "2017-09-25T01:55:17", "updated_at": "2017-09-25T01:55:17"}}"#
            try Data(file.utf8).write(to: URL(fileURLWithPath: directory + "/.db_User.json"))
            var configuration = AppConfiguration.test(directory: directory, authType: .sessionAuth)
            configuration.userStore = .json
            try await TestApp.run(configuration) { _, client in
                let login = try await client.loginForm(email: "legacy.user", password: "pw")
                #expect(login.status == .ok, "\(login.text)")
            }
        }
    }

    // MARK: 6. Unbounded fields

    @Test func namesAreCapped() async throws {
        try await TestApp.run(nil) { app, client in
            let long = String(repeating: "n", count: 257)
            let zalgo = "Z" + String(repeating: "\u{0301}", count: 300)
            for name in [long, zalgo] {
                expectError(
                    try await client.createUser(email: "a@b.c", password: "pw", firstName: name),
                    .badRequest,
                    "first_name too long (at most 256 characters)"
                )
                expectError(
                    try await client.createUser(email: "a@b.c", password: "pw", lastName: name),
                    .badRequest,
                    "last_name too long (at most 256 characters)"
                )
            }
            let user = try expectUserJSON(try await client.createUser(email: "a@b.c", password: "pw", firstName: String(repeating: "n", count: 256)))
            let body = try String(data: JSONEncoder().encode(["last_name": long]), encoding: .utf8) ?? ""
            expectError(try await client.updateUser(id: user.id, json: body), .badRequest, "last_name too long (at most 256 characters)")
            #expect(try await app.stores.users.user(id: user.id)?.lastName == nil)
        }
    }

    // MARK: 7. User enumeration by timing

    /// An unknown email costs a hash too: with no room on the hashing pool, it is 503 like a known one,
    /// not an answer that skipped the hash (404 at login, 403 in Basic).
    @Test func unknownEmailsAreHashedToo() async throws {
        for mode in [AuthType.sessionAuth, .basicAuth] {
            try await withDataDirectory { directory in
                var configuration = AppConfiguration.test(directory: directory, authType: mode)
                configuration.passwordHashQueueLimit = 0
                try await TestApp.run(configuration) { _, client in
                    if mode == .basicAuth {
                        expectError(try await client.me(headers: .basic("nobody@example.com", "pw")), .serviceUnavailable, "Service Unavailable")
                    } else {
                        let response = try await client.loginForm(email: "nobody@example.com", password: "pw")
                        expectError(response, .serviceUnavailable, "Service Unavailable")
                        #expect(response.headers[.retryAfter] == "1")
                    }
                }
            }
        }
    }

    @Test func unknownEmailsStillGetTheOriginalsAnswers() async throws {
        try await TestApp.run(.sessionAuth) { _, client in
            expectError(try await client.loginForm(email: "nobody@example.com", password: "pw"), .notFound, "no user found for this email")
        }
        try await TestApp.run(.basicAuth) { _, client in
            expectError(try await client.me(headers: .basic("nobody@example.com", "pw")), .forbidden, "Forbidden")
        }
    }

    // MARK: 10. Every user is an administrator (unless ADMIN_EMAILS says who is)

    @Test(arguments: [AuthType.sessionAuth, .basicAuth])
    func adminPolicy(mode: AuthType) async throws {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration.test(directory: directory, authType: mode)
            configuration.adminEmails = [User.normalizedEmail("Admin@Example.com")]
            try await TestApp.run(configuration) { app, client in
                let admin = try await app.seedUser(email: "admin@example.com", password: "adminpw")
                let bob = try await app.seedUser(email: "bob@example.com", password: "bobpw")
                let eve = try await app.seedUser(email: "eve@example.com", password: "evepw")
                func auth(_ email: String, _ password: String) async throws -> HTTPFields {
                    mode == .basicAuth ? .basic(email, password) : .cookie(try await client.login(email: email, password: password))
                }
                let asBob = try await auth("bob@example.com", "bobpw")
                let asAdmin = try await auth("admin@example.com", "adminpw")
                // Anyone reads; a user updates itself.
                #expect(try await client.listUsers(headers: asBob).status == .ok)
                #expect(try await client.showUser(id: eve.id, headers: asBob).status == .ok)
                #expect(try await client.updateUser(id: bob.id, json: #"{"first_name":"Bob"}"#, headers: asBob).status == .ok)
                // Not others, and no create or delete.
                expectError(try await client.updateUser(id: eve.id, json: #"{"first_name":"X"}"#, headers: asBob), .forbidden, "Forbidden")
                expectError(try await client.createUser(email: "new@example.com", password: "pw", headers: asBob), .forbidden, "Forbidden")
                expectError(try await client.deleteUser(id: eve.id, headers: asBob), .forbidden, "Forbidden")
                expectError(try await client.deleteUser(id: bob.id, headers: asBob), .forbidden, "Forbidden")
                #expect(try await app.stores.users.count() == 3)
                // The admin does all of it.
                #expect(try await client.updateUser(id: eve.id, json: #"{"first_name":"Eve"}"#, headers: asAdmin).status == .ok)
                #expect(try await client.createUser(email: "new@example.com", password: "pw", headers: asAdmin).status == .created)
                #expect(try await client.deleteUser(id: eve.id, headers: asAdmin).status == .ok)
                _ = admin
            }
        }
    }

    @Test func withoutAdminEmailsEveryUserIsAnAdminAsInTheOriginal() async throws {
        try await TestApp.run(.sessionAuth) { app, client in
            try await app.seedUser()
            let eve = try await app.seedUser(email: "eve@example.com", password: "evepw")
            let cookie = try await client.login()
            #expect(try await client.deleteUser(id: eve.id, headers: .cookie(cookie)).status == .ok)
        }
    }

    @Test func adminEmailsNeedAuthentication() throws {
        for environment in [["ADMIN_EMAILS": "a@b.c"], ["ADMIN_EMAILS": "a@b.c", "AUTH_TYPE": "none"]] {
            let error = try #require(throws: ConfigurationError.self) { try AppConfiguration(environment: environment) }
            #expect(error.variable == "ADMIN_EMAILS")
        }
    }
}
