import Hummingbird
import NIOCore

/// Users as JSON bytes, written directly: the hot path (`/users/me`) answers one of these per request,
/// and going through `JSONEncoder` cost about a tenth of the request. The output is what
/// `JSONResponse.encode(UserResponse)` writes (sorted keys, `null` names, `/` unescaped); the tests
/// compare the two on awkward strings.
package enum UserJSON {
    /// A 200 (or `status`) response whose body is `user` as JSON.
    package static func response(_ user: UserResponse, status: HTTPResponse.Status = .ok) -> Response {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(256)
        Self.write(user, into: &buffer)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    /// A 200 response whose body is the JSON array of `users`.
    package static func response(_ users: [UserResponse]) -> Response {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64 + users.count * 200)
        buffer.writeStaticString("[")
        for (index, user) in users.enumerated() {
            if index > 0 { buffer.writeStaticString(",") }
            Self.write(user, into: &buffer)
        }
        buffer.writeStaticString("]")
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }

    /// Appends `{"created_at":…,"email":…,"first_name":…,"id":…,"last_name":…,"updated_at":…}`.
    package static func write(_ user: UserResponse, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"created_at":"#)
        Self.writeString(user.createdAt, into: &buffer)
        buffer.writeStaticString(#","email":"#)
        Self.writeString(user.email, into: &buffer)
        buffer.writeStaticString(#","first_name":"#)
        Self.writeString(user.firstName, into: &buffer)
        buffer.writeStaticString(#","id":"#)
        Self.writeString(user.id, into: &buffer)
        buffer.writeStaticString(#","last_name":"#)
        Self.writeString(user.lastName, into: &buffer)
        buffer.writeStaticString(#","updated_at":"#)
        Self.writeString(user.updatedAt, into: &buffer)
        buffer.writeStaticString("}")
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string (RFC 8259): `"` and `\` escaped, control characters as `\n`-style or `\u00XX` escapes,
    /// everything else as its UTF-8 bytes; `nil` is `null`.
    static func writeString(_ text: String?, into buffer: inout ByteBuffer) {
        guard let text else {
            buffer.writeStaticString("null")
            return
        }
        buffer.writeStaticString("\"")
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            buffer.writeString(text)
        } else {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString(#"\""#)
                case UInt8(ascii: "\\"): buffer.writeStaticString(#"\\"#)
                case 0x08: buffer.writeStaticString(#"\b"#)
                case 0x0C: buffer.writeStaticString(#"\f"#)
                case 0x0A: buffer.writeStaticString(#"\n"#)
                case 0x0D: buffer.writeStaticString(#"\r"#)
                case 0x09: buffer.writeStaticString(#"\t"#)
                case 0..<0x20:
                    buffer.writeStaticString(#"\u00"#)
                    buffer.writeInteger(Self.hexDigits[Int(byte >> 4)])
                    buffer.writeInteger(Self.hexDigits[Int(byte & 0x0F)])
                default:
                    buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeStaticString("\"")
    }
}
