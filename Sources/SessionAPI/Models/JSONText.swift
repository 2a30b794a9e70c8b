import Foundation

/// JSON as the API and its files write it: compact, keys sorted, `/` unescaped.
package enum JSONText {
    /// The one configured encoder (JSONEncoder is thread-safe once configured). Everything written with
    /// `writeString` matches what it writes.
    package static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Appends a JSON string (RFC 8259): `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
    /// escapes, everything else as its UTF-8 bytes; `nil` is `null`. The encoder's escaping exactly.
    ///
    /// Bytes go to an array, not a `ByteBuffer`: the same speed in release builds, and about six times faster
    /// in debug builds (the tests' servers), where every `ByteBuffer` call costs microseconds.
    package static func writeString(_ text: String?, into output: inout [UInt8]) {
        guard var text else {
            output.append(contentsOf: "null".utf8)
            return
        }
        output.append(UInt8(ascii: "\""))
        // Over the contiguous bytes: walking a String's UTF-8 view index by index costs about 20 instructions
        // a byte, and a user's JSON is written on every `/users/me`.
        text.withUTF8 { bytes in
            if !bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
                output.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
                case 0x08: output.append(contentsOf: #"\b"#.utf8)
                case 0x0C: output.append(contentsOf: #"\f"#.utf8)
                case 0x0A: output.append(contentsOf: #"\n"#.utf8)
                case 0x0D: output.append(contentsOf: #"\r"#.utf8)
                case 0x09: output.append(contentsOf: #"\t"#.utf8)
                case 0..<0x20:
                    output.append(contentsOf: #"\u00"#.utf8)
                    output.append(Self.hexDigits[Int(byte >> 4)])
                    output.append(Self.hexDigits[Int(byte & 0x0F)])
                default:
                    output.append(byte)
                }
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
