import Crypto

/// A Lua script run with ``RedisClient/evalsha(_:keys:arguments:)``: its source and the SHA-1 Redis names it by.
///
/// Create scripts once (for example as `static let`) and reuse them; `EVALSHA` sends only the 40-character digest.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of ``source`` in lowercase hex, as `SCRIPT LOAD` returns it.
    public let sha1: String

    /// Creates a script and computes its SHA-1.
    /// - Parameter source: The Lua source.
    public init(_ source: String) {
        self.source = source
        let hexDigits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(40)
        for byte in Insecure.SHA1.hash(data: Array(source.utf8)) {
            hex.append(hexDigits[Int(byte >> 4)])
            hex.append(hexDigits[Int(byte & 0x0f)])
        }
        self.sha1 = String(decoding: hex, as: UTF8.self)
    }
}
