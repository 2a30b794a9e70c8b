/// Where and how ``RedisClient`` connects: endpoint, credentials, database, pool size, timeouts and reconnect backoff.
///
/// Build it from a URL at start-up so a mistake fails there, with a one-line message:
/// ```swift
/// let configuration = try RedisClientConfiguration(url: "redis://:secret@127.0.0.1:6379/2")
/// ```
public struct RedisClientConfiguration: Sendable, CustomStringConvertible {
    /// The address of the Redis server: a TCP host and port, or a Unix domain socket path.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case tcp(host: String, port: Int)
            case unixSocket(path: String)
        }

        let base: Base

        /// A TCP endpoint.
        /// - Parameters:
        ///   - host: A host name or an IP address (IPv6 without brackets).
        ///   - port: The TCP port; 6379 by default.
        public static func tcp(host: String, port: Int = 6379) -> Self {
            Self(base: .tcp(host: host, port: port))
        }

        /// A Unix domain socket endpoint.
        /// - Parameter path: The socket's path, such as `/run/redis/redis.sock`.
        public static func unixSocket(path: String) -> Self {
            Self(base: .unixSocket(path: path))
        }

        public var description: String {
            switch self.base {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unixSocket(let path): "unix:\(path)"
            }
        }
    }

    /// How long to wait before reconnecting: starts at ``initial``, doubles after each failed attempt up to ``maximum``,
    /// and each wait is drawn at random between half and all of the current value (jitter), so many clients don't
    /// reconnect in lockstep.
    public struct ReconnectBackoff: Sendable, Hashable {
        /// The wait after the first failure.
        public var initial: Duration
        /// The longest wait.
        public var maximum: Duration

        /// Creates a backoff policy.
        /// - Parameters:
        ///   - initial: The wait after the first failure; 50 ms by default.
        ///   - maximum: The longest wait; 2 s by default.
        public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2)) {
            self.initial = initial
            self.maximum = maximum
        }
    }

    /// The server to connect to.
    public var endpoint: Endpoint
    /// The ACL user name sent with `AUTH`; `nil` for the default user.
    public var username: String?
    /// The password sent with `AUTH` on every (re)connect; `nil` to skip `AUTH`.
    public var password: String?
    /// The database selected with `SELECT` on every (re)connect when it is not 0.
    public var database: Int
    /// How many connections the pool keeps; `nil` for one per event loop of the client's event loop group.
    public var connectionCount: Int?
    /// The limit for a TCP/Unix connect, and separately for the `AUTH`/`SELECT`/`PING` handshake that follows it.
    /// Commands issued before the first connection is up wait for that first attempt (connect and handshake).
    public var connectTimeout: Duration
    /// How long a command may wait for its reply. After it, the caller gets ``RedisClientError/Code/timeout`` and the
    /// connection is reset, because its reply order can no longer be trusted.
    public var commandTimeout: Duration
    /// The wait between reconnect attempts.
    public var reconnectBackoff: ReconnectBackoff

    /// Creates a configuration.
    /// - Parameters:
    ///   - endpoint: The server; `127.0.0.1:6379` by default.
    ///   - username: The ACL user for `AUTH`, or `nil`.
    ///   - password: The password for `AUTH`, or `nil` to skip `AUTH`.
    ///   - database: The database to `SELECT`; 0 by default.
    ///   - connectionCount: The pool size; `nil` (the default) for one connection per event loop.
    ///   - connectTimeout: The connect limit, and the handshake limit; 1 s by default.
    ///   - commandTimeout: The per-command reply limit; 1 s by default.
    ///   - reconnectBackoff: The wait between reconnect attempts; 50 ms doubling up to 2 s by default.
    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1"),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectionCount: Int? = nil,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        reconnectBackoff: ReconnectBackoff = .init()
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.connectionCount = connectionCount
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.reconnectBackoff = reconnectBackoff
    }

    /// Creates a configuration from a URL; the other settings keep their defaults.
    ///
    /// Accepted forms:
    /// - `redis://host`, `redis://host:port`, `redis://host:port/db` (port 6379 and database 0 by default; IPv6 hosts in brackets)
    /// - `redis://:password@host:port` (password only) and `redis://user:password@host:port` (ACL user);
    ///   user and password are percent-decoded
    /// - `unix:///path/to.sock`, `unix:///path/to.sock?db=N`, `unix://:password@/path/to.sock`
    ///
    /// - Parameter url: The URL.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/invalidURL`` and a one-line message naming what is
    ///   wrong. The message shows the URL with its password replaced by `***`.
    public init(url: String) throws(RedisClientError) {
        self.init()
        let parser = RedisURLParser(url: url)
        let parsed = try parser.parse()
        self.endpoint = parsed.endpoint
        self.username = parsed.username
        self.password = parsed.password
        self.database = parsed.database
    }

    /// The configuration as a URL-like text with the password hidden; safe to log.
    public var description: String {
        var credentials = ""
        if self.password != nil {
            credentials = "\(self.username ?? ""):***@"
        }
        switch self.endpoint.base {
        case .tcp:
            return "redis://\(credentials)\(self.endpoint)/\(self.database)"
        case .unixSocket(let path):
            return "unix://\(credentials)\(path)?db=\(self.database)"
        }
    }
}

/// Parses `redis://` and `unix://` URLs for ``RedisClientConfiguration/init(url:)``.
struct RedisURLParser {
    struct Result {
        var endpoint: RedisClientConfiguration.Endpoint
        var username: String?
        var password: String?
        var database: Int
    }

    let url: String

    init(url: String) {
        self.url = url
    }

