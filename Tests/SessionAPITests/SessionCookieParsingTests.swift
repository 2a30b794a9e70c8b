import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import SessionAPI
import Testing

/// The byte-level helpers of every authenticated request: reading the session cookie out of `Cookie` headers,
/// a session's handle (the SHA-256 hex Redis keys it by), the id's shape check and JSON string escaping.
@Suite struct SessionCookieParsingTests {
    static let cookie = SessionCookie(name: "_my_session_id", secure: false)

    static func value(_ headers: [String]) -> SessionCookie.Value {
        var fields = HTTPFields()
        for header in headers { fields.append(HTTPField(name: .cookie, value: header)) }
        let request = Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/api/v1/users/me", headerFields: fields),
            body: .init(buffer: ByteBuffer())
        )
        return Self.cookie.value(in: request)
    }

    @Test(arguments: [
        (["_my_session_id=abc"], SessionCookie.Value.one("abc")),
        (["a=1; _my_session_id=abc; b=2"], .one("abc")),
        (["a=1;_my_session_id=abc"], .one("abc")),
        (["a=1; \t_my_session_id=abc"], .one("abc")),
        (["_my_session_id="], .one("")),
        (["_my_session_id=abc; _my_session_id=abc"], .one("abc")),
        (["_my_session_id=abc", "x=y", "_my_session_id=abc"], .one("abc")),
        (["_my_session_id=abc; _my_session_id=abd"], .conflicting),
        (["_my_session_id=abc", "_my_session_id=abd"], .conflicting),
        (["_my_session_id2=abc; x_my_session_id=abc; _my_session_id"], .absent),
        (["_my_session_i=abc"], .absent),
        ([], .absent),
        (["_my_session_id=é-ü; z=1"], .one("é-ü")),
    ])
    func readsTheCookieFromEveryHeader(headers: [String], expected: SessionCookie.Value) {
        #expect(Self.value(headers) == expected)
    }

    @Test func aHandleIsTheSHA256HexOfTheID() {
        let id = "5d0c3c6a-1111-4222-8333-444455556666"
        let expected = SHA256.hash(data: Array(id.utf8)).map { String(format: "%02x", $0) }.joined()
        #expect(SessionID.handle(of: id) == expected)
        #expect(SessionID.handle(of: "x" + id + "x").count == 64)
        // From a slice of a longer string, as the cookie's value is.
        let header = "a=1; _my_session_id=\(id); b=2"
        #expect(SessionID.handle(of: header.dropFirst(20).prefix(36)) == expected)
        #expect(SessionID.handle(of: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect([UInt8](arrayLiteral: 0, 15, 16, 255).hexString == "000f10ff")
    }

    @Test(arguments: [
        ("5d0c3c6a-1111-4222-8333-444455556666", true),
        ("5D0C3C6A-1111-4222-8333-44445555666F", true),
        ("5d0c3c6a-1111-4222-8333-44445555666", false),
        ("5d0c3c6a-1111-4222-8333-4444555566667", false),
        ("5d0c3c6a_1111-4222-8333-444455556666", false),
        ("5d0c3c6g-1111-4222-8333-444455556666", false),
        ("", false),
    ])
    func anIDHasTheShapeOfAUUID(text: String, wellFormed: Bool) {
        #expect(SessionID.isWellFormed(text) == wellFormed)
        #expect(SessionID.isWellFormed(("[" + text + "]").dropFirst().dropLast()) == wellFormed)
    }

    @Test(arguments: [
        ("plain", #""plain""#),
        ("", #""""#),
        ("a\"b\\c/d", #""a\"b\\c/d""#),
        ("\u{08}\u{0C}\n\r\t\u{01}\u{1F}", #""\b\f\n\r\t\u0001\u001f""#),
        ("é☃︎😀", "\"é☃︎😀\""),
    ])
    func jsonStringsAreEscapedAsTheEncoderDoes(text: String, json: String) throws {
        var output: [UInt8] = []
        JSONText.writeString(text, into: &output)
        #expect(String(decoding: output, as: UTF8.self) == json)
        #expect(output == Array(try JSONText.encoder.encode(text)))
    }
}
