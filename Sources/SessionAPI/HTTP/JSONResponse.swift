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
