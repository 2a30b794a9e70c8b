import Foundation
import Hummingbird

/// JSON bodies as the API writes them: compact, keys sorted, `/` unescaped.
package enum JSONResponse {
    /// One encoder for every response (JSONEncoder is thread-safe once configured).
    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// `{"status":"OK"}`, encoded once: the body of `/api/v1/status` and the health probes.
    private static let statusOKBody = ByteBuffer(string: #"{"status":"OK"}"#)

    /// A 200 response with the body `{"status":"OK"}`.
    package static func statusOK() -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: Self.statusOKBody))
    }

    /// A response with `value` as its JSON body.
    package static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try Self.encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
