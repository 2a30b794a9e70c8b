import Foundation
import Hummingbird
import NIOCore
import SessionAPI
import Synchronization
import Testing

/// `User.writeJSON` writes users by hand for speed: it must say exactly what the configured `JSONEncoder`
/// says, for the API's shape (no password) and for the original's file record (with `_password`).
@Suite struct UserJSONTests {
    static let awkwardStrings: [String?] = [
        nil, "", "plain", "quote \" and backslash \\", "slash / stays", "tab\tnew\nline\rcr", "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}",
        "héllo wörld", "日本語", "emoji 🎉👩‍👩‍👧", "\u{2028}\u{2029}", "</script>", String(repeating: "x", count: 5000),
    ]

    static func user(_ text: String?) -> User {
        User(
            id: "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb",
            email: text ?? "a@b.c",
            passwordHash: text.map { "$2b$04$" + $0 },
            firstName: text,
            lastName: text.map { $0 + "!" },
            createdAt: "2026-11-25T02:11:05",
            updatedAt: "2026-11-25T02:11:06"
        )
    }

    /// The original's record, every key with `null` for unset values, encoded by the encoder for comparison.
    struct StoredRecord: Encodable {
        let user: User

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: User.Field.self)
            for field in User.Field.allCases { try container.encode(self.user[field], forKey: field) }
        }
    }

    static func body(_ response: Response) async throws -> String {
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return String(buffer: writer.buffer.withLock { $0 })
    }

    @Test(arguments: awkwardStrings)
    func publicShapeIsWhatTheEncoderWrites(text: String?) async throws {
        let user = Self.user(text)
        let expected = try await Self.body(try JSONResponse.encode(UserResponse(user)))
        let written = try await Self.body(JSONResponse.user(user))
        #expect(written == expected)
        #expect(user.jsonString(.public) == expected)
        // And it reads back as the same user, without the hash.
        let decoded = try JSONDecoder().decode(UserResponse.self, from: Data(written.utf8))
        #expect(decoded == UserResponse(user))
        #expect(!written.contains("_password"))
    }

    @Test(arguments: awkwardStrings)
    func storedShapeIsWhatTheEncoderWrites(text: String?) throws {
        let user = Self.user(text)
        let expected = String(decoding: try JSONText.encoder.encode(StoredRecord(user: user)), as: UTF8.self)
        #expect(user.jsonString(.stored) == expected)
        // And the file's decoder reads it back as the same user.
        #expect(try JSONDecoder().decode(User.self, from: Data(expected.utf8)) == user)
    }

    @Test func listIsTheArrayOfUsers() async throws {
        let users = Self.awkwardStrings.map(Self.user)
        let expected = try await Self.body(try JSONResponse.encode(users.map(UserResponse.init)))
        #expect(try await Self.body(JSONResponse.users(users)) == expected)
        #expect(try await Self.body(JSONResponse.users([])) == "[]")
    }

    /// The user file is the object `id -> record` that the encoder would write, byte for byte.
    @Test func userFileIsWhatTheEncoderWrites() async throws {
        try await withDataDirectory { directory in
            let store = try await JSONFileUserStore(directory: directory)
            var users: [String: StoredRecord] = [:]
            for (index, text) in Self.awkwardStrings.enumerated() {
                var user = Self.user(text)
                user.id = "id-\(index)-\(text?.prefix(3) ?? "nil")"
                user.email = "user\(index)@example.com"
                try await store.create(user)
                users[user.id] = StoredRecord(user: user)
            }
            let onDisk = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + JSONFileUserStore.fileName))
            #expect(String(decoding: onDisk, as: UTF8.self) == String(decoding: try JSONText.encoder.encode(users), as: UTF8.self))
        }
    }
}

/// A response body writer that keeps what is written.
final class CollectingWriter: ResponseBodyWriter, Sendable {
    let buffer = Mutex(ByteBuffer())

    func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        self.buffer.withLock { _ = $0.writeBuffer(&buffer) }
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
