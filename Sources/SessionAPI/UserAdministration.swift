import Logging

/// What `session-api user ...` and the user routes both do, kept in the library so the CLI and HTTP make
/// and change users the same way, with the same rules for what a user may hold.
package enum UserAdministration {
    /// A problem with the input, reported to the operator as one line (and by the API as a 400).
    package struct InputError: Error, CustomStringConvertible {
        package let description: String
    }

    /// The longest email, in UTF-8 bytes (RFC 5321's 64-byte local part, `@`, 255-byte domain).
    package static let maximumEmailBytes = 320
    /// The longest first or last name, in Unicode scalars (so combining marks count too).
    package static let maximumNameLength = 256

    /// Creates a user in the configured store: what `POST /api/v1/users` and `session-api user create` both do.
    /// - Throws: `InputError` (its text is the API's 400 message), `StoreError.duplicateEmail`, other `StoreError`s.
    package static func createUser(
        email: String,
        password: String,
        firstName: String?,
        lastName: String?,
        users: any UserStore,
        hasher: PasswordHasher
    ) async throws -> User {
        guard !email.isEmpty else { throw InputError(description: "email missing") }
        guard !password.isEmpty else { throw InputError(description: "password missing") }
        try Self.checkEmail(email)
        if let problem = PasswordHasher.problem(with: password) { throw InputError(description: problem) }
        try Self.checkName(firstName, field: "first_name")
        try Self.checkName(lastName, field: "last_name")
        let now = Timestamp.string()
        let user = User(
            id: RandomID.make(),
            email: email,
            passwordHash: try await hasher.hash(password),
            firstName: firstName,
            lastName: lastName,
            createdAt: now,
            updatedAt: now
        )
        try await users.create(user)
        return user
    }

    /// Sets the names that are not `nil` (and `updated_at`); `nil` when there is no such user.
    /// - Throws: `InputError` for a name that is too long, `StoreError`s.
    package static func updateUser(id: String, firstName: String?, lastName: String?, users: any UserStore) async throws -> User? {
        try Self.checkName(firstName, field: "first_name")
        try Self.checkName(lastName, field: "last_name")
        return try await users.update(id: id, firstName: firstName, lastName: lastName, updatedAt: Timestamp.string())
    }

    /// An email as given is kept for display; it must be one line of text with exactly one `@` between a
    /// non-empty name and domain, and at most 320 bytes. (Uniqueness uses `User.normalizedEmail`.)
    static func checkEmail(_ email: String) throws {
        guard email.utf8.count <= Self.maximumEmailBytes else { throw InputError(description: "email too long") }
        guard !email.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) else {
            throw InputError(description: "email must not contain control characters")
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw InputError(description: "email must have one @ between a name and a domain")
        }
    }

    static func checkName(_ name: String?, field: String) throws {
        guard let name, name.unicodeScalars.count > Self.maximumNameLength else { return }
        throw InputError(description: "\(field) too long (at most \(Self.maximumNameLength) characters)")
    }
}
