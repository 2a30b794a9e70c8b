import Crypto

/// Lower-case hex text of bytes, as `hashlib`'s `hexdigest()` and `sha256sum` print digests.
extension Sequence<UInt8> {
    package var hexString: String {
        var text: [UInt8] = []
        text.reserveCapacity(self.underestimatedCount * 2)
        for byte in self {
            text.append(hexDigit(byte >> 4))
            text.append(hexDigit(byte & 0x0F))
        }
        return String(decoding: text, as: UTF8.self)
    }
}

extension UnsafeRawBufferPointer {
    /// Written straight into the string's storage: a session's handle is made on every request.
    package var hexString: String {
        String(unsafeUninitializedCapacity: self.count * 2) { text in
            for (index, byte) in self.enumerated() {
                text[2 &* index] = hexDigit(byte >> 4)
                text[2 &* index &+ 1] = hexDigit(byte & 0x0F)
            }
            return self.count * 2
        }
    }
}

extension SHA256Digest {
    /// From the digest's bytes in place (iterating a digest copies it byte by byte).
    package var hexString: String { self.withUnsafeBytes { $0.hexString } }
}

/// The hex digit of a value below 16.
@inline(__always)
private func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") &+ nibble : UInt8(ascii: "a") &- 10 &+ nibble
}
