import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// `.db_User.json`: the Flask original's format, corrupt files, atomic writes, several store instances on one file.
@Suite struct JSONFileStoreTests {
    /// A `.db_User.json` as the Flask original writes it (`_password` is the hex SHA-256 of the password).
    static let originalFile = """
        {"2f8a7e8e-2c4f-4d4e-9d1a-6a2f3c1b0e11": {"id": "2f8a7e8e-2c4f-4d4e-9d1a-6a2f3c1b0e11", "email": "bob@hbtn.io", \
        "_password": "a5c904771b8617de27d3511d1f538094e26c120da663363b3f760f7b894f9d69", "first_name": "Bob", \
        "last_name": "Dylan", "created_at": "2017-09-25T01:55:17", "updated_at": "2017-09-25T01:55:17"}, \
        "6a1f0b2c-77d3-4c2e-8f49-0b8e5d7c9a22": {"id": "6a1f0b2c-77d3-4c2e-8f49-0b8e5d7c9a22", "email": "anon@hbtn.io", \
        "_password": "2e0555c322fb0e2857952426cfb322037335c7790099b275d7fd26a5e53ba969", "first_name": null, \
        "last_name": null, "created_at": "2017-09-26T10:00:00", "updated_at": "2018-01-02T03:04:05"}}
        """

