/// The Redis Cluster hash slot of a key: CRC16 (XMODEM) of the key, or of its hash tag, modulo 16384.
///
/// A hash tag is the part between the first `{` and the first `}` after it, when that part is not empty:
/// `{user:42}:sessions` and `{user:42}:profile` share a slot, so one script or transaction may touch both.
enum RedisHashSlot {
    /// The number of slots in a cluster.
    static let count = 16384

    /// The slot of `key`.
    static func of(_ key: some Collection<UInt8>) -> Int {
        Int(Self.crc16(Self.hashedPart(of: key)) & 0x3FFF)
    }

    /// The slot of `argument`'s bytes.
    static func of(_ argument: RedisArgument) -> Int {
        switch argument.storage {
        case .string(let string): Self.of(string.utf8)
        case .bytes(let bytes): Self.of(bytes)
        }
    }

    /// The hash tag of `key` when it has a non-empty one, else the whole key.
    static func hashedPart<Key: Collection<UInt8>>(of key: Key) -> Key.SubSequence {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return key[afterOpen..<close]
            }
        }
        return key[...]
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection, as in Redis' `crc16.c`.
    static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ Self.table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index -> UInt16 in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
