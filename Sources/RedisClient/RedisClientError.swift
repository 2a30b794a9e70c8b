/// The one error type thrown by ``RedisClient``.
///
/// Switch on ``code`` to decide what to do; ``message`` is a one-line human-readable description (for a
/// Redis error reply it is the server's text, such as `WRONGTYPE Operation against a key holding the wrong kind of value`).
/// Messages never contain passwords.
public struct RedisClientError: Error, CustomStringConvertible {
    /// What went wrong, as an extensible set of codes (new codes are not a breaking change).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case connectionClosed
            case notConnected
            case timeout
            case commandError
            case unexpectedReply
            case invalidURL
            case invalidConfiguration
            case protocolError
            case connectFailed
            case shutdown
            case crossSlot
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The connection closed (or was reset after a command timeout) before the reply arrived.
        /// The command may or may not have been executed by Redis.
        public static var connectionClosed: Self { .init(.connectionClosed) }
        /// No connection to Redis is up right now; the command was not sent. The client keeps reconnecting in ``RedisClient/run()``.
        public static var notConnected: Self { .init(.notConnected) }
        /// The command (or the connect handshake) got no reply within its timeout. The connection was reset.
        public static var timeout: Self { .init(.timeout) }
        /// Redis answered with an error reply; ``RedisClientError/message`` holds the server's text.
        public static var commandError: Self { .init(.commandError) }
        /// Redis answered with a reply of a type the typed helper did not expect.
        public static var unexpectedReply: Self { .init(.unexpectedReply) }
        /// The configuration URL is malformed; the message names what is wrong.
        public static var invalidURL: Self { .init(.invalidURL) }
        /// Settings that cannot work (an empty Sentinel list, a database other than 0 with a cluster, a malformed
        /// endpoint list); the message names what is wrong.
        public static var invalidConfiguration: Self { .init(.invalidConfiguration) }
        /// The bytes received are not valid RESP, or a command could not be encoded. The connection was closed.
        public static var protocolError: Self { .init(.protocolError) }
        /// Connecting to Redis failed: TCP/Unix connect, or the AUTH / SELECT / PING handshake.
        public static var connectFailed: Self { .init(.connectFailed) }
        /// The client is not running: ``RedisClient/run()`` has returned or was never started.
        public static var shutdown: Self { .init(.shutdown) }
        /// Redis Cluster: the keys of a command (or of a transaction, or a command and its `WAIT`) hash to different
        /// slots, so no node could run it; it was not sent. Give keys that must go together the same `{hash tag}`.
        public static var crossSlot: Self { .init(.crossSlot) }

        public var description: String {
            switch self.base {
            case .connectionClosed: "connectionClosed"
            case .notConnected: "notConnected"
            case .timeout: "timeout"
            case .commandError: "commandError"
            case .unexpectedReply: "unexpectedReply"
            case .invalidURL: "invalidURL"
            case .invalidConfiguration: "invalidConfiguration"
            case .protocolError: "protocolError"
            case .connectFailed: "connectFailed"
            case .shutdown: "shutdown"
            case .crossSlot: "crossSlot"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// A one-line description. For ``Code/commandError`` this is the error text Redis sent.
    public var message: String
    /// The error that caused this one, if any (for example a socket error behind ``Code/connectFailed``).
    public var underlyingError: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - message: A one-line description.
    ///   - underlyingError: The error that caused this one, if any.
    public init(_ code: Code, message: String, underlyingError: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlyingError = underlyingError
    }

    public var description: String {
        if let underlyingError {
            return "RedisClientError.\(self.code): \(self.message) (\(underlyingError))"
        }
        return "RedisClientError.\(self.code): \(self.message)"
    }
}
