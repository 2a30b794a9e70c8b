import Foundation
import Hummingbird
import Logging
import RedisClient

/// Every setting of the server, read once from the environment and validated at start-up.
package struct AppConfiguration: Sendable {
    /// `API_HOST`. With `AUTH_TYPE` unset the server listens on loopback whatever this says (see `listenHost`).
    package var host: String = "0.0.0.0"
    package var port: Int = 5000
    /// `nil`: `AUTH_TYPE` unset, no authentication, as the original, but on loopback only;
    /// `.none`: no authentication on purpose, on any address.
    package var authType: AuthType?
    /// `SESSION_NAME`, without the `__Host-` prefix that `sessionCookieHostPrefix` adds.
    package var sessionName: String = "_my_session_id"
    /// `SESSION_COOKIE_HOST_PREFIX`: the cookie is named `__Host-<SESSION_NAME>`, so browsers accept it only
    /// with `Secure`, `Path=/` and no `Domain`: a sibling subdomain cannot plant or overwrite it.
    package var sessionCookieHostPrefix: Bool = false
    /// Absolute session lifetime in seconds; `<= 0` means sessions never expire.
    package var sessionDuration: Int = 0
    /// `SESSION_MAX_PER_USER`: a login past it ends the user's oldest session.
    package var sessionMaximumPerUser: Int = 100
    /// Sliding idle timeout in seconds (Redis sessions only); `nil` disables it.
    package var sessionIdleTimeout: Int?
    /// Adds `Secure` to the session cookie (set it when clients reach the server over TLS).
    package var sessionCookieSecure: Bool = false
    /// Directory holding `.db_User.json` and `.db_UserSession.json`.
    package var dataDirectory: String = "."
    package var userStore: UserStoreKind = .json
    /// `REDIS_URL` (with `REDIS_COMMAND_TIMEOUT_MS`), parsed; `nil` when no Redis is configured.
    /// With `REDIS_SENTINELS` or `REDIS_CLUSTER_NODES`, its topology is Sentinel or Cluster (see `readRedisTopology`).
    package var redis: RedisClientConfiguration?
    /// `REDIS_WAIT_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS`: logins wait for replicas; `nil`: they do not.
    package var redisReplicaWait: RedisReplicaWait?
    package var redisPrefix: String = "session-api:"
    /// `NEAR_CACHE`: session lookups (and users in Redis) answered from memory, kept right by Redis' key
    /// invalidations; on by default in `session_redis_auth` (see `AppStores`).
    package var nearCache: Bool = true
    /// `NEAR_CACHE_ENTRIES`: the most entries in each near-cache.
    package var nearCacheEntries: Int = 10_000
    /// `NEAR_CACHE_TTL`: the longest an entry is used, in seconds (besides the session's own expiry).
    package var nearCacheSeconds: Int = 60
    /// Argon2id cost of new password hashes (`PASSWORD_ARGON2_*`): memory in KiB, passes, lanes.
    /// OWASP's recommendation by default; tests use cheap ones.
    package var passwordArgon2MemoryKiB: UInt32 = 19_456
    package var passwordArgon2Iterations: UInt32 = 2
    package var passwordArgon2Parallelism: UInt32 = 1
    /// How many password hashes may wait or run at once before logins answer 503 (`nil`: 64 per core).
    package var passwordHashQueueLimit: Int?
    /// `BASIC_AUTH_CACHE_SECONDS`: how long a verified Basic credential is trusted without hashing again (0: never).
    package var basicAuthCacheSeconds: Int = 60
    /// Login throttling (`LOGIN_FAILURES_PER_ACCOUNT`, `LOGIN_FAILURES_PER_ADDRESS`, `LOGIN_FAILURE_WINDOW`): past this
    /// many failed logins in the sliding window, for one account or one client address, logins answer 429 (0: no limit).
    package var loginFailuresPerAccount: Int = 10
    package var loginFailuresPerAddress: Int = 100
    package var loginFailureWindowSeconds: Int = 900
    /// `ADMIN_EMAILS`, normalised: when not empty, only these users may create users, update others or
    /// delete users (everyone may read, and update themselves). Empty: every user may, as in the original.
    package var adminEmails: Set<String> = []
    package var logLevel: Logger.Level = .info
    /// On SIGTERM/SIGINT, how long in-flight requests may take before they are cancelled.
    package var shutdownTimeoutSeconds: Int = 10
    /// Peers whose `X-Forwarded-For` is believed (the load balancers in front of this process).
    package var trustedProxies: [IPNetwork] = []

    // MARK: Operations (issue 8)

    /// `LOG_FORMAT`: text (swift-log's layout) or one JSON object a line.
    package var logFormat: LogFormat = .text
    /// `METRICS_PORT`: where `GET /metrics` answers (Prometheus text); `nil`: no metrics at all.
    package var metricsPort: Int?
    /// `METRICS_HOST`: the address of the metrics listener; loopback unless said otherwise.
    package var metricsHost: String = "127.0.0.1"

    /// The defaults: no auth, JSON users in the working directory, port 5000.
    package init() {}

    /// Reads the configuration from environment variables.
    ///
    /// A value that does not parse is an error in every mode, never a silent default.
    /// - Throws: `ConfigurationError` naming the first variable whose value cannot be used.
    package init(environment: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        /// A whole number in `range`, or an error naming the variable (no value: `nil`).
        func integer(_ name: String, _ range: ClosedRange<Int>, _ what: String) throws(ConfigurationError) -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), range.contains(number) else {
                throw ConfigurationError(variable: name, reason: "'\(text)' is not \(what) (\(range.lowerBound)-\(range.upperBound))")
            }
            return number
        }
        /// A hundred years: a longer lifetime overflows the arithmetic on epoch seconds.
        let seconds = -Self.longestLifetime...Self.longestLifetime

        if let host = value("API_HOST") { self.host = host }
        if let port = try integer("API_PORT", 0...65535, "a port number") { self.port = port }
        if let auth = value("AUTH_TYPE") {
            guard let type = AuthType(rawValue: auth) else {
                let known = AuthType.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(variable: "AUTH_TYPE", reason: "'\(auth)' is not one of \(known)")
            }
            self.authType = type
        }
        if let name = value("SESSION_NAME") {
            // An RFC 6265 token: Hummingbird's check lets bytes over 0x7F through, so ASCII is checked here.
            guard name.allSatisfy(\.isASCII), (try? Cookie.validated(name: name, value: "x")) != nil else {
                throw ConfigurationError(variable: "SESSION_NAME", reason: "'\(name)' is not a valid cookie name")
            }
            self.sessionName = name
        }
        // SESSION_DURATION: 0 or negative keeps the original's "never expires" in the original's modes; in the
        // Redis mode a missing one means 24 hours, and it must be positive, so Redis never fills with immortal keys.
        if let duration = try integer("SESSION_DURATION", seconds, "a number of seconds") {
            self.sessionDuration = duration
        } else if self.authType == .sessionRedisAuth {
            self.sessionDuration = 86_400
        }
        if let maximum = try integer("SESSION_MAX_PER_USER", 1...100_000, "a number of sessions") { self.sessionMaximumPerUser = maximum }
        if let idle = try integer("SESSION_IDLE_TIMEOUT", 0...Self.longestLifetime, "a number of seconds") {
            self.sessionIdleTimeout = idle > 0 ? idle : nil
        }
        if let secure = value("SESSION_COOKIE_SECURE") {
            self.sessionCookieSecure = try Self.bool(secure, variable: "SESSION_COOKIE_SECURE")
        }
        if let prefix = value("SESSION_COOKIE_HOST_PREFIX") {
            self.sessionCookieHostPrefix = try Self.bool(prefix, variable: "SESSION_COOKIE_HOST_PREFIX")
            // `__Host-` cookies need `Secure`: on unless SESSION_COOKIE_SECURE says otherwise (then `validate` refuses).
            if self.sessionCookieHostPrefix, value("SESSION_COOKIE_SECURE") == nil { self.sessionCookieSecure = true }
        }
        if let directory = value("DATA_DIR") { self.dataDirectory = directory }
        if let store = value("USER_STORE") {
            guard let kind = UserStoreKind(rawValue: store) else {
                throw ConfigurationError(variable: "USER_STORE", reason: "'\(store)' is not one of json, redis")
            }
            self.userStore = kind
        }
        if let url = value("REDIS_URL") {
            do {
                self.redis = try RedisClientConfiguration(url: url)
            } catch {
                throw ConfigurationError(variable: "REDIS_URL", reason: error.message)
            }
        }
        try self.readRedisTopology(environment)
        if let prefix = environment["REDIS_PREFIX"] { self.redisPrefix = prefix }
        if let cache = value("NEAR_CACHE") { self.nearCache = try Self.bool(cache, variable: "NEAR_CACHE") }
        if let entries = try integer("NEAR_CACHE_ENTRIES", 1...10_000_000, "a number of entries") { self.nearCacheEntries = entries }
        if let seconds = try integer("NEAR_CACHE_TTL", 1...86_400, "a number of seconds") { self.nearCacheSeconds = seconds }
        if let milliseconds = try integer("REDIS_COMMAND_TIMEOUT_MS", 1...3_600_000, "a number of milliseconds") {
            self.redis?.commandTimeout = .milliseconds(milliseconds)
        }
        if let cost = value("PASSWORD_HASH_COST") {
            throw ConfigurationError(
                variable: "PASSWORD_HASH_COST",
                reason: "'\(cost)': no longer used: new passwords are hashed with Argon2id (PASSWORD_ARGON2_MEMORY_KIB, _ITERATIONS, _PARALLELISM)"
            )
        }
        if let memory = try integer("PASSWORD_ARGON2_MEMORY_KIB", 8...4_194_304, "a number of KiB") { self.passwordArgon2MemoryKiB = UInt32(memory) }
        if let passes = try integer("PASSWORD_ARGON2_ITERATIONS", 1...64, "a number of passes") { self.passwordArgon2Iterations = UInt32(passes) }
        if let lanes = try integer("PASSWORD_ARGON2_PARALLELISM", 1...16, "a number of lanes") { self.passwordArgon2Parallelism = UInt32(lanes) }
        if let limit = try integer("PASSWORD_HASH_QUEUE_LIMIT", 1...1_000_000, "a number of hashes") { self.passwordHashQueueLimit = limit }
        if let seconds = try integer("BASIC_AUTH_CACHE_SECONDS", 0...3600, "a number of seconds") { self.basicAuthCacheSeconds = seconds }
        if let failures = try integer("LOGIN_FAILURES_PER_ACCOUNT", 0...1_000_000, "a number of failures") { self.loginFailuresPerAccount = failures }
        if let failures = try integer("LOGIN_FAILURES_PER_ADDRESS", 0...1_000_000, "a number of failures") { self.loginFailuresPerAddress = failures }
        if let seconds = try integer("LOGIN_FAILURE_WINDOW", 1...86_400, "a number of seconds") { self.loginFailureWindowSeconds = seconds }
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                let known = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(variable: "LOG_LEVEL", reason: "'\(level)' is not one of \(known)")
            }
            self.logLevel = parsed
        }
        if let timeout = try integer("SHUTDOWN_TIMEOUT", 0...86_400, "a number of seconds") { self.shutdownTimeoutSeconds = timeout }
        if let proxies = value("TRUSTED_PROXIES") {
            self.trustedProxies = try proxies.split(separator: ",").map { entry throws(ConfigurationError) in
                let text = entry.trimmingCharacters(in: .whitespaces)
                guard let network = IPNetwork(text) else {
                    throw ConfigurationError(variable: "TRUSTED_PROXIES", reason: "'\(text)' is not an IP address or CIDR network")
                }
                return network
            }
        }
        if let format = value("LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError(variable: "LOG_FORMAT", reason: "'\(format)' is not one of text, json")
            }
            self.logFormat = parsed
        }
        if let port = try integer("METRICS_PORT", 0...65535, "a port number") { self.metricsPort = port }
        if let host = value("METRICS_HOST") { self.metricsHost = host }
        if let admins = value("ADMIN_EMAILS") {
            self.adminEmails = Set(
                admins.split(separator: ",").map { User.normalizedEmail($0.trimmingCharacters(in: .whitespaces)) }.filter { !$0.isEmpty }
            )
        }
        try self.validate()
    }

    /// The longest session lifetime or idle timeout, in seconds: a hundred years.
    package static let longestLifetime = 100 * 366 * 86_400

    /// The cookie's full name: `SESSION_NAME`, with `__Host-` in front when `SESSION_COOKIE_HOST_PREFIX` is on.
    package var sessionCookieName: String {
        self.sessionCookieHostPrefix ? "__Host-" + self.sessionName : self.sessionName
    }

    /// Where the server listens: `host`, except with `AUTH_TYPE` unset, where an API without authentication
    /// must not happen by accident: then loopback only (`AUTH_TYPE=none` serves it on other addresses).
    package var listenHost: String {
        self.authType == nil && !Self.isLoopback(self.host) ? "127.0.0.1" : self.host
    }

    /// The warning to log at start-up about an API without authentication, if it has none.
    package var noAuthenticationWarning: String? {
        switch self.authType {
        case nil where self.listenHost != self.host:
            "AUTH_TYPE is unset: no authentication, so listening on 127.0.0.1 only, not on API_HOST=\(self.host); set AUTH_TYPE, or AUTH_TYPE=none to serve without authentication on other addresses"
        case nil:
            "AUTH_TYPE is unset: no authentication, listening on \(self.host) only (set AUTH_TYPE=none to serve without authentication on other addresses)"
        case .noAuthentication:
            "AUTH_TYPE=none: no authentication; anyone who reaches \(self.host):\(self.port) may create, change and delete users"
        default:
            nil
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || IPNetwork("127.0.0.0/8")?.contains(host) == true || IPNetwork("::1/128")?.contains(host) == true
    }

    /// Checks the combinations that no single variable can.
    package func validate() throws(ConfigurationError) {
        if self.passwordArgon2MemoryKiB < 8 * self.passwordArgon2Parallelism {
            throw ConfigurationError(variable: "PASSWORD_ARGON2_MEMORY_KIB", reason: "must be at least 8 KiB per lane (PASSWORD_ARGON2_PARALLELISM)")
        }
        if self.userStore == .redis, self.redis == nil {
            throw ConfigurationError(variable: "USER_STORE", reason: "'redis' needs REDIS_URL")
        }
        if self.authType == .sessionRedisAuth, self.redis == nil {
            throw ConfigurationError(variable: "AUTH_TYPE", reason: "'session_redis_auth' needs REDIS_URL")
        }
        if self.authType == .sessionRedisAuth, self.sessionDuration <= 0 {
            throw ConfigurationError(
                variable: "SESSION_DURATION",
                reason: "'\(self.sessionDuration)': session_redis_auth needs a positive number of seconds (sessions in Redis must expire)"
            )
        }
        if self.sessionCookieName.hasPrefix("__Host-"), !self.sessionCookieSecure {
            throw ConfigurationError(variable: "SESSION_COOKIE_SECURE", reason: "a __Host- cookie needs Secure (true)")
        }
        if !self.adminEmails.isEmpty, self.authType == nil || self.authType == .noAuthentication {
            throw ConfigurationError(variable: "ADMIN_EMAILS", reason: "needs an AUTH_TYPE that authenticates (who is an admin?)")
        }
    }

    private static func bool(_ text: String, variable: String) throws(ConfigurationError) -> Bool {
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(variable: variable, reason: "'\(text)' is not a boolean (true/false)")
        }
    }
}
