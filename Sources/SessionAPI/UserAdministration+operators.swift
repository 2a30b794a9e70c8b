/// What the operator's commands (`session-api user show | delete | set-password`) do, shared with the routes
/// where a route does the same thing (`DELETE /api/v1/users/:id`).
extension UserAdministration {
    /// The user an operator names: by id, else (when the text has an `@`) by email, compared as logins compare it.
    /// - Throws: `StoreError`s.
    package static func findUser(_ reference: String, users: any UserStore) async throws -> User? {
        if let user = try await users.user(id: reference) { return user }
        guard reference.contains("@") else { return nil }
        return try await users.user(email: reference)
    }

    /// Deletes a user, then every session it had, so none of its cookies works any more: what
    /// `DELETE /api/v1/users/:id` and `session-api user delete` both do.
    /// - Parameter sessions: the session store, `nil` when the auth mode keeps none (or none another process can reach).
    /// - Returns: how many sessions ended; `nil` when there is no such user.
    /// - Throws: `StoreError`s (the user may be gone while its sessions were not ended: they name no user and are refused).
    package static func deleteUser(id: String, users: any UserStore, sessions: (any SessionStore)?) async throws -> Int? {
        guard try await users.delete(id: id) else { return nil }
        return try await sessions?.deleteSessions(userID: id, keeping: nil) ?? 0
    }

    /// Gives a user a new password, checked and hashed (Argon2id) as the API does it, and ends the user's sessions
    /// (a password is reset because it may be known to someone else) unless `sessions` is `nil`.
    ///
    /// The hash is replaced by compare-and-set against the one just read, as a login's upgrade replaces it: if it
    /// changed meanwhile (a login upgraded it, another operator set one), the user is read again and the new
    /// password replaces that one, so the operator's password is the one that stays.
    /// - Returns: the updated user and how many sessions ended; `nil` when there is no such user (or it was
    ///   deleted meanwhile).
    /// - Throws: `InputError` for a password that cannot be used, `PasswordHasher` errors, `StoreError`s (also
    ///   `.unavailable` when the hash kept changing under it).
    package static func setPassword(
        id: String,
        password: String,
        users: any UserStore,
        hasher: PasswordHasher,
        sessions: (any SessionStore)?
    ) async throws -> (user: User, endedSessions: Int)? {
        guard !password.isEmpty else { throw InputError(description: "password missing") }
        if let problem = PasswordHasher.problem(with: password) { throw InputError(description: problem) }
        let hash = try await hasher.hash(password)
        for _ in 0..<Self.passwordAttempts {
            guard var user = try await users.user(id: id) else { return nil }
            let updatedAt = Timestamp.string()
            guard try await users.replacePasswordHash(id: id, expected: user.passwordHash, with: hash, updatedAt: updatedAt) else { continue }
            user.passwordHash = hash
            user.updatedAt = updatedAt
            let ended = try await sessions?.deleteSessions(userID: id, keeping: nil) ?? 0
            return (user, ended)
        }
        throw StoreError(.unavailable, "the user's password hash kept changing; try again")
    }

    /// How often `setPassword` reads the user again after its compare-and-set lost a race.
    private static let passwordAttempts = 5
}
