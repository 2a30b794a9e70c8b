import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SessionAPI
import Testing

/// Which paths need no authentication: trailing-slash tolerant, `*` for prefixes.
@Suite(.storeBackend) struct AuthExclusionsTests {
    @Test func entryWithSlashMatchesPathWithOrWithout() {
        let exclusions = AuthExclusions(["/api/v1/status/"])
        #expect(exclusions.isExcluded("/api/v1/status"))
        #expect(exclusions.isExcluded("/api/v1/status/"))
        #expect(!exclusions.isExcluded("/api/v1/stats"))
        #expect(!exclusions.isExcluded("/api/v1/status/more"))
        #expect(!exclusions.isExcluded("/api/v1/statusx"))
        #expect(!exclusions.isExcluded("/api/v1"))
    }

    @Test func entryWithoutSlashMatchesPathWithOrWithout() {
        let exclusions = AuthExclusions(["/api/v1/status"])
        #expect(exclusions.isExcluded("/api/v1/status"))
        #expect(exclusions.isExcluded("/api/v1/status/"))
        #expect(!exclusions.isExcluded("/api/v1/status/more"))
    }

    @Test func wildcardMatchesEveryPathWithThePrefix() {
        let exclusions = AuthExclusions(["/api/v1/stat*"])
        #expect(exclusions.isExcluded("/api/v1/stat"))
        #expect(exclusions.isExcluded("/api/v1/stats"))
        #expect(exclusions.isExcluded("/api/v1/status"))
        #expect(exclusions.isExcluded("/api/v1/status/"))
        #expect(exclusions.isExcluded("/api/v1/status/deep/path"))
        #expect(!exclusions.isExcluded("/api/v1/sta"))
        #expect(!exclusions.isExcluded("/api/v1/users"))
    }

    @Test func wildcardAfterSlash() {
        let exclusions = AuthExclusions(["/api/v1/auth_session/*"])
        #expect(exclusions.isExcluded("/api/v1/auth_session/login"))
        #expect(exclusions.isExcluded("/api/v1/auth_session/logout/"))
        #expect(exclusions.isExcluded("/api/v1/auth_session"))
        #expect(!exclusions.isExcluded("/api/v1/auth_sessions"))
    }

    @Test func nothingExcludedByAnEmptyList() {
        let exclusions = AuthExclusions([])
        #expect(!exclusions.isExcluded("/api/v1/status"))
        #expect(!exclusions.isExcluded("/"))
    }

    @Test func standardList() {
        let standard = AuthExclusions.standard
        for path in [
            "/api/v1/status", "/api/v1/status/", "/api/v1/unauthorized", "/api/v1/unauthorized/",
            "/api/v1/forbidden", "/api/v1/forbidden/", "/api/v1/auth_session/login", "/api/v1/auth_session/login/",
        ] {
            #expect(standard.isExcluded(path), "\(path)")
        }
        for path in [
            "/api/v1/stats", "/api/v1/users", "/api/v1/users/", "/api/v1/users/me", "/api/v1/auth_session/logout",
            "/api/v1/status/x", "/api/v1/auth_session/login/x", "/", "/api/v1/",
        ] {
            #expect(!standard.isExcluded(path), "\(path)")
        }
    }

    static let authModes: [AuthType] = [.basicAuth, .sessionAuth, .sessionExpAuth, .sessionDBAuth]

    @Test(arguments: authModes)
    func excludedRoutesNeedNoCredentials(mode: AuthType) async throws {
        try await TestApp.run(mode) { _, client in
            for path in ["/api/v1/status", "/api/v1/status/"] {
                let response = try await client.get(path)
                #expect(response.status == .ok, "\(path)")
                #expect(response.text == #"{"status":"OK"}"#)
            }
            expectError(try await client.get("/api/v1/unauthorized"), .unauthorized, "Unauthorized")
            expectError(try await client.get("/api/v1/unauthorized/"), .unauthorized, "Unauthorized")
            expectError(try await client.get("/api/v1/forbidden"), .forbidden, "Forbidden")
            expectError(try await client.get("/api/v1/forbidden/"), .forbidden, "Forbidden")
        }
    }

    @Test(arguments: authModes)
    func protectedRoutesNeedCredentials(mode: AuthType) async throws {
        try await TestApp.run(mode) { app, client in
            let bob = try await app.seedUser()
            for path in ["/api/v1/stats", "/api/v1/stats/", "/api/v1/users", "/api/v1/users/", "/api/v1/users/me", "/api/v1/users/\(bob.id)"] {
                expectError(try await client.get(path), .unauthorized, "Unauthorized")
            }
            expectError(try await client.deleteUser(id: bob.id), .unauthorized, "Unauthorized")
            expectError(try await client.updateUser(id: bob.id, json: #"{"first_name":"X"}"#), .unauthorized, "Unauthorized")
            expectError(try await client.createUser(email: "x@example.com", password: "pw"), .unauthorized, "Unauthorized")
            // Unknown paths are behind the check too (as the original's before_request).
            expectError(try await client.get("/api/v1/nope"), .unauthorized, "Unauthorized")
            #expect(try await app.stores.users.count() == 1)
        }
    }

    @Test(arguments: [AuthType.sessionAuth, .sessionExpAuth, .sessionDBAuth], ["/api/v1/auth_session/login", "/api/v1/auth_session/login/"])
    func loginNeedsNoCredentials(mode: AuthType, path: String) async throws {
        try await TestApp.run(mode) { app, client in
            try await app.seedUser()
            let response = try await client.execute(
                uri: path,
                method: .post,
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: .init(string: "email=bob%40example.com&password=H0lbertonSchool98%21")
            )
            #expect(response.status == .ok, "\(response.text)")
            #expect(response.setCookie != nil)
            expectError(try await client.loginForm(email: nil, password: "x"), .badRequest, "email missing")
        }
    }
}
