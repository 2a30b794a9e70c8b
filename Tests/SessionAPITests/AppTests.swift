import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SessionAPI
import Testing

/// The index routes, routing errors (404, 405), CORS and body limits, with auth off.
@Suite(.storeBackend) struct AppTests {
    @Test(arguments: ["/api/v1/status", "/api/v1/status/"])
    func status(path: String) async throws {
        try await TestApp.run(nil) { _, client in
            let response = try await client.get(path)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.text == #"{"status":"OK"}"#)
        }
    }

    @Test func statsCountsUsers() async throws {
        try await TestApp.run(nil) { app, client in
            #expect(try await client.stats().text == #"{"users":0}"#)
            try await app.seedUser(email: "a@example.com")
            try await app.seedUser(email: "b@example.com")
            let response = try await client.stats()
            #expect(response.status == .ok)
            #expect(response.text == #"{"users":2}"#)
            #expect(try await client.get("/api/v1/stats/").text == #"{"users":2}"#)
        }
    }

    @Test func unauthorizedAndForbiddenRoutes() async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.get("/api/v1/unauthorized"), .unauthorized, "Unauthorized")
            expectError(try await client.get("/api/v1/forbidden"), .forbidden, "Forbidden")
            expectError(try await client.get("/api/v1/unauthorized/"), .unauthorized, "Unauthorized")
            expectError(try await client.get("/api/v1/forbidden/"), .forbidden, "Forbidden")
        }
    }

    @Test(arguments: ["/api/v1/nope", "/nope", "/", "/api/v1/users/x/y", "/api/v2/status"])
    func unknownPathIs404(path: String) async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.get(path), .notFound, "Not found")
            expectError(try await client.execute(uri: path, method: .post), .notFound, "Not found")
        }
    }

    struct WrongMethod: Sendable, CustomTestStringConvertible {
        let method: HTTPRequest.Method
        let path: String
        let allowed: Set<String>
        var testDescription: String { "\(self.method) \(self.path)" }
    }

    @Test(arguments: [
        WrongMethod(method: .delete, path: "/api/v1/status", allowed: ["GET", "HEAD", "OPTIONS"]),
        WrongMethod(method: .post, path: "/api/v1/stats", allowed: ["GET", "HEAD", "OPTIONS"]),
        WrongMethod(method: .put, path: "/api/v1/unauthorized", allowed: ["GET", "HEAD", "OPTIONS"]),
        WrongMethod(method: .patch, path: "/api/v1/users", allowed: ["GET", "POST", "HEAD", "OPTIONS"]),
        WrongMethod(method: .delete, path: "/api/v1/users", allowed: ["GET", "POST", "HEAD", "OPTIONS"]),
        WrongMethod(method: .post, path: "/api/v1/users/some-id", allowed: ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
        WrongMethod(method: .patch, path: "/api/v1/users/me", allowed: ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
        // Found by scripts/fuzz (schemathesis' unsupported_method): TRACE was 404 on every path.
        WrongMethod(method: .trace, path: "/api/v1/users", allowed: ["GET", "POST", "HEAD", "OPTIONS"]),
        WrongMethod(method: .trace, path: "/healthz", allowed: ["GET", "HEAD", "OPTIONS"]),
        WrongMethod(method: .connect, path: "/api/v1/users/some-id", allowed: ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
        // An extension method the router has never heard of (the QUERY draft), and a trailing slash.
        WrongMethod(method: .init("QUERY")!, path: "/api/v1/status/", allowed: ["GET", "HEAD", "OPTIONS"]),
        WrongMethod(method: .init("QUERY")!, path: "/api/v1/users/abc", allowed: ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]),
    ])
    func knownPathWrongMethodIs405(_ wrong: WrongMethod) async throws {
        try await TestApp.run(nil) { _, client in
            let response = try await client.execute(uri: wrong.path, method: wrong.method)
            expectError(response, .methodNotAllowed, "Method Not Allowed")
            #expect(response.allowedMethods == wrong.allowed)
        }
    }

    @Test func wrongMethodOnSessionRoutesIs405() async throws {
        try await TestApp.run(.sessionAuth) { _, client in
            // The login route is excluded from auth, so the 405 is reached without credentials.
            let login = try await client.get("/api/v1/auth_session/login")
            expectError(login, .methodNotAllowed, "Method Not Allowed")
            #expect(login.allowedMethods == ["POST", "OPTIONS"])
        }
    }

    // MARK: CORS

    @Test(arguments: [nil, "https://example.com"] as [String?])
    func corsAllowsAnyOrigin(origin: String?) async throws {
        try await TestApp.run(nil) { _, client in
            let headers: HTTPFields = origin.map { [.origin: $0] } ?? [:]
            for path in ["/api/v1/status", "/api/v1/users", "/api/v1/nope", "/api/v1/forbidden"] {
                let response = try await client.get(path, headers: headers)
                #expect(response.headers[.accessControlAllowOrigin] == "*", "\(path)")
            }
            let created = try await client.createUser(email: "a@example.com", password: "pw", headers: headers)
            #expect(created.status == .created)
            #expect(created.headers[.accessControlAllowOrigin] == "*")
        }
    }

    @Test(arguments: [AuthType.noAuthentication, .sessionAuth, .basicAuth])
    func corsPreflightIsAnswered(authType: AuthType?) async throws {
        try await TestApp.run(authType) { _, client in
            // A preflight carries no credentials: it must be answered before the auth check.
            let response = try await client.execute(
                uri: "/api/v1/users",
                method: .options,
                headers: [.origin: "https://example.com", .accessControlRequestMethod: "POST"]
            )
            #expect((200..<300).contains(response.status.code), "\(response.status) \(response.text)")
            #expect(response.headers[.accessControlAllowOrigin] == "*")
            let methods = (response.headers[.accessControlAllowMethods] ?? "").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            #expect(methods.contains("POST"))
            #expect(methods.contains("DELETE"))
        }
    }

    @Test(arguments: [nil, AuthType.sessionAuth])
    func corsHeaderOnAuthErrors(authType: AuthType?) async throws {
        try await TestApp.run(authType) { _, client in
            let response = try await client.get("/api/v1/unauthorized", headers: [.origin: "https://example.com"])
            expectError(response, .unauthorized, "Unauthorized")
            #expect(response.headers[.accessControlAllowOrigin] == "*")
        }
    }

    // MARK: Limits

    @Test func bodyOverOneMebibyteIs413() async throws {
        try await TestApp.run(nil) { _, client in
            let padding = String(repeating: "x", count: 1 << 20)
            let body = Array(#"{"email":"a@example.com","password":"pw","first_name":"\#(padding)"}"#.utf8)
            try expectSomeError(try await client.createUser(rawBody: body), .contentTooLarge)
            #expect(try await client.stats().text == #"{"users":0}"#)
        }
    }

    @Test func bodyJustUnderTheLimitIsRead() async throws {
        try await TestApp.run(nil) { _, client in
            // A valid body padded with spaces up to exactly 1 MiB is still read (and parsed).
            let json = #"{"email":"a@example.com","password":"pw"}"#
            let body = Array(json.utf8) + [UInt8](repeating: UInt8(ascii: " "), count: (1 << 20) - json.utf8.count)
            #expect(body.count == 1 << 20)
            let response = try await client.createUser(rawBody: body)
            #expect(response.status == .created, "\(response.text)")
        }
    }
}
