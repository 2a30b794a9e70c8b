import Foundation
import Hummingbird

/// Responses with a JSON body, as the API writes them (see `JSONText`).
package enum JSONResponse {
    /// `{"status":"OK"}`, encoded once: the body of `/api/v1/status` and the health probes.
    private static let statusOKBody = ByteBuffer(string: #"{"status":"OK"}"#)

    /// A 200 response with the body `{"status":"OK"}`.
    package static func statusOK() -> Response {
        Self.response(.ok, body: Self.statusOKBody)
    }

    /// A response with `value` as its JSON body.
    package static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Self.response(status, body: ByteBuffer(bytes: try JSONText.encoder.encode(value)))
    }

    /// A response whose body is `user` as clients see it (no password hash).
    package static func user(_ user: User, status: HTTPResponse.Status = .ok) -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        user.writeJSON(.public, into: &bytes)
        return Self.response(status, body: ByteBuffer(bytes: bytes))
    }

    /// A 200 response whose body is the JSON array of `users` as clients see them.
    package static func users(_ users: [User]) -> Response {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + users.count * 200)
        User.writeJSON(users, .public, into: &bytes)
        return Self.response(.ok, body: ByteBuffer(bytes: bytes))
    }

    private static func response(_ status: HTTPResponse.Status, body: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
