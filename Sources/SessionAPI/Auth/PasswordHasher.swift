import Crypto
import HummingbirdBcrypt
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Hashes new passwords with Argon2id and checks passwords against stored hashes of every kind this
/// server has met: Argon2id (PHC strings), bcrypt (made by earlier versions of session-api) and the Flask
/// original's hex SHA-256. A match against anything but Argon2id with today's parameters says `needsRehash`,
/// so the login that proved the password can replace the hash.
///
/// Hashing is slow on purpose (Argon2id at m=19456 KiB holds ~19 MiB and tens of milliseconds of CPU), so it
/// runs on its own thread pool: never on an event loop, never on the pool of the stores' file I/O. The queue is
/// bounded: past `maximumQueued` waiting or running hashes, a request fails at once with `Overloaded` (503).
///
/// Passwords are bytes of an explicit length: Argon2 and SHA-256 take every byte. bcrypt's C code reads a
/// NUL-terminated string (so `abc\0def` would be `abc`) and only 72 bytes: it never sees a password with a
/// NUL or a longer one.
package struct PasswordHasher: Sendable {
    /// The longest password accepted for a new hash (Argon2 has no limit of its own; this bounds the work).
    package static let maximumPasswordBytes = 1024
    /// bcrypt reads only the first 72 bytes of a password.
    static let bcryptMaximumBytes = 72

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

    /// The Argon2id parameters of new hashes.
    package let parameters: Argon2.Parameters
    /// How many hashes may wait or run at once; past that a request fails at once with `Overloaded`
    /// (503, Retry-After) instead of queueing without bound (each Argon2id hash holds `m` KiB) in a login flood.
    package let maximumQueued: Int
    private let queued = QueueGauge()
    /// An Argon2id hash of a random password, made on first need: what an unknown user's login is checked
    /// against, so that it costs what a known user's does.
    private let dummyHash = DummyHash()

    package init(parameters: Argon2.Parameters = .recommended, maximumQueued: Int? = nil) {
        self.parameters = parameters
        self.maximumQueued = maximumQueued ?? 64 * System.coreCount
    }

    /// Hashes waiting for or running on the hashing pool now (a gauge for operators).
    package var queueDepth: Int { self.queued.current }

    /// A new Argon2id PHC string of `password`, computed on the hashing pool.
    /// - Throws: `Overloaded` when too many hashes are queued, `Unusable` for a password `problem(with:)` refuses.
    package func hash(_ password: String) async throws -> String {
        if let problem = Self.problem(with: password) { throw Unusable(description: problem) }
        let (bytes, parameters) = (Array(password.utf8), self.parameters)
        return try await self.onHashingPool { try Argon2.hash(bytes, parameters: parameters) }
    }

    /// What checking a password against a stored hash found.
    package struct Verification: Sendable, Equatable {
        package let matches: Bool
        /// The password matched a hash that is not Argon2id with today's parameters: hash it again.
        package let needsRehash: Bool

        static let mismatch = Verification(matches: false, needsRehash: false)
    }

    /// Checks `password` against `storedHash`. `nil` (no such user, or one who cannot log in) never matches,
    /// after the same work as a real check.
    /// - Throws: `Overloaded` when too many hashes are queued.
    package func check(_ password: String, against storedHash: String?) async throws -> Verification {
        let bytes = Array(password.utf8)
        guard let storedHash else {
            let dummy = try await self.dummy()
            _ = try await self.onHashingPool { Argon2.verify(bytes, against: dummy) }
            return .mismatch
        }
        if storedHash.hasPrefix("$argon2") {
            let matches = try await self.onHashingPool { Argon2.verify(bytes, against: storedHash) }
            return Verification(matches: matches, needsRehash: matches && Argon2.parameters(of: storedHash) != self.parameters)
        }
        if storedHash.hasPrefix("$2") {
            // bcrypt stops at a NUL and reads 72 bytes, so such a password could match on a prefix.
            guard !bytes.contains(0), bytes.count <= Self.bcryptMaximumBytes else { return .mismatch }
            let matches = try await self.onHashingPool { Bcrypt.verify(password, hash: storedHash) }
            return Verification(matches: matches, needsRehash: matches)
        }
        // The original's hex SHA-256, compared in constant time.
        guard storedHash.utf8.count == 64 else { return .mismatch }
        let digest = SHA256.hash(data: bytes).hexString
        let matches = Self.constantTimeEqual(Array(digest.utf8), Array(storedHash.lowercased().utf8))
        return Verification(matches: matches, needsRehash: matches)
    }

    /// Whether `password` matches `storedHash`; see `check(_:against:)`.
    package func verify(_ password: String, against storedHash: String?) async throws -> Bool {
        try await self.check(password, against: storedHash).matches
    }

    private func dummy() async throws -> String {
        if let hash = self.dummyHash.value { return hash }
        let parameters = self.parameters
        let hash = try await self.onHashingPool { try Argon2.hash(Array(RandomID.make().utf8), parameters: parameters) }
        self.dummyHash.value = hash
        return hash
    }

    private func onHashingPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
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

    var current: Int { self.count.load(ordering: .relaxed) }

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

/// The dummy hash of one hasher, once made.
private final class DummyHash: Sendable {
    private let hash = Mutex<String?>(nil)

    var value: String? {
        get { self.hash.withLock { $0 } }
        set { self.hash.withLock { $0 = newValue } }
    }
}

extension PasswordHasher {
    /// The hasher `configuration` asks for (`PASSWORD_ARGON2_*`, `PASSWORD_HASH_QUEUE_LIMIT`).
    package init(_ configuration: AppConfiguration) {
        self.init(
            parameters: Argon2.Parameters(
                memoryKiB: configuration.passwordArgon2MemoryKiB,
                iterations: configuration.passwordArgon2Iterations,
                parallelism: configuration.passwordArgon2Parallelism
            ),
            maximumQueued: configuration.passwordHashQueueLimit
        )
    }
}

extension PasswordHasher {
    /// After a login proved `password`, replaces a hash that `verification` says is outdated (the original's
    /// SHA-256, bcrypt, Argon2id with other parameters) by a new Argon2id one, unless the password changed
    /// meanwhile. A failure to store it is logged, never the login's failure: the old hash still works.
    /// - Returns: the user as stored afterwards.
    package func upgrade(_ user: User, password: String, after verification: Verification, in users: any UserStore, logger: Logger) async -> User {
        guard verification.needsRehash else { return user }
        do {
            let newHash = try await self.hash(password)
            guard try await users.replacePasswordHash(id: user.id, expected: user.passwordHash, with: newHash) else { return user }
            logger.info("password hash upgraded to Argon2id", metadata: ["user_id": .string(user.id)])
            var upgraded = user
            upgraded.passwordHash = newHash
            return upgraded
        } catch {
            logger.warning("password hash not upgraded", metadata: ["user_id": .string(user.id), "error": "\(error)"])
            return user
        }
    }
}
