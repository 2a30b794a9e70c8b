import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// The app over a real socket: what `.router` cannot show (HTTP/1 framing of cookies and headers).
@Suite(.storeBackend) struct LiveTests {
    @Test func loginThenMeOverASocket() async throws {
        try await TestApp.run(.sessionAuth, setup: .live) { app, client in
            #expect(client.port != nil)
            let bob = try await app.seedUser(firstName: "Bob")

            let login = try await client.loginForm(email: "bob@example.com", password: "H0lbertonSchool98!")
            #expect(login.status == .ok)
            #expect(try expectUserJSON(login) == UserResponse(bob))
            let setCookies = login.headers[values: .setCookie]
            #expect(setCookies.count == 1)
            let cookie = try #require(login.setCookie, "\(setCookies)")
            #expect(cookie.name == "_my_session_id")
            #expect(SessionID.isWellFormed(cookie.value))
            #expect(cookie.attributes == ["Path=/", "HttpOnly", "SameSite=Lax"])
            #expect(login.headers[.accessControlAllowOrigin] == "*")

            let me = try await client.me(headers: .cookie(cookie.pair))
            #expect(me.status == .ok)
            #expect(try expectUserJSON(me) == UserResponse(bob))

            // A browser sends every cookie of the site in one header.
            let several = try await client.me(headers: .cookie("theme=dark; \(cookie.pair); lang=en"))
            #expect(several.status == .ok)

            // A huge garbage cookie is refused as JSON, and the connection still serves the next request.
            let huge = try await client.me(headers: .cookie("_my_session_id=" + String(repeating: "A", count: 8192)))
            expectError(huge, .forbidden, "Forbidden")

            #expect(try await client.logout(headers: .cookie(cookie.pair)).status == .ok)
            expectError(try await client.me(headers: .cookie(cookie.pair)), .forbidden, "Forbidden")
        }
    }

    @Test func errorsOverASocketAreJSON() async throws {
        try await TestApp.run(nil, setup: .live) { _, client in
            expectError(try await client.get("/api/v1/nope"), .notFound, "Not found")
            let wrongMethod = try await client.execute(uri: "/api/v1/status", method: .delete)
            expectError(wrongMethod, .methodNotAllowed, "Method Not Allowed")
            #expect(wrongMethod.allowedMethods == ["GET", "HEAD", "OPTIONS"])
            let status = try await client.status()
            #expect(status.text == #"{"status":"OK"}"#)
        }
    }
}
