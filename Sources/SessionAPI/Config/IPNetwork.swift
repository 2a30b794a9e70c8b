#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 network such as `10.0.0.0/8`, `127.0.0.1` or `::1/128`.
package struct IPNetwork: Sendable, Equatable {
    private let address: [UInt8]
    private let prefixLength: Int

    /// Parses `address[/prefix]`; `nil` when it is not one.
    package init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let maximum = bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length) else { return nil }
            self.prefixLength = length
        } else {
            self.prefixLength = maximum
        }
        self.address = bytes
    }

    package func contains(_ text: String) -> Bool {
        guard let bytes = Self.bytes(of: text), bytes.count == self.address.count else { return false }
        var remaining = self.prefixLength
        for index in bytes.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if bytes[index] & mask != self.address[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The network-order bytes of an IPv4 (4) or IPv6 (16) address text.
    static func bytes(of text: String) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 {
            return Array(buffer.prefix(4))
        }
        if inet_pton(AF_INET6, text, &buffer) == 1 {
            return buffer
        }
        return nil
    }
}