    static func usersFile(_ directory: String) -> String {
        directory + "/.db_User.json"
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// The file parsed as the original's format: an object of id -> record.
    static func records(in directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: usersFile(directory)))
        let object = try JSONSerialization.jsonObject(with: data)
        return try #require(object as? [String: [String: Any]], "not an object of records", sourceLocation: sourceLocation)
    }

    // MARK: The original's format

    @Test func originalFileLoadsAndItsUsersLogIn() async throws {
        try await withDataDirectory { directory in
            try Self.write(Self.originalFile, to: Self.usersFile(directory))
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .sessionAuth)) { _, client in
                let cookie = try await client.login(email: "bob@hbtn.io", password: "H0lbertonSchool98!")
                let me = try await client.me(headers: .cookie(cookie))
                let bob = try expectUserJSON(me)
                #expect(bob.id == "2f8a7e8e-2c4f-4d4e-9d1a-6a2f3c1b0e11")
                #expect(bob.firstName == "Bob")
                #expect(bob.lastName == "Dylan")
                #expect(bob.createdAt == "2017-09-25T01:55:17")

                let anon = try expectUserJSON(try await client.showUser(id: "6a1f0b2c-77d3-4c2e-8f49-0b8e5d7c9a22", headers: .cookie(cookie)))
                #expect(anon.firstName == nil)
                #expect(anon.lastName == nil)
                #expect(anon.updatedAt == "2018-01-02T03:04:05")
                #expect(try await client.stats(headers: .cookie(cookie)).text == #"{"users":2}"#)
                expectNoPassword(try await client.listUsers(headers: .cookie(cookie)))

                _ = try await client.login(email: "anon@hbtn.io", password: "pwd:with:colons")
                expectError(try await client.loginForm(email: "bob@hbtn.io", password: "wrong"), .unauthorized, "wrong password")
                // The hash itself is not a password.
                let hash = "a5c904771b8617de27d3511d1f538094e26c120da663363b3f760f7b894f9d69"
                expectError(try await client.loginForm(email: "bob@hbtn.io", password: hash), .unauthorized, "wrong password")
            }
        }
    }

    @Test func originalFileUsersWithBasicAuth() async throws {
        try await withDataDirectory { directory in
            try Self.write(Self.originalFile, to: Self.usersFile(directory))
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .basicAuth)) { _, client in
                #expect(try await client.me(headers: .basic("anon@hbtn.io", "pwd:with:colons")).status == .ok)
                expectError(try await client.me(headers: .basic("anon@hbtn.io", "pwd")), .forbidden, "Forbidden")
            }
        }
    }

    @Test func originalFileSurvivesAWrite() async throws {
        try await withDataDirectory { directory in
            try Self.write(Self.originalFile, to: Self.usersFile(directory))
            try await TestApp.run(AppConfiguration.test(directory: directory)) { _, client in
                let created = try await client.createUser(email: "new@hbtn.io", password: "pw")
                #expect(created.status == .created)
                let updated = try await client.updateUser(id: "6a1f0b2c-77d3-4c2e-8f49-0b8e5d7c9a22", json: #"{"first_name":"Ann"}"#)
                #expect(updated.status == .ok)
            }
            let records = try Self.records(in: directory)
            #expect(records.count == 3)
            let bob = try #require(records["2f8a7e8e-2c4f-4d4e-9d1a-6a2f3c1b0e11"])
            #expect(bob["_password"] as? String == "a5c904771b8617de27d3511d1f538094e26c120da663363b3f760f7b894f9d69")
            #expect(bob["created_at"] as? String == "2017-09-25T01:55:17")
            let anon = try #require(records["6a1f0b2c-77d3-4c2e-8f49-0b8e5d7c9a22"])
            #expect(anon["first_name"] as? String == "Ann")
            #expect(anon["last_name"] is NSNull)
        }
    }

    @Test func writtenRecordsAreInTheOriginalsFormat() async throws {
        try await withDataDirectory { directory in
            let user = try await TestApp.run(AppConfiguration.test(directory: directory)) { _, client in
                try await client.createUser(email: "bob@example.com", password: "pw", firstName: "Bob").user()
            }
            let records = try Self.records(in: directory)
            let record = try #require(records[user.id])
            #expect(Set(record.keys) == ["id", "email", "_password", "first_name", "last_name", "created_at", "updated_at"])
            #expect(record["id"] as? String == user.id)
            #expect(record["email"] as? String == "bob@example.com")
            #expect(record["first_name"] as? String == "Bob")
            #expect(record["last_name"] is NSNull)
            #expect((record["_password"] as? String)?.hasPrefix("$argon2id$v=19$") == true)
            #expect(record["created_at"] as? String == user.createdAt)
            #expect(record["updated_at"] as? String == user.updatedAt)
        }
    }

    // MARK: Corrupt files

    static let corruptFiles: [(String, String)] = [
        ("not JSON", "{\"truncated\": {\"id\": \"x\", \"email\": "),
        ("empty file", ""),
        ("JSON array", "[]"),
        ("record is a string", #"{"x": "bob@example.com"}"#),
        ("email missing", #"{"x": {"id": "x", "_password": null, "created_at": "2017-09-25T01:55:17", "updated_at": "2017-09-25T01:55:17"}}"#),
        ("email is a number", #"{"x": {"id": "x", "email": 5, "created_at": "2017-09-25T01:55:17", "updated_at": "2017-09-25T01:55:17"}}"#),
        ("bad timestamp", #"{"x": {"id": "x", "email": "a@b.c", "created_at": "yesterday", "updated_at": "2017-09-25T01:55:17"}}"#),
    ]

    @Test(arguments: corruptFiles)
    func corruptUsersFileIsAStartUpError(name: String, content: String) async throws {
        try await withDataDirectory { directory in
            try Self.write(content, to: Self.usersFile(directory))
            let error = try await #require(throws: StoreError.self) {
                _ = try await JSONFileUserStore(directory: directory)
            }
            #expect(error.code == .corruptData)
            #expect(error.message.contains(".db_User.json"))

            let appError = try await #require(throws: StoreError.self) {
                _ = try await buildApplication(AppConfiguration.test(directory: directory, authType: .sessionAuth), logger: testLogger())
            }
            #expect(appError.code == .corruptData)
            // Nothing was overwritten.
            #expect(try String(contentsOfFile: Self.usersFile(directory), encoding: .utf8) == content)
        }
    }

    @Test func corruptSessionsFileIsAStartUpError() async throws {
        try await withDataDirectory { directory in
            try Self.write("{\"oops\"", to: directory + "/.db_UserSession.json")
            let error = try await #require(throws: StoreError.self) {
                _ = try await AppStores.open(AppConfiguration.test(directory: directory, authType: .sessionDBAuth), logger: testLogger())
            }
            #expect(error.code == .corruptData)
            #expect(error.message.contains(".db_UserSession.json"))
        }
    }

    @Test func missingFileIsAnEmptyStore() async throws {
        try await withDataDirectory { directory in
            let store = try await JSONFileUserStore(directory: directory)
            #expect(try await store.count() == 0)
            #expect(try await store.allUsers().isEmpty)
            // Nothing is written until something changes.
            #expect(!FileManager.default.fileExists(atPath: Self.usersFile(directory)))
        }
    }

    // MARK: Writes

    @Test func writesLeaveAValidFileAndNoTemporaryFiles() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(AppConfiguration.test(directory: directory)) { _, client in
                var ids: [String] = []
                for index in 0..<5 {
                    let user = try await client.createUser(email: "user\(index)@example.com", password: "pw").user()
                    ids.append(user.id)
                    #expect(try Self.records(in: directory).count == index + 1)
                }
                #expect(try await client.updateUser(id: ids[0], json: #"{"last_name":"Changed"}"#).status == .ok)
                #expect(try Self.records(in: directory)[ids[0]]?["last_name"] as? String == "Changed")
                #expect(try await client.deleteUser(id: ids[1]).status == .ok)
                #expect(try Self.records(in: directory).count == 4)
                #expect(try Self.records(in: directory)[ids[1]] == nil)
                // A refused write (duplicate email) changes nothing.
                #expect(try await client.createUser(email: "USER0@example.com", password: "pw").status == .conflict)
                #expect(try Self.records(in: directory).count == 4)
            }
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names.allSatisfy { $0 == ".db_User.json" || $0 == ".db_User.json.lock" }, "\(names)")
            #expect(!names.contains { $0.contains("tmp") })
        }
    }

    @Test func concurrentWritesAllLand() async throws {
        try await withDataDirectory { directory in
            let store = try await JSONFileUserStore(directory: directory)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        try await store.create(Self.user(email: "user\(index)@example.com"))
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.count() == 20)
            #expect(try Self.records(in: directory).count == 20)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(!names.contains { $0.contains("tmp") }, "\(names)")
        }
    }

    // MARK: Several instances (several processes) on one file

    static func user(email: String, firstName: String? = nil) -> User {
        let now = Timestamp.string()
        return User(id: SessionID.generate(), email: email, passwordHash: nil, firstName: firstName, createdAt: now, updatedAt: now)
    }

    @Test func changesByAnotherInstanceAreSeenOnTheNextRead() async throws {
        try await withDataDirectory { directory in
            let first = try await JSONFileUserStore(directory: directory)
            let second = try await JSONFileUserStore(directory: directory)
            #expect(try await second.count() == 0)

            let bob = Self.user(email: "bob@example.com")
            try await first.create(bob)
            #expect(try await second.count() == 1)
            #expect(try await second.user(id: bob.id) == bob)
            #expect(try await second.user(email: "BOB@example.com") == bob)

            let updated = try await second.update(id: bob.id, firstName: "Bob", lastName: nil, updatedAt: Timestamp.string())
            #expect(updated?.firstName == "Bob")
            #expect(try await first.user(id: bob.id)?.firstName == "Bob")

            // Emails stay unique across instances.
            let duplicate = try await #require(throws: StoreError.self) {
                try await second.create(Self.user(email: "Bob@Example.com"))
            }
            #expect(duplicate.code == .duplicateEmail)

            #expect(try await second.delete(id: bob.id))
            #expect(try await first.user(id: bob.id) == nil)
            #expect(try await !first.delete(id: bob.id))
            #expect(try await first.count() == 0)
        }
    }

    @Test func theAPISeesUsersWrittenByAnotherInstance() async throws {
        try await withDataDirectory { directory in
            try await TestApp.run(AppConfiguration.test(directory: directory)) { _, client in
                #expect(try await client.stats().text == #"{"users":0}"#)
                let other = try await JSONFileUserStore(directory: directory)
                let bob = Self.user(email: "bob@example.com")
                try await other.create(bob)
                #expect(try await client.stats().text == #"{"users":1}"#)
                #expect(try await client.showUser(id: bob.id).user().email == "bob@example.com")
                // And the other way round.
                let created = try await client.createUser(email: "alice@example.com", password: "pw").user()
                #expect(try await other.user(id: created.id)?.email == "alice@example.com")
                try expectSomeError(try await client.createUser(email: "BOB@example.com", password: "pw"), .conflict)
            }
        }
    }

    @Test func aFileReplacedFromOutsideIsReloaded() async throws {
        try await withDataDirectory { directory in
            let store = try await JSONFileUserStore(directory: directory)
            try await store.create(Self.user(email: "bob@example.com"))
            #expect(try await store.count() == 1)
            // Another program (the Flask original, an operator) writes the file.
            try Self.write(Self.originalFile, to: Self.usersFile(directory))
            #expect(try await store.count() == 2)
            #expect(try await store.user(email: "bob@hbtn.io")?.firstName == "Bob")
            #expect(try await store.user(email: "bob@example.com") == nil)
        }
    }

    /// Logins, pages and the listing read indexes built once per version of the file: each must follow
    /// every change, by this instance, another one, or another program.
    @Test func derivedIndexesFollowEveryVersion() async throws {
        try await withDataDirectory { directory in
            let store = try await JSONFileUserStore(directory: directory)
            let other = try await JSONFileUserStore(directory: directory)
            var made: [User] = []
            for n in 0..<5 {
                let user = Self.user(email: "user\(n)@example.com")
                try await store.create(user)
                made.append(user)
            }
            #expect(try await store.user(email: "USER3@example.com") == made[3])
            #expect(try await store.allUsers().map(\.id) == made.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(\.id))
            let byID = made.map(\.id).sorted()
            #expect(try await store.users(page: 2, limit: 2).users.map(\.id) == Array(byID[2..<4]))
            #expect(try await store.users(page: 4, limit: 2).users.isEmpty)

            // Another instance adds, renames and deletes: the first one's indexes are rebuilt.
            let late = Self.user(email: "late@example.com")
            try await other.create(late)
            #expect(try await store.user(email: "late@example.com") == late)
            #expect(try await store.users(page: 1, limit: 10).total == 6)
            let all = try await store.allUsers()
            #expect(all.map(\.id) == (made + [late]).sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(\.id))
            #expect(try await other.delete(id: made[3].id))
            #expect(try await store.user(email: "user3@example.com") == nil)
            #expect(try await !store.allUsers().contains { $0.id == made[3].id })

            // Another program writes the file, with one email twice in two cases: the older user answers.
            let old = User(id: "b", email: "Dup@example.com", passwordHash: nil, createdAt: "2020-01-01T00:00:00", updatedAt: "2020-01-01T00:00:00")
            let new = User(id: "a", email: "dup@example.com", passwordHash: nil, createdAt: "2021-01-01T00:00:00", updatedAt: "2021-01-01T00:00:00")
            var text: [UInt8] = [UInt8(ascii: "{")]
            for (index, user) in [new, old].enumerated() {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                JSONText.writeString(user.id, into: &text)
                text.append(UInt8(ascii: ":"))
                user.writeJSON(into: &text)
            }
            text.append(UInt8(ascii: "}"))
            try Self.write(String(decoding: text, as: UTF8.self), to: Self.usersFile(directory))
            #expect(try await store.user(email: "DUP@example.com")?.id == "b")
            #expect(try await store.user(email: "user0@example.com") == nil)
            #expect(try await store.allUsers().map(\.id) == ["b", "a"])
            #expect(try await store.users(page: 1, limit: 1).users.map(\.id) == ["a"])
        }
    }
}
