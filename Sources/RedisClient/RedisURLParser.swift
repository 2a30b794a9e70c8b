/// Parses `redis://`, `rediss://` and `unix://` URLs for ``RedisClientConfiguration/init(url:)``.
struct RedisURLParser {
    struct Result {
        var endpoint: RedisClientConfiguration.Endpoint
        var username: String?
        var password: String?
        var database: Int
        var tls: RedisClientConfiguration.TLS?
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
            return try self.parseTCP(rest, tls: false)
        case "rediss":
            return try self.parseTCP(rest, tls: true)
        case "unix":
            return try self.parseUnix(rest)
        case "":
            throw self.invalid("missing scheme; expected redis://, rediss:// or unix://")
        default:
            throw self.invalid("unsupported scheme '\(scheme)://'; expected redis://, rediss:// or unix://")
        }
    }

    // MARK: redis:// and rediss://

    private func parseTCP(_ rest: Substring, tls: Bool) throws(RedisClientError) -> Result {
        var rest = rest
        if rest.contains("#") {
            throw self.invalid("fragments are not supported in redis:// URLs")
        }
        var query: Substring?
        if let questionMark = rest.firstIndex(of: "?") {
            guard tls else {
                throw self.invalid(
                    "query parameters are not supported in redis:// URLs; put the database in the path (/db), TLS options need rediss://"
                )
            }
            query = rest[rest.index(after: questionMark)...]
            rest = rest[..<questionMark]
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
        let tlsSettings = tls ? try self.parseTLSQuery(query ?? "") : nil
        return Result(endpoint: .tcp(host: host, port: port), username: username, password: password, database: database, tls: tlsSettings)
    }

    /// The TLS settings of a `rediss://` URL's query: `ca`, `cert`, `key`, `sni`, `verify`.
    private func parseTLSQuery(_ query: Substring) throws(RedisClientError) -> RedisClientConfiguration.TLS {
        var settings = RedisClientConfiguration.TLS()
        for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0]
            guard parts.count == 2, !parts[1].isEmpty else {
                throw self.invalid("query parameter '\(name)' needs a value, as in \(name)=...")
            }
            guard let value = Self.percentDecoded(parts[1]) else {
                throw self.invalid("invalid percent-encoding in the value of '\(name)'")
            }
            switch name {
            case "ca": settings.caCertificatePath = value
            case "cert": settings.certificatePath = value
            case "key": settings.privateKeyPath = value
            case "sni": settings.serverName = value
            case "verify":
                switch value {
                case "full": settings.verification = .full
                case "none": settings.verification = .none
                default: throw self.invalid("verify must be 'full' or 'none', not '\(value)'")
                }
            default:
                throw self.invalid("unknown query parameter '\(name)'; rediss:// takes ca, cert, key, sni and verify")
            }
        }
        if (settings.certificatePath == nil) != (settings.privateKeyPath == nil) {
            throw self.invalid("cert= and key= go together: a client certificate needs its private key")
        }
        return settings
    }

    private func parseHostAndPort(_ authority: Substring) throws(RedisClientError) -> (String, Int) {
        do {
            return try Self.hostAndPort(authority, defaultPort: 6379)
        } catch {
            throw self.invalid(error.reason)
        }
    }

    /// Why a `host[:port]` could not be parsed.
    struct HostAndPortError: Error {
        var reason: String
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    static func hostAndPort(_ authority: Substring, defaultPort: Int) throws(HostAndPortError) -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw HostAndPortError(reason: "missing ']' after the IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw HostAndPortError(reason: "unexpected '\(after)' after the IPv6 address; expected ':port'")
                }
                portText = after.dropFirst()
            }
        } else {
            let colons = authority.filter { $0 == ":" }.count
            if colons > 1 {
                throw HostAndPortError(reason: "an IPv6 address must be written in brackets, as in redis://[::1]:6379")
            }
            if let colon = authority.firstIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
        }
        guard !host.isEmpty else {
            throw HostAndPortError(reason: "missing host")
        }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || "-._:%".contains($0)) }
        guard host.allSatisfy(allowed) else {
            throw HostAndPortError(reason: "host '\(host)' contains characters that are not allowed in a host name")
        }
        var port = defaultPort
        if let portText {
            guard !portText.isEmpty else {
                throw HostAndPortError(reason: "missing port number after ':'")
            }
            guard portText.allSatisfy(Self.isDigit), let value = Int(portText), (1...65535).contains(value) else {
                throw HostAndPortError(reason: "port '\(portText)' is not a number between 1 and 65535")
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
        return Result(endpoint: .unixSocket(path: path), username: username, password: password, database: database, tls: nil)
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
