import Foundation
import Hummingbird

/// JSON bodies as the API writes them: compact, keys sorted, `/` unescaped.
package enum JSONResponse {
    /// A response with `value` as its JSON body.
    package static func encode(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
