import Logging

/// What `session-api user ...` does, kept in the library so the CLI and HTTP make users the same way.
package enum UserAdministration {
    /// A problem with the input, reported to the operator as one line.
    package struct InputError: Error, CustomStringConvertible {
        package let description: String
    }

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
        guard email.utf8.count <= 320 else { throw InputError(description: "email too long") }
        guard password.utf8.count <= PasswordHasher.maximumPasswordBytes else {
            throw InputError(description: "password too long (at most \(PasswordHasher.maximumPasswordBytes) bytes)")
        }
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
}
