import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// `/api/v1/users`: list, show, create, update, delete, with auth off (everything open).
@Suite(.storeBackend) struct UserRoutesTests {
    // MARK: Create

    @Test func createReturnsTheUser() async throws {
        try await TestApp.run(nil) { _, client in
            let response = try await client.createUser(email: "bob@example.com", password: "pw", firstName: "Bob", lastName: "Dylan")
            #expect(response.status == .created)
            let user = try expectUserJSON(response)
            #expect(user.email == "bob@example.com")
            #expect(user.firstName == "Bob")
            #expect(user.lastName == "Dylan")
            #expect(user.createdAt == user.updatedAt)
            #expect(SessionID.isWellFormed(user.id))

            let shown = try await client.showUser(id: user.id)
            #expect(shown.status == .ok)
            #expect(try expectUserJSON(shown) == user)
            #expect(try await client.stats().text == #"{"users":1}"#)
        }
    }

    @Test func unsetNamesAreNullNotOmitted() async throws {
        try await TestApp.run(nil) { _, client in
            let response = try await client.createUser(email: "bob@example.com", password: "pw")
            #expect(response.status == .created)
            let user = try expectUserJSON(response)
            #expect(user.firstName == nil)
            #expect(user.lastName == nil)
            #expect(response.text.contains(#""first_name":null"#))
            #expect(response.text.contains(#""last_name":null"#))
            let pattern = #/\{"created_at":"[^"]+","email":"bob@example.com","first_name":null,"id":"[^"]+","last_name":null,"updated_at":"[^"]+"\}/#
            #expect(response.text.wholeMatch(of: pattern) != nil, "\(response.text)")
        }
    }

    @Test func passwordIsStoredHashedAndNeverReturned() async throws {
        try await TestApp.run(nil) { app, client in
            let user = try expectUserJSON(try await client.createUser(email: "bob@example.com", password: "s3cret-pw"))
            let stored = try #require(try await app.stores.users.user(id: user.id))
            let hash = try #require(stored.passwordHash)
            #expect(hash.hasPrefix("$argon2id$"))
            #expect(hash != "s3cret-pw")
            for response in [try await client.listUsers(), try await client.showUser(id: user.id)] {
                expectNoPassword(response)
                #expect(!response.text.contains("s3cret-pw"))
            }
        }
    }

