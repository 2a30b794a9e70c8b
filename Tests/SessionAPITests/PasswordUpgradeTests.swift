import Crypto
import Foundation
import HTTPTypes
import HummingbirdBcrypt
import HummingbirdTesting
import SessionAPI
import Testing

/// Passwords are hashed with Argon2id; every older hash still logs in and is replaced on that login
/// (issue 7): the original's hex SHA-256, bcrypt from earlier versions, Argon2id with other parameters.
@Suite(.storeBackend) struct PasswordUpgradeTests {
    static let password = "correct horse"

    /// A user stored with `hash` as it is, as the original's files or an earlier version left it.
    static func legacyUser(_ hash: String) -> User {
        User(
            id: RandomID.make(),
            email: "old@example.com",
            passwordHash: hash,
            createdAt: "2017-09-25T01:55:17",
            updatedAt: "2017-09-25T01:55:17"
        )
    }

    static let sha256 = SHA256.hash(data: Array(password.utf8)).hexString

    @Test(arguments: ["sha256", "sha256-upper", "bcrypt", "argon2i"])
    func anOldHashLogsInAndIsReplacedByArgon2id(kind: String) async throws {
        let hash: String
        switch kind {
        case "sha256": hash = Self.sha256
        case "sha256-upper": hash = Self.sha256.uppercased()
        case "bcrypt": hash = Bcrypt.hash(Self.password, cost: 4)
        default: hash = Self.argon2i
        }
        try await TestApp.run(.sessionAuth) { app, client in
            let user = Self.legacyUser(hash)
            try await app.stores.users.create(user)
            expectError(try await client.loginForm(email: "old@example.com", password: "wrong"), .unauthorized, "wrong password")
            #expect(try await app.stores.users.user(id: user.id)?.passwordHash == hash)
            _ = try await client.login(email: "old@example.com", password: Self.password)
            let upgraded = try #require(try await app.stores.users.user(id: user.id)?.passwordHash)
            #expect(upgraded.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$"), "\(upgraded)")
            // The new hash logs in, and still refuses a wrong password.
            _ = try await client.login(email: "old@example.com", password: Self.password)
            expectError(try await client.loginForm(email: "old@example.com", password: "wrong"), .unauthorized, "wrong password")
            #expect(try await app.stores.users.user(id: user.id)?.passwordHash == upgraded)
        }
    }

    /// The password as `$argon2i$`, a variant this server verifies but does not make (Debian's argon2 tool:
    /// `echo -n 'correct horse' | argon2 somesaltsomesalt -i -t 1 -m 6 -p 1 -e`).
    static let argon2i = "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$Y6cu/XQ7YdGg0QMNFVpW5Y60i83M9HaCbEeri6vNJ0k"

    @Test func aHashWithOtherArgon2ParametersIsRehashed() async throws {
        try await withDataDirectory { directory in
            var old = AppConfiguration.test(directory: directory, authType: .sessionAuth)
            old.userStore = .json
            let user = try await TestApp.run(old) { app, _ in try await app.seedUser(email: "bob@example.com", password: Self.password) }
            #expect(user.passwordHash?.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$") == true)
            var new = old
            new.passwordArgon2MemoryKiB = 128
            new.passwordArgon2Iterations = 2
            try await TestApp.run(new) { app, client in
                _ = try await client.login(email: "bob@example.com", password: Self.password)
                let rehashed = try #require(try await app.stores.users.user(id: user.id)?.passwordHash)
                #expect(rehashed.hasPrefix("$argon2id$v=19$m=128,t=2,p=1$"), "\(rehashed)")
                _ = try await client.login(email: "bob@example.com", password: Self.password)
                #expect(try await app.stores.users.user(id: user.id)?.passwordHash == rehashed)
            }
        }
    }

    @Test func basicAuthUpgradesToo() async throws {
        try await TestApp.run(.basicAuth) { app, client in
            let user = Self.legacyUser(Self.sha256)
            try await app.stores.users.create(user)
            #expect(try await client.me(headers: .basic("old@example.com", Self.password)).status == .ok)
            #expect(try await app.stores.users.user(id: user.id)?.passwordHash?.hasPrefix("$argon2id$") == true)
            #expect(try await client.me(headers: .basic("old@example.com", Self.password)).status == .ok)
        }
    }

    /// The upgrade replaces the hash only if it is still the one the login checked.
    @Test func replacingAHashIsCompareAndSet() async throws {
        try await TestApp.run(nil) { app, _ in
            let user = Self.legacyUser(Self.sha256)
            try await app.stores.users.create(user)
            #expect(try await !app.stores.users.replacePasswordHash(id: user.id, expected: "something else", with: "x"))
            #expect(try await !app.stores.users.replacePasswordHash(id: user.id, expected: nil, with: "x"))
            #expect(try await !app.stores.users.replacePasswordHash(id: "nobody", expected: Self.sha256, with: "x"))
            #expect(try await app.stores.users.user(id: user.id)?.passwordHash == Self.sha256)
            #expect(try await app.stores.users.replacePasswordHash(id: user.id, expected: Self.sha256, with: "new"))
            #expect(try await app.stores.users.user(id: user.id)?.passwordHash == "new")
        }
    }

    @Test func argon2TakesPasswordsWithTheirLength() throws {
        let hash = try Argon2.hash(Array("abc\u{0}def".utf8), parameters: .testing)
        #expect(Argon2.verify(Array("abc\u{0}def".utf8), against: hash))
        #expect(!Argon2.verify(Array("abc".utf8), against: hash))
        #expect(!Argon2.verify(Array("abc\u{0}".utf8), against: hash))
        #expect(Argon2.parameters(of: hash) == .testing)
        #expect(Argon2.parameters(of: "$2b$04$abc") == nil)
        #expect(!Argon2.verify(Array("x".utf8), against: "$argon2id$garbage"))
    }
}
