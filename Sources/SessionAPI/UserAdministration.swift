import Logging

/// What `session-api user ...` does, kept in the library so the CLI and HTTP make users the same way.
package enum UserAdministration {
    /// A problem with the input, reported to the operator as one line.
    package struct InputError: Error, CustomStringConvertible {
        package let description: String
    }

    /// Creates a user in the configured store, exactly as `POST /api/v1/users` does.
    package static func createUser(
        email: String,
        password: String,
        firstName: String?,
        lastName: String?,
        stores: AppStores,
        hasher: PasswordHasher
    ) async throws -> User {
        guard !email.isEmpty else { throw InputError(description: "email missing") }
        guard !password.isEmpty else { throw InputError(description: "password missing") }
        guard password.utf8.count <= PasswordHasher.maximumPasswordBytes else {
            throw InputError(description: "password too long (at most \(PasswordHasher.maximumPasswordBytes) bytes)")
        }
        let now = Timestamp.string()
        let user = User(
            id: SessionID.generate(),
            email: email,
            passwordHash: try await hasher.hash(password),
            firstName: firstName,
            lastName: lastName,
            createdAt: now,
            updatedAt: now
        )
        try await stores.users.create(user)
        return user
    }
}
