import Foundation
import Hummingbird

/// Reading request bodies with the API's limits and error messages.
enum RequestBody {
    /// A JSON object body decoded as `T`. The body is read only under a JSON media type (see `isJSON`):
    /// anything else, or no `Content-Type`, is 400 "Wrong format" before a byte is read, as Flask's
    /// `request.get_json()` answers, and so a cross-site `text/plain` form cannot drive the API.
    /// Not JSON, not an object, wrong field types or not UTF-8 are 400 "Wrong format" too;
    /// bodies over the context's limit are 413.
    static func json<T: Decodable>(_ type: T.Type, from request: Request, context: AppRequestContext) async throws -> T {
        guard Self.isJSON(contentType: request.headers[.contentType]) else {
            throw APIError(.badRequest, message: "Wrong format")
        }
        return try await Self.decodeJSON(T.self, from: request, context: context)
    }

    /// The login fields: form fields under `application/x-www-form-urlencoded` (as the original reads
    /// `request.form`), a JSON object under a JSON media type, nothing at all without a `Content-Type`
    /// (so the route answers "email missing", as the original's empty `request.form` does).
    /// Any other type (multipart, `text/plain`, ...) is 400 "Wrong format".
    static func form<T: Decodable>(_ type: T.Type, from request: Request, context: AppRequestContext) async throws -> T {
        let contentType = request.headers[.contentType]
        if Self.isJSON(contentType: contentType) {
            return try await Self.decodeJSON(T.self, from: request, context: context)
        }
        let text: String
        switch contentType.map(Self.mediaType) {
        case nil:
            text = ""
        case "application/x-www-form-urlencoded":
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            guard let decoded = String(validating: buffer.readableBytesView, as: UTF8.self) else {
                throw APIError(.badRequest, message: "Wrong format")
            }
            text = decoded
        default:
            throw APIError(.badRequest, message: "Wrong format")
        }
        do {
            return try URLEncodedFormDecoder().decode(T.self, from: text)
        } catch {
            throw APIError(.badRequest, message: "Wrong format")
        }
    }

    /// Whether a `Content-Type` names JSON: `application/json` or `application/<anything>+json`, any case,
    /// parameters (`; charset=utf-8`) ignored. The same rule as werkzeug's `Request.is_json`.
    static func isJSON(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let type = Self.mediaType(contentType)
        return type == "application/json" || (type.hasPrefix("application/") && type.hasSuffix("+json") && type.count > "application/+json".count)
    }

    /// The media type of a `Content-Type` value: before any `;`, trimmed, lower-cased.
    private static func mediaType(_ contentType: String) -> String {
        let type = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return type.trimmingCharacters(in: .whitespaces).lowercased()
    }

    private static func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request, context: AppRequestContext) async throws -> T {
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
}
