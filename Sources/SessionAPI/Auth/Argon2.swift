import CArgon2

/// Argon2 (RFC 9106) through libargon2, the reference implementation: hashes and PHC strings
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Passwords go in as bytes with their length, so a NUL
/// is a byte like any other. Every call is CPU- and memory-heavy (`m` KiB): call it on the hashing pool only.
package enum Argon2 {
    /// The cost of one Argon2id hash.
    package struct Parameters: Sendable, Equatable, CustomStringConvertible {
        /// `m`: memory in KiB (OWASP's minimum for Argon2id: 19456, i.e. 19 MiB).
        package var memoryKiB: UInt32
        /// `t`: passes over the memory.
        package var iterations: UInt32
        /// `p`: lanes (threads libargon2 may start).
        package var parallelism: UInt32

        /// OWASP's recommendation for Argon2id: m=19456 KiB, t=2, p=1.
        package static let recommended = Parameters(memoryKiB: 19_456, iterations: 2, parallelism: 1)

        package init(memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32) {
            self.memoryKiB = memoryKiB
            self.iterations = iterations
            self.parallelism = parallelism
        }

        package var description: String { "m=\(self.memoryKiB),t=\(self.iterations),p=\(self.parallelism)" }
    }

    /// A failure of libargon2 itself (out of memory, bad parameters); its message names the reason.
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    static let saltBytes = 16
    static let hashBytes = 32

    /// The PHC string of `password` hashed with `parameters` and a random 16-byte salt.
    package static func hash(_ password: [UInt8], parameters: Parameters) throws -> String {
        var generator = SystemRandomNumberGenerator()
        let salt = (0..<Self.saltBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let length = argon2_encodedlen(
            parameters.iterations,
            parameters.memoryKiB,
            parameters.parallelism,
            UInt32(Self.saltBytes),
            UInt32(Self.hashBytes),
            Argon2_id
        )
        var encoded = [CChar](repeating: 0, count: length)
        let status = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                argon2id_hash_encoded(
                    parameters.iterations,
                    parameters.memoryKiB,
                    parameters.parallelism,
                    passwordBytes.baseAddress,
                    passwordBytes.count,
                    saltBytes.baseAddress,
                    saltBytes.count,
                    Self.hashBytes,
                    &encoded,
                    length
                )
            }
        }
        guard status == ARGON2_OK.rawValue else { throw Failure(description: Self.message(status)) }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `password` is the one `encoded` (an `$argon2id$`, `$argon2i$` or `$argon2d$` PHC string) was made
    /// from. A malformed string matches nothing.
    package static func verify(_ password: [UInt8], against encoded: String) -> Bool {
        let type: argon2_type
        if encoded.hasPrefix("$argon2id$") {
            type = Argon2_id
        } else if encoded.hasPrefix("$argon2i$") {
            type = Argon2_i
        } else if encoded.hasPrefix("$argon2d$") {
            type = Argon2_d
        } else {
            return false
        }
        let status = password.withUnsafeBytes { passwordBytes in
            encoded.withCString { argon2_verify($0, passwordBytes.baseAddress, passwordBytes.count, type) }
        }
        return status == ARGON2_OK.rawValue
    }

    /// The parameters an `$argon2id$v=19$m=..,t=..,p=..$...` string was made with; `nil` for anything else
    /// (another Argon2 variant or version, or not Argon2 at all).
    package static func parameters(of encoded: String) -> Parameters? {
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 6, fields[1] == "argon2id", fields[2] == "v=19" else { return nil }
        var values: [Substring: UInt32] = [:]
        for pair in fields[3].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let value = UInt32(parts[1]) else { return nil }
            values[parts[0]] = value
        }
        guard let memory = values["m"], let iterations = values["t"], let parallelism = values["p"] else { return nil }
        return Parameters(memoryKiB: memory, iterations: iterations, parallelism: parallelism)
    }

    private static func message(_ status: Int32) -> String {
        guard let text = argon2_error_message(status) else { return "argon2 error \(status)" }
        return String(cString: text)
    }
}
