/// Where users live. Implementations: `JSONFileUserStore` (the default), `RedisUserStore`.
///
/// Emails are unique case-insensitively across every process sharing the store.
/// All methods throw `StoreError` (`.unavailable` when the backing service cannot answer).
package protocol UserStore: Sendable {
    func count() async throws -> Int
    func allUsers() async throws -> [User]
    /// One page of the users in id order (`page` from 1), and how many users there are in all.
    func users(page: Int, limit: Int) async throws -> (users: [User], total: Int)
    func user(id: String) async throws -> User?
    /// The user whose email equals `email` ignoring case.
    func user(email: String) async throws -> User?
    /// Adds a new user. - Throws: `StoreError.duplicateEmail` when the email is taken.
    func create(_ user: User) async throws
    /// Sets the names that are non-nil and `updated_at`; returns the updated user, `nil` when absent.
    func update(id: String, firstName: String?, lastName: String?, updatedAt: String) async throws -> User?
    /// Sets the user's password hash to `newHash` if it is still `expectedHash` (so an upgrade on login never
    /// undoes a password change that happened meanwhile, and a password change never undoes another); `false`
    /// when it was not (or there is no such user). With `updatedAt`, `updated_at` too (a password change: the
    /// CLI's `set-password`); `nil` leaves it (an upgrade of the hash, which changes nothing about the user).
    func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String, updatedAt: String?) async throws -> Bool
    /// Removes a user; `false` when there was none.
    func delete(id: String) async throws -> Bool
    /// Throws when the store cannot serve requests now (for `/readyz`).
    func checkReady() async throws
}

extension UserStore {
    /// The page out of `allUsers()`: right for a store that holds every user in memory anyway.
    package func users(page: Int, limit: Int) async throws -> (users: [User], total: Int) {
        let all = try await self.allUsers().sorted { $0.id < $1.id }
        return (Array(all.dropFirst((page - 1) * limit).prefix(limit)), all.count)
    }

    /// `replacePasswordHash(id:expected:with:updatedAt:)` leaving `updated_at` as it is (a hash upgrade on login).
    package func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String) async throws -> Bool {
        try await self.replacePasswordHash(id: id, expected: expectedHash, with: newHash, updatedAt: nil)
    }
}