    /// Bodies that are not a JSON object of the right field types.
    static let wrongFormatBodies: [(String, [UInt8])] = [
        ("not JSON", Array("email=a@example.com&password=pw".utf8)),
        ("empty body", []),
        ("JSON array", Array(#"[{"email":"a@example.com","password":"pw"}]"#.utf8)),
        ("JSON string", Array(#""a@example.com""#.utf8)),
        ("JSON null", Array("null".utf8)),
        ("truncated JSON", Array(#"{"email":"a@example.com","password":"#.utf8)),
        ("email is a number", Array(#"{"email":5,"password":"pw"}"#.utf8)),
        ("password is a number", Array(#"{"email":"a@example.com","password":5}"#.utf8)),
        ("first_name is a number", Array(#"{"email":"a@example.com","password":"pw","first_name":5}"#.utf8)),
        ("last_name is an object", Array(#"{"email":"a@example.com","password":"pw","last_name":{}}"#.utf8)),
        ("invalid UTF-8", Array(#"{"email":"a@example.com","password":""#.utf8) + [0xFF, 0xFE, 0xC3] + Array(#""}"#.utf8)),
        ("invalid UTF-8 in an unknown field", Array(#"{"email":"a@example.com","password":"pw","note":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8)),
    ]

    @Test(arguments: wrongFormatBodies)
    func createWithWrongFormatIs400(name: String, body: [UInt8]) async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.createUser(rawBody: body), .badRequest, "Wrong format")
            #expect(try await client.stats().text == #"{"users":0}"#)
        }
    }

    @Test(arguments: [
        (#"{}"#, "email missing"),
        (#"{"password":"pw"}"#, "email missing"),
        (#"{"email":"","password":"pw"}"#, "email missing"),
        (#"{"email":null,"password":"pw"}"#, "email missing"),
        (#"{"email":"a@example.com"}"#, "password missing"),
        (#"{"email":"a@example.com","password":""}"#, "password missing"),
        (#"{"email":"a@example.com","password":null}"#, "password missing"),
    ])
    func createWithMissingFieldIs400(body: String, message: String) async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.createUser(rawBody: Array(body.utf8)), .badRequest, message)
            #expect(try await client.stats().text == #"{"users":0}"#)
        }
    }

    @Test func tooLongPasswordOrEmailIs400() async throws {
        try await TestApp.run(nil) { _, client in
            // New passwords are at most 1024 bytes (the work of a hash stays bounded).
            let longest = String(repeating: "p", count: PasswordHasher.maximumPasswordBytes)
            try expectSomeError(try await client.createUser(email: "a@example.com", password: longest + "p"), .badRequest)
            try expectSomeError(try await client.createUser(email: "b@example.com", password: String(repeating: "\u{E9}", count: 513)), .badRequest)
            try expectSomeError(try await client.createUser(email: String(repeating: "e", count: 400) + "@example.com", password: "pw"), .badRequest)
            #expect(try await client.stats().text == #"{"users":0}"#)
            #expect(try await client.createUser(email: "c@example.com", password: longest).status == .created)
        }
    }

    @Test(arguments: ["bob@example.com", "BOB@example.com", "Bob@Example.COM"])
    func duplicateEmailIs409IgnoringCase(second: String) async throws {
        try await TestApp.run(nil) { _, client in
            #expect(try await client.createUser(email: "bob@example.com", password: "pw").status == .created)
            let response = try await client.createUser(email: second, password: "other")
            try expectSomeError(response, .conflict)
            expectNoPassword(response)
            #expect(try await client.stats().text == #"{"users":1}"#)
        }
    }

    // MARK: Read

    @Test func listUsers() async throws {
        try await TestApp.run(nil) { _, client in
            let empty = try await client.listUsers()
            #expect(empty.status == .ok)
            #expect(empty.text == "[]")

            let alice = try await client.createUser(email: "alice@example.com", password: "pw", firstName: "Alice").user()
            let bob = try await client.createUser(email: "bob@example.com", password: "pw").user()
            let response = try await client.listUsers()
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            expectNoPassword(response)
            let objects = try #require(try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [[String: Any]])
            #expect(objects.count == 2)
            for object in objects { expectUserObject(object) }
            let users = try JSONDecoder().decode([UserResponse].self, from: Data(response.text.utf8))
            #expect(Set(users.map(\.id)) == [alice.id, bob.id])
            #expect(users.first { $0.id == alice.id } == alice)
            #expect(users.first { $0.id == bob.id } == bob)
            expectKeysSorted(response.text, userKeys)
        }
    }

    /// `?limit=`/`?page=`: pages in id order with the total in `X-Total-Count`; without them, the original's
    /// whole list (above). In every backend, so the Redis store's own paging is covered too.
    @Test func listUsersByPage() async throws {
        try await TestApp.run(nil) { _, client in
            var ids: [String] = []
            for i in 0..<5 {
                ids.append(try await client.createUser(email: "user\(i)@example.com", password: "pw").user().id)
            }
            ids.sort()
            var seen: [String] = []
            for page in 1...3 {
                let response = try await client.get("/api/v1/users?limit=2&page=\(page)")
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-Total-Count")!] == "5")
                expectNoPassword(response)
                let users = try JSONDecoder().decode([UserResponse].self, from: Data(response.text.utf8))
                seen += users.map(\.id)
            }
            #expect(seen == ids)
            let past = try await client.get("/api/v1/users?page=9")
            #expect(past.status == .ok)
            #expect(past.text == "[]")
            let first = try await client.get("/api/v1/users?limit=1")
            #expect(try JSONDecoder().decode([UserResponse].self, from: Data(first.text.utf8)).map(\.id) == [ids[0]])
            for query in ["limit=0", "limit=1001", "limit=-1", "limit=x", "page=0", "page=1.5", "limit=%2B2", "limit="] {
                let response = try await client.get("/api/v1/users?\(query)")
                #expect(response.status == .badRequest, "\(query)")
                #expect(response.text.contains("must be a whole number from"), "\(query): \(response.text)")
            }
        }
    }

    @Test(arguments: ["00000000-0000-4000-8000-000000000000", "unknown", "%20"])
    func showUnknownUserIs404(id: String) async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.showUser(id: id), .notFound, "Not found")
        }
    }

    @Test func meWithAuthOffIs404() async throws {
        try await TestApp.run(nil) { app, client in
            try await app.seedUser()
            expectError(try await client.me(), .notFound, "Not found")
            expectError(try await client.get("/api/v1/users/me/"), .notFound, "Not found")
        }
    }

    // MARK: Update

    @Test func updateChangesNames() async throws {
        try await TestApp.run(nil) { _, client in
            let created = try await client.createUser(email: "bob@example.com", password: "pw", firstName: "Bob", lastName: "Dylan").user()

            let first = try await client.updateUser(id: created.id, json: #"{"first_name":"Robert"}"#)
            #expect(first.status == .ok)
            let afterFirst = try expectUserJSON(first)
            #expect(afterFirst.firstName == "Robert")
            #expect(afterFirst.lastName == "Dylan")
            #expect(afterFirst.id == created.id)
            #expect(afterFirst.email == created.email)
            #expect(afterFirst.createdAt == created.createdAt)
            #expect(isTimestamp(afterFirst.updatedAt))
            #expect(afterFirst.updatedAt >= created.createdAt)

            let both = try expectUserJSON(try await client.updateUser(id: created.id, json: #"{"first_name":"Bobby","last_name":"Zimmerman"}"#))
            #expect(both.firstName == "Bobby")
            #expect(both.lastName == "Zimmerman")
            #expect(try await client.showUser(id: created.id).user() == both)
        }
    }

    @Test(arguments: [#"{}"#, #"{"first_name":null}"#, #"{"first_name":null,"last_name":null}"#, #"{"email":"new@example.com"}"#])
    func updateWithNullOrAbsentNamesLeavesThem(body: String) async throws {
        try await TestApp.run(nil) { _, client in
            let created = try await client.createUser(email: "bob@example.com", password: "pw", firstName: "Bob", lastName: "Dylan").user()
            let response = try await client.updateUser(id: created.id, json: body)
            #expect(response.status == .ok)
            let updated = try expectUserJSON(response)
            #expect(updated.firstName == "Bob")
            #expect(updated.lastName == "Dylan")
            #expect(updated.email == "bob@example.com")
            #expect(isTimestamp(updated.updatedAt))
        }
    }

    @Test func updateUnknownUserIs404() async throws {
        try await TestApp.run(nil) { _, client in
            let id = "00000000-0000-4000-8000-000000000000"
            expectError(try await client.updateUser(id: id, json: #"{"first_name":"X"}"#), .notFound, "Not found")
            // As the original: the user is looked up before the body is read.
            expectError(try await client.updateUser(id: id, json: "not json"), .notFound, "Not found")
        }
    }

    @Test(arguments: wrongFormatBodies.filter { $0.0 != "email is a number" && $0.0 != "password is a number" })
    func updateWithWrongFormatIs400(name: String, body: [UInt8]) async throws {
        try await TestApp.run(nil) { _, client in
            let created = try await client.createUser(email: "bob@example.com", password: "pw", firstName: "Bob").user()
            expectError(try await client.updateUser(id: created.id, rawBody: body), .badRequest, "Wrong format")
            #expect(try await client.showUser(id: created.id).user() == created)
        }
    }

    // MARK: Delete

    @Test func deleteRemovesTheUser() async throws {
        try await TestApp.run(nil) { _, client in
            let created = try await client.createUser(email: "bob@example.com", password: "pw").user()
            let response = try await client.deleteUser(id: created.id)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.text == "{}")
            expectError(try await client.showUser(id: created.id), .notFound, "Not found")
            expectError(try await client.deleteUser(id: created.id), .notFound, "Not found")
            #expect(try await client.stats().text == #"{"users":0}"#)
            // The email is free again.
            #expect(try await client.createUser(email: "bob@example.com", password: "pw").status == .created)
        }
    }

    @Test func deleteUnknownUserIs404() async throws {
        try await TestApp.run(nil) { _, client in
            expectError(try await client.deleteUser(id: "00000000-0000-4000-8000-000000000000"), .notFound, "Not found")
        }
    }
}
