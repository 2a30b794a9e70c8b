/// A user as stored: the Flask original's record, password hash included. Never encoded into a response.
package struct User: Sendable, Equatable, Codable {
    package var id: String
    package var email: String
    /// bcrypt hash for users made here; hex SHA-256 for users from the original's files; `nil` cannot log in.
    package var passwordHash: String?
    package var firstName: String?
    package var lastName: String?
    /// `YYYY-MM-DDTHH:MM:SS`, UTC, as the original writes it.
    package var createdAt: String
    package var updatedAt: String

    package init(
        id: String,
        email: String,
        passwordHash: String?,
        firstName: String? = nil,
        lastName: String? = nil,
        createdAt: String,
        updatedAt: String
    ) {
        self.id = id
        self.email = email
        self.passwordHash = passwordHash
        self.firstName = firstName
        self.lastName = lastName
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case email
        case passwordHash = "_password"
        case firstName = "first_name"
        case lastName = "last_name"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Decodes a record of the original's `.db_User.json`; a missing `id` is filled in by the file's key.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.id = try container.decodeIfPresent(String.self, forKey: .id) ?? ""
        self.email = try container.decode(String.self, forKey: .email)
        self.passwordHash = try container.decodeIfPresent(String.self, forKey: .passwordHash)
        self.firstName = try container.decodeIfPresent(String.self, forKey: .firstName)
        self.lastName = try container.decodeIfPresent(String.self, forKey: .lastName)
        self.createdAt = try container.decode(String.self, forKey: .createdAt)
        self.updatedAt = try container.decode(String.self, forKey: .updatedAt)
        guard Timestamp.isValid(self.createdAt), Timestamp.isValid(self.updatedAt) else {
            throw DecodingError.dataCorruptedError(
                forKey: .createdAt,
                in: container,
                debugDescription: "timestamps must be YYYY-MM-DDTHH:MM:SS"
            )
        }
    }

    /// Encodes every field, `null` included, as the original's files hold them.
    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.email, forKey: .email)
        try container.encode(self.passwordHash, forKey: .passwordHash)
        try container.encode(self.firstName, forKey: .firstName)
        try container.encode(self.lastName, forKey: .lastName)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }

    /// The key under which emails are unique: one email, one account, whatever its case.
    package static func normalizedEmail(_ email: String) -> String {
        email.lowercased()
    }
}
