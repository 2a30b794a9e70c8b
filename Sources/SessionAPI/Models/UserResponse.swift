import Foundation
import Hummingbird

/// The public JSON shape of a user: no password, names `null` when unset, never omitted.
package struct UserResponse: ResponseEncodable, Equatable, Decodable {
    package let id: String
    package let email: String
    package let firstName: String?
    package let lastName: String?
    package let createdAt: String
    package let updatedAt: String

    package init(_ user: User) {
        self.id = user.id
        self.email = user.email
        self.firstName = user.firstName
        self.lastName = user.lastName
        self.createdAt = user.createdAt
        self.updatedAt = user.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case email
        case firstName = "first_name"
        case lastName = "last_name"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.email, forKey: .email)
        try container.encode(self.firstName, forKey: .firstName)
        try container.encode(self.lastName, forKey: .lastName)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

extension UserResponse {
    /// The user as the API would send it (sorted keys), for CLI output.
    package func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
