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
///
/// Passwords are bytes of an explicit length: SHA-256 hashes all of them, and bcrypt, whose C code reads a
/// NUL-terminated string (so `abc\0def` would be `abc`), never sees one that holds a NUL or is longer than it reads.
package struct PasswordHasher: Sendable {
    /// bcrypt only reads the first 72 bytes of a password; longer ones are refused rather than truncated.
    package static let maximumPasswordBytes = 72

    /// Why a password cannot be used, as the API says it (400).
    package static func problem(with password: String) -> String? {
        if password.utf8.contains(0) { return "password must not contain NUL (U+0000)" }
        if password.utf8.count > Self.maximumPasswordBytes { return "password too long (at most \(Self.maximumPasswordBytes) bytes)" }
        return nil
    }

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
    /// A bcrypt hash at `cost` of a random password, made on first need: what an unknown user's login is
    /// checked against, so that it costs what a known user's does.
    private let dummyHash = DummyHash()

    /// The hashes waiting for or running on the hashing pool now (for the metrics' queue-depth gauge).
    package var queuedHashes: Int { self.queued.value }

    package init(cost: Int, maximumQueued: Int? = nil) {
        self.cost = cost
        self.maximumQueued = maximumQueued ?? 64 * System.coreCount
    }

    /// A bcrypt hash of `password`, computed on the hashing pool.
    /// - Throws: `Overloaded` when too many hashes are queued, `Unusable` for a password `problem(with:)` refuses.
    package func hash(_ password: String) async throws -> String {
        if let problem = Self.problem(with: password) { throw Unusable(description: problem) }
        let cost = UInt8(clamping: self.cost)
        return try await self.onHashingPool { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `storedHash` (bcrypt, or the original's hex SHA-256). `nil` (no such user,
    /// or one who cannot log in) never matches, after the same work as a bcrypt check.
    /// - Throws: `Overloaded` when too many hashes are queued.
    package func verify(_ password: String, against storedHash: String?) async throws -> Bool {
        guard let storedHash else {
            let dummy = try await self.dummy()
            _ = try await self.onHashingPool { Bcrypt.verify("not the password", hash: dummy) }
            return false
        }
        if storedHash.hasPrefix("$2") {
            // bcrypt reads only the first 72 bytes and stops at a NUL, so such a password could match on a prefix.
            guard Self.problem(with: password) == nil else { return false }
            return try await self.onHashingPool { Bcrypt.verify(password, hash: storedHash) }
        }
        guard storedHash.utf8.count == 64 else { return false }
        let digest = SHA256.hash(data: Array(password.utf8)).hexString
        return Self.constantTimeEqual(Array(digest.utf8), Array(storedHash.lowercased().utf8))
    }

    private func dummy() async throws -> String {
        if let hash = self.dummyHash.value { return hash }
        let cost = UInt8(clamping: self.cost)
        let hash = try await self.onHashingPool { Bcrypt.hash(RandomID.make(), cost: cost) }
        self.dummyHash.value = hash
        return hash
    }

    private func onHashingPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        guard self.queued.enter(limit: self.maximumQueued) else {
            throw Overloaded(limit: self.maximumQueued)
        }
        defer { self.queued.leave() }
        return try await Self.hashingPool.runIfActive(body)
    }

    /// A password that cannot be hashed (see `problem(with:)`).
    package struct Unusable: Error, CustomStringConvertible {
        package let description: String
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

    var value: Int { self.count.load(ordering: .relaxed) }
}

/// The dummy hash of one hasher, once made.
private final class DummyHash: Sendable {
    private let hash = Mutex<String?>(nil)

    var value: String? {
        get { self.hash.withLock { $0 } }
        set { self.hash.withLock { $0 = newValue } }
    }
}
