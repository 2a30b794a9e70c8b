import Crypto
import Foundation
import Synchronization

/// Basic credentials that were verified recently, so that a client sending them on every request does not
/// cost a password hash (tens of milliseconds of CPU) on every request.
///
/// Entries are keyed by an HMAC-SHA256 of the credentials under a key drawn at random when the process starts,
/// never by the password or a plain hash of it: a memory dump gives nothing to test guesses against offline.
/// An entry holds the user's id and the password hash it was verified against: when the stored hash changes
/// (a new password, an upgrade) or the user is gone, the entry no longer matches. Wrong passwords are never
/// stored. At most `capacity` entries, each for `lifetime`.
package final class BasicCredentialCache: Sendable {
    private struct Entry {
        let userID: String
        let passwordHash: String?
        let expires: ContinuousClock.Instant
    }

    /// The HMAC key's bytes (32, random, this process's only; `SymmetricKey` itself is not `Sendable`).
    private let key: [UInt8] = {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }()
    private let lifetime: Duration
    private let capacity: Int
    private let entries = Mutex<[Data: Entry]>([:])

    package init(lifetime: Duration, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    private func tag(email: String, password: String) -> Data {
        var message = Data()
        withUnsafeBytes(of: UInt64(email.utf8.count).bigEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: email.utf8)
        message.append(contentsOf: password.utf8)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: self.key)))
    }

    /// Whether these credentials were verified for `user`, as it is stored now, within the lifetime.
    package func contains(email: String, password: String, for user: User) -> Bool {
        let tag = self.tag(email: email, password: password)
        let now = ContinuousClock.now
        return self.entries.withLock { entries in
            guard let entry = entries[tag] else { return false }
            guard entry.expires > now, entry.userID == user.id, entry.passwordHash == user.passwordHash else {
                entries[tag] = nil
                return false
            }
            return true
        }
    }

    /// Remembers that these credentials are `user`'s password (call only after a successful check).
    package func insert(email: String, password: String, for user: User) {
        let tag = self.tag(email: email, password: password)
        let now = ContinuousClock.now
        let entry = Entry(userID: user.id, passwordHash: user.passwordHash, expires: now + self.lifetime)
        self.entries.withLock { entries in
            if entries.count >= self.capacity {
                entries = entries.filter { $0.value.expires > now }
                if entries.count >= self.capacity, let soonest = entries.min(by: { $0.value.expires < $1.value.expires })?.key {
                    entries[soonest] = nil
                }
            }
            entries[tag] = entry
        }
    }

    /// Forgets every entry of `userID` (its password changed, or it was deleted).
    package func remove(userID: String) {
        self.entries.withLock { entries in entries = entries.filter { $0.value.userID != userID } }
    }
}
