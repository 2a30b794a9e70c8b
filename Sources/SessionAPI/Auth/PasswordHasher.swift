import Crypto
import HummingbirdBcrypt
import NIOCore
import NIOPosix
import Synchronization

/// Hashes new passwords with bcrypt and checks passwords against stored hashes.
///
/// bcrypt costs ~200 ms at cost 12, so it runs on its own thread pool: never on an event loop, and never
/// on the pool that does the stores' file I/O (a burst of logins must not stall every other request).
/// Hashes from the Flask original (hex SHA-256) are still accepted, so its users can log in.
package struct PasswordHasher: Sendable {
    /// bcrypt only reads the first 72 bytes of a password; longer ones are refused rather than truncated.
    package static let maximumPasswordBytes = 72

    /// A pool for password hashing only, started once per process like NIO's own singletons.
    private static let hashingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    package let cost: Int
    /// How many hashes may wait or run at once; past that a request fails at once with
    /// `PasswordHasher.Overloaded` (503, Retry-After) instead of queueing without bound in a login flood.
    package let maximumQueued: Int
    private let queued = QueueGauge()

    package init(cost: Int, maximumQueued: Int = 64 * System.coreCount) {
        self.cost = cost
        self.maximumQueued = maximumQueued
    }

    /// A bcrypt hash of `password`, computed on the hashing pool.
    /// - Throws: `Overloaded` when too many hashes are queued.
    package func hash(_ password: String) async throws -> String {
        let cost = UInt8(clamping: self.cost)
        return try await self.onHashingPool { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `storedHash` (bcrypt, or the original's hex SHA-256). `nil` never matches.
    /// - Throws: `Overloaded` when too many hashes are queued.
    package func verify(_ password: String, against storedHash: String?) async throws -> Bool {
        guard let storedHash else { return false }
        if storedHash.hasPrefix("$2") {
            // bcrypt reads only the first 72 bytes, so a longer password would match on its prefix alone.
            guard password.utf8.count <= Self.maximumPasswordBytes else { return false }
            return try await self.onHashingPool { Bcrypt.verify(password, hash: storedHash) }
        }
        guard storedHash.utf8.count == 64 else { return false }
        let digest = SHA256.hash(data: Array(password.utf8)).hexString
        return Self.constantTimeEqual(Array(digest.utf8), Array(storedHash.lowercased().utf8))
    }

    private func onHashingPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        guard self.queued.enter(limit: self.maximumQueued) else {
            throw Overloaded(limit: self.maximumQueued)
        }
        defer { self.queued.leave() }
        return try await Self.hashingPool.runIfActive(body)
    }

    /// The hashing pool's queue is full; worth retrying in a moment.
    package struct Overloaded: Error, CustomStringConvertible {
        package let limit: Int
        package var description: String { "more than \(self.limit) password hashes queued" }
    }

    private static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

/// Counts the hashes of one application waiting for or running on the hashing pool.
private final class QueueGauge: Sendable {
    private let count = Atomic<Int>(0)

    /// Takes a place if fewer than `limit` are taken.
    func enter(limit: Int) -> Bool {
        if self.count.add(1, ordering: .relaxed).newValue <= limit { return true }
        self.count.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() {
        self.count.subtract(1, ordering: .relaxed)
    }
}
