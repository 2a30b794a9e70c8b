/// Session IDs: random UUIDv4 strings (see `RandomID`), as the original issues them.
package enum SessionID {
    /// A new session ID.
    package static func generate() -> String {
        RandomID.make()
    }

    /// Whether `text` has the shape of a UUID (8-4-4-4-12 hex digits). Anything else is rejected
    /// before any store is asked, so a garbage or huge cookie costs no I/O.
    package static func isWellFormed(_ text: some StringProtocol) -> Bool {
        let utf8 = text.utf8
        guard utf8.count == 36 else { return false }
        for (index, byte) in utf8.enumerated() {
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
