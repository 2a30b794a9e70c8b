/// Where users live. Implementations: `JSONFileUserStore` (the default), `RedisUserStore`.
///
/// Emails are unique case-insensitively across every process sharing the store.
/// All methods throw `StoreError` (`.unavailable` when the backing service cannot answer).
package protocol UserStore: Sendable {
    func count() async throws -> Int
    func allUsers() async throws -> [User]
    func user(id: String) async throws -> User?
    /// The user whose email equals `email` ignoring case.
    func user(email: String) async throws -> User?
    /// Adds a new user. - Throws: `StoreError.duplicateEmail` when the email is taken.
    func create(_ user: User) async throws
    /// Sets the names that are non-nil and `updated_at`; returns the updated user, `nil` when absent.
    func update(id: String, firstName: String?, lastName: String?, updatedAt: String) async throws -> User?
    /// Sets the user's password hash to `newHash` if it is still `expectedHash` (so an upgrade on login never
    /// undoes a password change that happened meanwhile); `false` when it was not (or there is no such user).
    func replacePasswordHash(id: String, expected expectedHash: String?, with newHash: String) async throws -> Bool
    /// Removes a user; `false` when there was none.
    func delete(id: String) async throws -> Bool
    /// Throws when the store cannot serve requests now (for `/readyz`).
    func checkReady() async throws
}