    func parse() throws(RedisClientError) -> Result {
        guard !self.url.isEmpty else {
            throw self.invalid("the URL is empty; expected redis://[user:password@]host[:port][/db] or unix:///path/to.sock[?db=N]")
        }
        guard let separator = self.url.firstRange(of: "://") else {
            throw self.invalid("expected redis://[user:password@]host[:port][/db] or unix:///path/to.sock[?db=N]")
        }
        let scheme = self.url[..<separator.lowerBound].lowercased()
        let rest = self.url[separator.upperBound...]
        switch scheme {
        case "redis":
            return try self.parseTCP(rest)
        case "unix":
            return try self.parseUnix(rest)
        case "rediss":
            throw self.invalid("TLS (rediss://) is not supported; use redis:// or unix://")
        case "":
            throw self.invalid("missing scheme; expected redis:// or unix://")
        default:
            throw self.invalid("unsupported scheme '\(scheme)://'; expected redis:// or unix://")
        }
    }

    // MARK: redis://

    private func parseTCP(_ rest: Substring) throws(RedisClientError) -> Result {
        if rest.contains("?") || rest.contains("#") {
            throw self.invalid("query parameters and fragments are not supported in redis:// URLs; put the database in the path (/db)")
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let path = rest[authorityEnd...]

        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            (username, password) = try self.parseUserInfo(authority[..<at])
            authority = authority[authority.index(after: at)...]
        }

        let (host, port) = try self.parseHostAndPort(authority)

        var database = 0
        if path.count > 1 {
            database = try self.parseDatabase(path.dropFirst())
        }
        return Result(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    private func parseHostAndPort(_ authority: Substring) throws(RedisClientError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw self.invalid("missing ']' after the IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw self.invalid("unexpected '\(after)' after the IPv6 address; expected ':port'")
                }
                portText = after.dropFirst()
            }
        } else {
            let colons = authority.filter { $0 == ":" }.count
            if colons > 1 {
                throw self.invalid("an IPv6 address must be written in brackets, as in redis://[::1]:6379")
            }
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
        }
        guard !host.isEmpty else {
            throw self.invalid("missing host")
        }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "-._:%".contains($0)) }
        guard host.allSatisfy(allowed) else {
            throw self.invalid("host '\(host)' contains characters that are not allowed in a host name")
        }
        var port = 6379
        if let portText {
            guard !portText.isEmpty else {
                throw self.invalid("missing port number after ':'")
            }
            guard portText.allSatisfy(Self.isDigit), let value = Int(portText), (1...65535).contains(value) else {
                throw self.invalid("port '\(portText)' is not a number between 1 and 65535")
            }
            port = value
        }
        return (String(host), port)
    }

    // MARK: unix://

    private func parseUnix(_ rest: Substring) throws(RedisClientError) -> Result {
        var rest = rest
        if rest.contains("#") {
            throw self.invalid("fragments are not supported in unix:// URLs")
        }
        var query: Substring = ""
        if let questionMark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
        }
        var username: String?
        var password: String?
        if !rest.hasPrefix("/"), let at = rest.firstIndex(of: "@") {
            (username, password) = try self.parseUserInfo(rest[..<at])
            rest = rest[rest.index(after: at)...]
        }
        guard rest.hasPrefix("/") else {
            throw self.invalid("a unix:// URL needs an absolute socket path, as in unix:///run/redis/redis.sock")
        }
        guard rest.count > 1 else {
            throw self.invalid("missing socket path")
        }
        guard let path = Self.percentDecoded(rest) else {
            throw self.invalid("invalid percent-encoding in the socket path")
        }

        var database = 0
        if !query.isEmpty {
            for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, parts[0] == "db" else {
                    throw self.invalid("unknown query parameter '\(parts[0])'; only db=N is supported")
                }
                database = try self.parseDatabase(parts[1])
            }
        }
        return Result(endpoint: .unixSocket(path: path), username: username, password: password, database: database)
    }

    // MARK: Shared parts

    private func parseUserInfo(_ userInfo: Substring) throws(RedisClientError) -> (String?, String) {
        guard let colon = userInfo.firstIndex(of: ":") else {
            // Never echo this part: it may well be a password written without the leading ':'.
            throw self.invalid("credentials without ':'; write redis://:PASSWORD@host for a password, redis://USER:PASSWORD@host for an ACL user")
        }
        guard let user = Self.percentDecoded(userInfo[..<colon]),
            let password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
        else {
            throw self.invalid("invalid percent-encoding in the user name or password")
        }
        guard !password.isEmpty else {
            throw self.invalid("empty password after ':'")
        }
        return (user.isEmpty ? nil : user, password)
    }

    private func parseDatabase(_ text: Substring) throws(RedisClientError) -> Int {
        guard !text.isEmpty, text.count <= 9, text.allSatisfy(Self.isDigit), let database = Int(text) else {
            throw self.invalid("database '\(text)' is not a non-negative integer")
        }
        return database
    }

    private func invalid(_ reason: String) -> RedisClientError {
        RedisClientError(.invalidURL, message: "invalid Redis URL '\(Self.redacted(self.url))': \(reason)")
    }

    /// The URL with anything between `://` and the last `@` of the authority replaced after its first `:` by `***`.
    static func redacted(_ url: String) -> String {
        guard let separator = url.firstRange(of: "://") else {
            return url
        }
        let rest = url[separator.upperBound...]
        guard let at = rest.lastIndex(of: "@") else {
            return url
        }
        let userInfo = rest[..<at]
        let user = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? ""
        return String(url[..<separator.upperBound]) + user + ":***" + rest[at...]
    }

    /// `text` with `%XX` escapes decoded as UTF-8, or `nil` if an escape is malformed or the result is not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.contains("%") else {
            return String(text)
        }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func isDigit(_ character: Character) -> Bool {
        ("0"..."9").contains(character)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
