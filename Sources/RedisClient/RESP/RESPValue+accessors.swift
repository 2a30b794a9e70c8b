extension RESPValue {
    /// The bytes of a bulk or simple string reply; `nil` for any other reply.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let string): Array(string.utf8)
        default: nil
        }
    }

    /// A bulk or simple string reply decoded as UTF-8 (invalid sequences are repaired); `nil` for any other reply.
    public var string: String? {
        switch self {
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        case .simpleString(let string): string
        default: nil
        }
    }

    /// The value of an integer reply, or of a bulk string holding a decimal integer (as `HGET` returns for a
    /// counter); `nil` otherwise.
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString(let bytes): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    /// The elements of an array reply; `nil` for any other reply (including the nil array).
    public var array: [RESPValue]? {
        if case .array(let elements) = self {
            return elements
        }
        return nil
    }

    /// Whether this is the nil reply.
    public var isNull: Bool {
        if case .null = self {
            return true
        }
        return false
    }

    /// The text of an error reply; `nil` for any other reply.
    public var errorMessage: String? {
        if case .error(let message) = self {
            return message
        }
        return nil
    }
}

extension RESPValue: CustomStringConvertible {
    /// A short, readable rendering for logs and test failures (bulk strings shown as text when valid UTF-8).
    public var description: String {
        switch self {
        case .simpleString(let string): "+\(string)"
        case .bulkString(let bytes): String(validating: bytes, as: UTF8.self).map { "\"\($0)\"" } ?? "<\(bytes.count) bytes>"
        case .integer(let value): ":\(value)"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .null: "nil"
        case .error(let message): "-\(message)"
        }
    }
}
