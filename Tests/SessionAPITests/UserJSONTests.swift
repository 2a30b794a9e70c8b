import Foundation
import Hummingbird
import NIOCore
import SessionAPI
import Synchronization
import Testing

/// `UserJSON` writes users by hand for speed: it must say exactly what `JSONEncoder` says.
@Suite struct UserJSONTests {
    static let awkwardStrings: [String?] = [
        nil, "", "plain", "quote \" and backslash \\", "slash / stays", "tab\tnew\nline\rcr", "\u{0}\u{1}\u{8}\u{C}\u{1F}\u{7F}",
        "héllo wörld", "日本語", "emoji 🎉👩‍👩‍👧", "\u{2028}\u{2029}", "</script>", String(repeating: "x", count: 5000),
    ]

    static func user(_ text: String?) -> UserResponse {
        UserResponse(
            User(
                id: "3c84c31b-67cf-49c3-b32c-e9de28f7a8eb",
                email: text ?? "a@b.c",
                passwordHash: "secret",
                firstName: text,
                lastName: text.map { $0 + "!" },
                createdAt: "2026-11-25T02:11:05",
                updatedAt: "2026-11-25T02:11:06"
            )
        )
    }

    static func body(_ response: Response) async throws -> String {
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return String(buffer: writer.buffer.withLock { $0 })
    }

    @Test(arguments: awkwardStrings)
    func sameBytesAsJSONEncoder(text: String?) async throws {
        let user = Self.user(text)
        let expected = try await Self.body(try JSONResponse.encode(user))
        let written = try await Self.body(UserJSON.response(user))
        #expect(written == expected)
        // And it reads back as the same user.
        let decoded = try JSONDecoder().decode(UserResponse.self, from: Data(written.utf8))
        #expect(decoded == user)
    }

    @Test func listIsTheArrayOfUsers() async throws {
        let users = Self.awkwardStrings.map(Self.user)
        let expected = try await Self.body(try JSONResponse.encode(users))
        #expect(try await Self.body(UserJSON.response(users)) == expected)
        #expect(try await Self.body(UserJSON.response([])) == "[]")
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
