import Foundation
import Hummingbird

/// Reading request bodies with the API's limits and error messages.
enum RequestBody {
    /// A JSON object body decoded as `T`; anything else (not JSON, not an object, wrong field types,
    /// not UTF-8) is 400 "Wrong format". Bodies over the context's limit are 413.
    static func json<T: Decodable>(_ type: T.Type, from request: Request, context: AppRequestContext) async throws -> T {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        // JSON text is UTF-8 (RFC 8259); the decoder only checks the strings it decodes, so check it all.
        guard String(validating: buffer.readableBytesView, as: UTF8.self) != nil else {
            throw APIError(.badRequest, message: "Wrong format")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError(.badRequest, message: "Wrong format")
        }
    }

    /// Form fields (`application/x-www-form-urlencoded`, as the original reads `request.form`), or a
    /// JSON object when the content type says JSON.
    static func form<T: Decodable>(_ type: T.Type, from request: Request, context: AppRequestContext) async throws -> T {
        if let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("application/json") {
            return try await Self.json(T.self, from: request, context: context)
        }
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        guard let text = String(validating: buffer.readableBytesView, as: UTF8.self) else {
            throw APIError(.badRequest, message: "Wrong format")
        }
        do {
            return try URLEncodedFormDecoder().decode(T.self, from: text)
        } catch {
            throw APIError(.badRequest, message: "Wrong format")
        }
    }
}
