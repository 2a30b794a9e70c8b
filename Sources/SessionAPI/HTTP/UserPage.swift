import HTTPTypes
import Hummingbird

/// `?limit=N&page=P` of `GET /api/v1/users`: `limit` 1-1000 (100 when only `page` is given), `page` from 1
/// (1 when only `limit` is given). A value that is not such a whole number is 400 with a message naming it.
struct UserPage: Equatable {
    static let maximumLimit = 1000
    static let defaultLimit = 100

    let number: Int
    let limit: Int

    /// `nil` when the query asks for no page (neither parameter).
    init?(_ query: Parameters) throws(APIError) {
        let limit = query["limit"].map(String.init)
        let page = query["page"].map(String.init)
        if limit == nil, page == nil { return nil }
        self.limit = try Self.number(limit, name: "limit", range: 1...Self.maximumLimit) ?? Self.defaultLimit
        self.number = try Self.number(page, name: "page", range: 1...1_000_000) ?? 1
    }

    private static func number(_ text: String?, name: String, range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let text else { return nil }
        guard text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let value = Int(text), range.contains(value) else {
            throw APIError(.badRequest, message: "\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

extension HTTPField.Name {
    /// The number of users in all, beside a page of them.
    static let xTotalCount = Self("X-Total-Count")!
}
