import Crypto

/// Session IDs: random UUIDv4 strings (see `RandomID`), as the original issues them.
package enum SessionID {
    /// The most sessions one user keeps by default (`SESSION_MAX_PER_USER`): a login past it ends the oldest.
    package static let defaultMaximumPerUser = 100

    /// A session's public handle: the lower-case hex SHA-256 of its ID. What Redis keys sessions by, and what
    /// users and operators name a session with; it cannot be turned back into the cookie.
    package static func handle(of sessionID: some StringProtocol) -> String {
        // The id's bytes in place where the string is contiguous (always, for what HTTP parsing made).
        sessionID.utf8.withContiguousStorageIfAvailable { SHA256.hash(data: UnsafeRawBufferPointer($0)).hexString }
            ?? SHA256.hash(data: Array(sessionID.utf8)).hexString
    }

    /// Whether `text` has the shape of a handle (64 lower-case hex digits); anything else names no session.
    package static func isHandle(_ text: some StringProtocol) -> Bool {
        text.utf8.count == 64
            && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    /// A new session ID.
    package static func generate() -> String {
        RandomID.make()
    }

    /// Whether `text` has the shape of a UUID (8-4-4-4-12 hex digits). Anything else is rejected
    /// before any store is asked, so a garbage or huge cookie costs no I/O.
    package static func isWellFormed(_ text: some StringProtocol) -> Bool {
        text.utf8.withContiguousStorageIfAvailable(Self.isWellFormed(bytes:)) ?? Self.isWellFormed(bytes: Array(text.utf8))
    }

    private static func isWellFormed(bytes: some Collection<UInt8>) -> Bool {
        guard bytes.count == 36 else { return false }
        for (index, byte) in bytes.enumerated() {
            switch index {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return false }
            default:
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }
}
