import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// `AUTH_TYPE=basic_auth`: `Authorization: Basic base64(email:password)` on every protected request.
@Suite(.storeBackend) struct BasicAuthTests {
    static let password = "H0lbertonSchool98!"

    @Test func validCredentials() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            let bob = try await app.seedUser(firstName: "Bob")
            let me = try await client.me(headers: .basic("bob@example.com", Self.password))
            #expect(me.status == .ok)
            #expect(try expectUserJSON(me) == UserResponse(bob))
            #expect(try await client.listUsers(headers: .basic("bob@example.com", Self.password)).status == .ok)
            #expect(try await client.stats(headers: .basic("bob@example.com", Self.password)).text == #"{"users":1}"#)
            // The email is matched ignoring case, as for login.
            #expect(try await client.me(headers: .basic("BOB@example.com", Self.password)).status == .ok)
            let created = try await client.createUser(email: "new@example.com", password: "pw", headers: .basic("bob@example.com", Self.password))
            #expect(created.status == .created)
        }
    }

    @Test func passwordMayContainColons() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser(password: "pa:ss:word:")
            #expect(try await client.me(headers: .basic("bob@example.com", "pa:ss:word:")).status == .ok)
            expectError(try await client.me(headers: .basic("bob@example.com", "pa")), .forbidden, "Forbidden")
        }
    }

    @Test func longestPasswordIsNoPrefixMatch() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            let password = String(repeating: "p", count: PasswordHasher.maximumPasswordBytes)
            try await app.seedUser(password: password)
            #expect(try await client.me(headers: .basic("bob@example.com", password)).status == .ok)
            expectError(try await client.me(headers: .basic("bob@example.com", password + "x")), .forbidden, "Forbidden")
        }
    }

    @Test func noHeaderIs401() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser()
            expectError(try await client.me(), .unauthorized, "Unauthorized")
            expectError(try await client.listUsers(), .unauthorized, "Unauthorized")
            // A session cookie is no credential in this mode.
            expectError(try await client.me(headers: .cookie("_my_session_id=\(SessionID.generate())")), .unauthorized, "Unauthorized")
        }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }

    /// `Authorization` values that name no user: each is a 403, never a 401 or a 500.
    static let refusedHeaders: [(String, String)] = [
        ("bad base64", "Basic !!!not-base64!!!"),
        ("base64 missing padding", "Basic " + String(base64(Array("bob@example.com:\(password)".utf8)).dropLast(2))),
        ("non-UTF-8 decoded bytes", "Basic " + base64([0xFF, 0xFE, 0x3A, 0xC3, 0x28])),
        ("missing colon", "Basic " + base64(Array("bob@example.com\(password)".utf8))),
        ("wrong password", "Basic " + base64(Array("bob@example.com:wrong".utf8))),
        ("empty password", "Basic " + base64(Array("bob@example.com:".utf8))),
        ("unknown email", "Basic " + base64(Array("nobody@example.com:\(password)".utf8))),
        ("empty credentials", "Basic "),
        ("Basic prefix missing", base64(Array("bob@example.com:\(password)".utf8))),
        ("other scheme", "Bearer " + base64(Array("bob@example.com:\(password)".utf8))),
        ("no space after Basic", "Basic" + base64(Array("bob@example.com:\(password)".utf8))),
        ("huge header", "Basic " + String(repeating: "A", count: 16_384)),
    ]

    @Test(arguments: refusedHeaders)
    func refusedCredentialsAre403(name: String, header: String) async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser()
            expectError(try await client.me(headers: [.authorization: header]), .forbidden, "Forbidden")
            expectError(try await client.listUsers(headers: [.authorization: header]), .forbidden, "Forbidden")
        }
    }

    @Test func deletedUserCredentialsStopWorking() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            let bob = try await app.seedUser()
            let headers = HTTPFields.basic("bob@example.com", Self.password)
            #expect(try await client.deleteUser(id: bob.id, headers: headers).status == .ok)
            expectError(try await client.me(headers: headers), .forbidden, "Forbidden")
        }
    }

    @Test func noSessionRoutes() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            try await app.seedUser()
            // Login is excluded from auth, but this mode has no sessions: there is no such route.
            expectError(try await client.loginForm(email: "bob@example.com", password: Self.password), .notFound, "Not found")
        }
    }
}
