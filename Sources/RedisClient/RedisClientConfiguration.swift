/// Where and how ``RedisClient`` connects: endpoint, credentials, database, TLS, pool size, timeouts and reconnect backoff.
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

        /// The jittered wait after `failures` failed attempts: `initial * 2^(failures - 1)`, capped at `maximum`, then
        /// drawn at random between half and all of it.
        func delay(afterFailures failures: Int) -> Duration {
            var delay = self.initial
            for _ in 1..<max(1, min(failures, 32)) where delay < self.maximum {
                delay *= 2
            }
            let seconds = min(delay, self.maximum) / .seconds(1)
            guard seconds > 0 else { return .zero }
            return .seconds(Double.random(in: (seconds / 2)...seconds))
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
    /// TLS for every connection, or `nil` for plain TCP (or a Unix socket). See ``TLS``.
    public var tls: TLS?
    /// One server (the default), Sentinel, or Cluster. See ``Topology``.
    public var topology: Topology
    /// How many connections the pool keeps; `nil` for one per event loop of the client's event loop group. In a
    /// cluster, how many each primary gets; `nil` for one.
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
    ///   - tls: TLS settings, or `nil` (the default) for no TLS.
    ///   - topology: ``Topology/standalone`` (the default), a Sentinel or a Cluster topology.
    ///   - connectionCount: The pool size; `nil` (the default) for one connection per event loop (in a cluster: per
    ///     primary, `nil` for one).
    ///   - connectTimeout: The connect limit, and the handshake limit; 1 s by default.
    ///   - commandTimeout: The per-command reply limit; 1 s by default.
    ///   - reconnectBackoff: The wait between reconnect attempts; 50 ms doubling up to 2 s by default.
    public init(
        endpoint: Endpoint = .tcp(host: "127.0.0.1"),
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: TLS? = nil,
        topology: Topology = .standalone,
        connectionCount: Int? = nil,
        connectTimeout: Duration = .seconds(1),
        commandTimeout: Duration = .seconds(1),
        reconnectBackoff: ReconnectBackoff = .init()
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
        self.topology = topology
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
    /// - `rediss://...`: as `redis://`, over TLS (port 6379 by default too), with optional query parameters
    ///   (values percent-decoded) that fill ``tls``:
    ///   - `ca=PATH`: a PEM file of CA certificates to trust instead of the system's (``TLS/caCertificatePath``)
    ///   - `cert=PATH&key=PATH`: a client certificate and its key, for mutual TLS (``TLS/certificatePath``, ``TLS/privateKeyPath``)
    ///   - `sni=NAME`: the name to send and to verify instead of the host (``TLS/serverName``)
    ///   - `verify=full` (the default) or `verify=none` (no certificate check; development only) (``TLS/verification``)
    ///
    ///   For example `rediss://:secret@redis.internal:6380/0?ca=/etc/ssl/redis-ca.pem&cert=/etc/app/redis.crt&key=/etc/app/redis.key`.
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
        self.tls = parsed.tls
    }

    /// The configuration as a URL-like text with the password hidden; safe to log.
    public var description: String {
        var credentials = ""
        if self.password != nil {
            credentials = "\(self.username ?? ""):***@"
        }
        let tlsQuery = self.tls.map(\.queryDescription) ?? ""
        let scheme = self.tls == nil ? "redis" : "rediss"
        let query = tlsQuery.isEmpty ? "" : "?\(tlsQuery)"
        switch (self.topology.base, self.endpoint.base) {
        case (.standalone, .tcp):
            return "\(scheme)://\(credentials)\(self.endpoint)/\(self.database)\(query)"
        case (.standalone, .unixSocket(let path)):
            return "unix://\(credentials)\(path)?db=\(self.database)\(self.tls == nil ? "" : " (TLS)")"
        case (.sentinel, _):
            return "\(scheme)://\(credentials)<master>/\(self.database)\(query) (\(self.topology))"
        case (.cluster, _):
            return "\(scheme)://\(credentials)<node>\(query) (\(self.topology))"
        }
    }
}

extension RedisClientConfiguration {
    /// Checks the settings that can only be checked by reading files or combining fields: the topology's lists are not
    /// empty, a cluster uses database 0, and the TLS certificate and key files are read and parsed (so a wrong path
    /// fails at start-up, not at the first connect).
    ///
    /// Reads files: call it at start-up, not on an event loop. ``RedisClient`` does not need it; it reports the same
    /// problems as connect errors.
    /// - Throws: ``RedisClientError`` with code `invalidConfiguration` for settings that do not go together, or
    ///   `connectFailed` naming a TLS file that cannot be used.
    public func validate() throws(RedisClientError) {
        switch self.topology.base {
        case .standalone:
            break
        case .sentinel(let sentinel):
            guard !sentinel.endpoints.isEmpty else {
                throw RedisClientError(.invalidConfiguration, message: "Sentinel: the list of Sentinels is empty")
            }
            guard !sentinel.masterName.isEmpty else {
                throw RedisClientError(.invalidConfiguration, message: "Sentinel: the master name is empty")
            }
        case .cluster(let cluster):
            guard !cluster.seeds.isEmpty else {
                throw RedisClientError(.invalidConfiguration, message: "Cluster: the list of seed nodes is empty")
            }
            guard self.database == 0 else {
                throw RedisClientError(.invalidConfiguration, message: "Cluster: Redis Cluster has only database 0, not \(self.database)")
            }
        }
        if let tls = self.tls {
            _ = try RedisTLSContext.makeContext(tls)
        }
    }
}
