import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SessionAPI
import Testing

/// JSON bodies are read only under a JSON media type, as Flask's `request.get_json()` reads them:
/// anything else is 400 "Wrong format" (a cross-site `text/plain` form cannot create or change users).
@Suite(.storeBackend) struct ContentTypeTests {
    static let authModes: [AuthType?] = [nil, .basicAuth, .sessionAuth, .sessionExpAuth, .sessionDBAuth]

    /// Content types that are not JSON (`nil`: no `Content-Type` header at all).
    static let notJSON: [String?] = [
        nil, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "application/jsonx", "application/+json", "text/json",
    ]
    /// JSON media types, in the spellings a client may send.
    static let json = [
        "application/json", "application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON", " Application/Json ;charset=UTF-8",
    ]

    /// Headers that authenticate as `user` in `mode` (none with auth off).
    static func credentials(_ mode: AuthType?, _ client: some TestClientProtocol) async throws -> HTTPFields {
        switch mode {
        case nil: return [:]
        case .basicAuth: return .basic("bob@example.com", "H0lbertonSchool98!")
        default: return .cookie(try await client.login())
        }
    }

    static func headers(_ contentType: String?, _ credentials: HTTPFields) -> HTTPFields {
        var headers = credentials
        if let contentType { headers[.contentType] = contentType }
        return headers
    }

    @Test(arguments: authModes)
    func createNeedsAJSONContentType(mode: AuthType?) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let auth = try await Self.credentials(mode, client)
            for contentType in Self.notJSON {
                let body = ByteBuffer(string: #"{"email":"eve@example.com","password":"pw"}"#)
                let response = try await client.execute(uri: "/api/v1/users", method: .post, headers: Self.headers(contentType, auth), body: body)
                expectError(response, .badRequest, "Wrong format")
            }
            #expect(try await app.stores.users.count() == 1)
            for (index, contentType) in Self.json.enumerated() {
                let body = ByteBuffer(string: #"{"email":"ann\#(index)@example.com","password":"pw"}"#)
                let response = try await client.execute(uri: "/api/v1/users", method: .post, headers: Self.headers(contentType, auth), body: body)
                #expect(response.status == .created, "\(contentType): \(response.text)")
            }
            #expect(try await app.stores.users.count() == 1 + Self.json.count)
        }
    }

    @Test(arguments: authModes)
    func updateNeedsAJSONContentType(mode: AuthType?) async throws {
        try await TestApp.run(mode) { app, client in
            let bob = try await app.seedUser()
            let auth = try await Self.credentials(mode, client)
            for contentType in Self.notJSON {
                let response = try await client.execute(
                    uri: "/api/v1/users/\(bob.id)",
                    method: .put,
                    headers: Self.headers(contentType, auth),
                    body: ByteBuffer(string: #"{"first_name":"Mallory"}"#)
                )
                expectError(response, .badRequest, "Wrong format")
            }
            #expect(try await app.stores.users.user(id: bob.id)?.firstName == nil)
            for (index, contentType) in Self.json.enumerated() {
                let response = try await client.execute(
                    uri: "/api/v1/users/\(bob.id)",
                    method: .put,
                    headers: Self.headers(contentType, auth),
                    body: ByteBuffer(string: #"{"first_name":"Bob\#(index)"}"#)
                )
                #expect(response.status == .ok, "\(contentType): \(response.text)")
                #expect(try response.user().firstName == "Bob\(index)")
            }
        }
    }

    /// An unknown user is still 404 whatever the body (the original looks the user up first).
    @Test func updateOfAnUnknownUserIs404WhateverTheContentType() async throws {
        try await TestApp.run(nil) { _, client in
            let response = try await client.execute(
                uri: "/api/v1/users/nobody",
                method: .put,
                headers: [.contentType: "text/plain"],
                body: ByteBuffer(string: #"{"first_name":"X"}"#)
            )
            expectError(response, .notFound, "Not found")
        }
    }

    @Test(arguments: [AuthType.sessionAuth, .sessionExpAuth, .sessionDBAuth])
    func loginReadsFormsAndJSONOnly(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let form = "email=bob%40example.com&password=H0lbertonSchool98%21"
            let json = #"{"email":"bob@example.com","password":"H0lbertonSchool98!"}"#
            for contentType in [
                "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "APPLICATION/X-WWW-FORM-URLENCODED",
            ] {
                let response = try await client.loginRaw(body: Array(form.utf8), headers: [.contentType: contentType])
                #expect(response.status == .ok, "\(contentType): \(response.text)")
            }
            for contentType in Self.json {
                let response = try await client.loginRaw(body: Array(json.utf8), headers: [.contentType: contentType])
                #expect(response.status == .ok, "\(contentType): \(response.text)")
            }
            for contentType in ["text/plain", "multipart/form-data; boundary=x", "application/xml"] {
                for body in [form, json] {
                    let response = try await client.loginRaw(body: Array(body.utf8), headers: [.contentType: contentType])
                    expectError(response, .badRequest, "Wrong format")
                    #expect(response.headers[values: .setCookie].isEmpty)
                }
            }
            // No Content-Type: the original's `request.form` is empty, so the email is missing.
            let bare = try await client.loginRaw(body: Array(form.utf8), headers: [:])
            expectError(bare, .badRequest, "email missing")
        }
    }
}
