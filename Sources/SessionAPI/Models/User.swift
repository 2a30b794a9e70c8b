import Foundation

/// A user as stored: the Flask original's record, password hash included.
///
/// Its fields are listed once, in `User.Field`: the JSON file's keys, the API's JSON keys and the Redis
/// hash's field names all come from there (see `User+JSON.swift` and `RedisUserStore`).
package struct User: Sendable, Equatable {
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

    /// The key under which emails are unique and looked up (the address itself is kept as given, for display):
    /// NFKC, full Unicode case folding, NFKC again (Unicode's NFKC_Casefold, less its removal of ignorables).
    /// So `Bob@Example.com`, `bob@example.com`, `\u{212A}@x.y` (Kelvin sign) and `ｋ@x.y` (full-width) name one
    /// account each way they are written, and `Straße@x.y` is `strasse@x.y`. For ASCII, the lower-cased text.
    package static func normalizedEmail(_ email: String) -> String {
        if email.utf8.allSatisfy({ $0 < 0x80 }) { return email.lowercased() }
        return email.precomposedStringWithCompatibilityMapping.folding(options: .caseInsensitive, locale: nil)
            .precomposedStringWithCompatibilityMapping
    }
}

// MARK: - Fields

extension User {
    /// Every field of a user under its stored name, in sorted order (the order a sorted-keys encoder writes).
    package enum Field: String, CaseIterable, CodingKey, Sendable {
        case passwordHash = "_password"
        case createdAt = "created_at"
        case email
        case firstName = "first_name"
        case id
        case lastName = "last_name"
        case updatedAt = "updated_at"

        /// Whether the field leaves the server (the password hash never does).
        package var isPublic: Bool { self != .passwordHash }
    }

    /// The value of `field`; `nil` for a name or hash that is unset.
    package subscript(field: Field) -> String? {
        switch field {
        case .passwordHash: self.passwordHash
        case .createdAt: self.createdAt
        case .email: self.email
        case .firstName: self.firstName
        case .id: self.id
        case .lastName: self.lastName
        case .updatedAt: self.updatedAt
        }
    }

    /// A user from its fields by stored name (a Redis hash, say); `nil` when the id, email or a timestamp
    /// is missing (names and the hash may be unset).
    package init?(fields value: (Field) -> String?) {
        guard let id = value(.id), let email = value(.email), let createdAt = value(.createdAt), let updatedAt = value(.updatedAt) else {
            return nil
        }
        self.init(
            id: id,
            email: email,
            passwordHash: value(.passwordHash),
            firstName: value(.firstName),
            lastName: value(.lastName),
            createdAt: createdAt,
            updatedAt: updatedAt
        )
    }
}

// MARK: - The original's file format

extension User: Decodable {
    /// Decodes a record of the original's `.db_User.json`; a missing `id` is filled in by the file's key.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Field.self)
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
}
