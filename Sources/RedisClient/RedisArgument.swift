/// One argument of a Redis command: binary-safe bytes, built from a string, raw bytes or a number.
///
/// Arguments are sent as RESP bulk strings with an explicit length, so any byte (CR, LF, NUL, invalid UTF-8) is safe;
/// no argument is ever interpolated into a command string.
///
/// ```swift
/// let reply = try await client.send(["SET", "greeting", RedisArgument(bytes), "EX", 60])
/// ```
public struct RedisArgument: Sendable, Hashable {
    enum Storage: Sendable, Hashable {
        case string(String)
        case bytes([UInt8])
    }

    let storage: Storage

    /// An argument holding the UTF-8 bytes of `string`.
    public init(_ string: String) {
        self.storage = .string(string)
    }

    /// An argument holding the UTF-8 bytes of `string`.
    public init(_ string: Substring) {
        self.storage = .string(String(string))
    }

    /// An argument holding `bytes` unchanged.
    public init(_ bytes: [UInt8]) {
        self.storage = .bytes(bytes)
    }

    /// An argument holding the decimal text of `integer`, as Redis expects for counts, TTLs and indexes.
    public init(_ integer: some BinaryInteger) {
        self.storage = .string(String(integer))
    }

    /// An argument holding `double` as text Redis parses (`1.5`, `inf`, `-inf`); used for sorted-set scores.
    public init(_ double: Double) {
        if double == .infinity {
            self.storage = .string("+inf")
        } else if double == -.infinity {
            self.storage = .string("-inf")
        } else {
            self.storage = .string(String(double))
        }
    }

    /// The bytes sent to Redis for this argument.
    public var bytes: [UInt8] {
        switch self.storage {
        case .string(let string): Array(string.utf8)
        case .bytes(let bytes): bytes
        }
    }

    /// The number of bytes sent to Redis for this argument.
    var byteCount: Int {
        switch self.storage {
        case .string(let string): string.utf8.count
        case .bytes(let bytes): bytes.count
        }
    }

    /// Appends this argument's bytes to `target` (used by the encoder; no intermediate array).
    func append(to target: inout [UInt8]) {
        switch self.storage {
        case .string(let string): target.append(contentsOf: string.utf8)
        case .bytes(let bytes): target.append(contentsOf: bytes)
        }
    }
}

extension RedisArgument: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) {
        self.init(value)
    }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) {
        self.init(value)
    }
}

extension RedisArgument: CustomStringConvertible {
    /// The argument as text when it is valid UTF-8, otherwise its length; for logs and test failures.
    public var description: String {
        switch self.storage {
        case .string(let string): string
        case .bytes(let bytes): String(validating: bytes, as: UTF8.self) ?? "<\(bytes.count) bytes>"
        }
    }
}
