import Foundation
import Hummingbird
import Logging
import RedisClient

/// Every setting of the server, read once from the environment and validated at start-up.
package struct AppConfiguration: Sendable {
    package var host: String = "0.0.0.0"
    package var port: Int = 5000
    /// `nil`: no authentication at all, as the original with `AUTH_TYPE` unset.
    package var authType: AuthType?
    package var sessionName: String = "_my_session_id"
    /// Absolute session lifetime in seconds; `<= 0` means sessions never expire.
    package var sessionDuration: Int = 0
    /// Sliding idle timeout in seconds (Redis sessions only); `nil` disables it.
    package var sessionIdleTimeout: Int?
    /// Adds `Secure` to the session cookie (set it when clients reach the server over TLS).
    package var sessionCookieSecure: Bool = false
    /// Directory holding `.db_User.json` and `.db_UserSession.json`.
    package var dataDirectory: String = "."
    package var userStore: UserStoreKind = .json
    /// `REDIS_URL` (with `REDIS_COMMAND_TIMEOUT_MS`), parsed; `nil` when no Redis is configured.
    package var redis: RedisClientConfiguration?
    package var redisPrefix: String = "session-api:"
    /// bcrypt cost for new password hashes (4...31).
    package var passwordHashCost: Int = 12
    package var logLevel: Logger.Level = .info
    /// On SIGTERM/SIGINT, how long in-flight requests may take before they are cancelled.
    package var shutdownTimeoutSeconds: Int = 10
    /// Peers whose `X-Forwarded-For` is believed (the load balancers in front of this process).
    package var trustedProxies: [IPNetwork] = []

    /// The defaults: no auth, JSON users in the working directory, port 5000.
    package init() {}

    /// Reads the configuration from environment variables.
    /// - Throws: `ConfigurationError` naming the first variable whose value cannot be used.
    package init(environment: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
            return raw
        }
        if let host = value("API_HOST") { self.host = host }
        if let port = value("API_PORT") {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError(variable: "API_PORT", reason: "'\(port)' is not a port number (0-65535)")
            }
            self.port = number
        }
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
        // As the original: a missing or non-integer SESSION_DURATION means 0 (no expiry), except in the
        // Redis mode, where a missing one means 24 hours so that Redis never fills with immortal keys.
        if let duration = value("SESSION_DURATION") {
            self.sessionDuration = Int(duration) ?? 0
        } else if self.authType == .sessionRedisAuth {
            self.sessionDuration = 86_400
        }
        if let idle = value("SESSION_IDLE_TIMEOUT") {
            guard let seconds = Int(idle), seconds >= 0 else {
                throw ConfigurationError(variable: "SESSION_IDLE_TIMEOUT", reason: "'\(idle)' is not a number of seconds")
            }
            self.sessionIdleTimeout = seconds > 0 ? seconds : nil
        }
        if let secure = value("SESSION_COOKIE_SECURE") {
            self.sessionCookieSecure = try Self.bool(secure, variable: "SESSION_COOKIE_SECURE")
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
        if let prefix = environment["REDIS_PREFIX"] { self.redisPrefix = prefix }
        if let timeout = value("REDIS_COMMAND_TIMEOUT_MS") {
            guard let milliseconds = Int(timeout), milliseconds > 0 else {
                throw ConfigurationError(variable: "REDIS_COMMAND_TIMEOUT_MS", reason: "'\(timeout)' is not a positive number of milliseconds")
            }
            self.redis?.commandTimeout = .milliseconds(milliseconds)
        }
        if let cost = value("PASSWORD_HASH_COST") {
            guard let number = Int(cost), (4...31).contains(number) else {
                throw ConfigurationError(variable: "PASSWORD_HASH_COST", reason: "'\(cost)' is not a bcrypt cost (4-31)")
            }
            self.passwordHashCost = number
        }
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                let known = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(variable: "LOG_LEVEL", reason: "'\(level)' is not one of \(known)")
            }
            self.logLevel = parsed
        }
        if let timeout = value("SHUTDOWN_TIMEOUT") {
            guard let seconds = Int(timeout), seconds >= 0 else {
                throw ConfigurationError(variable: "SHUTDOWN_TIMEOUT", reason: "'\(timeout)' is not a number of seconds")
            }
            self.shutdownTimeoutSeconds = seconds
        }
        if let proxies = value("TRUSTED_PROXIES") {
            self.trustedProxies = try proxies.split(separator: ",").map { entry throws(ConfigurationError) in
                let text = entry.trimmingCharacters(in: .whitespaces)
                guard let network = IPNetwork(text) else {
                    throw ConfigurationError(variable: "TRUSTED_PROXIES", reason: "'\(text)' is not an IP address or CIDR network")
                }
                return network
            }
        }
        try self.validate()
    }

    /// Checks the combinations that no single variable can: Redis settings need a Redis.
    package func validate() throws(ConfigurationError) {
        if self.userStore == .redis, self.redis == nil {
            throw ConfigurationError(variable: "USER_STORE", reason: "'redis' needs REDIS_URL")
        }
        if self.authType == .sessionRedisAuth, self.redis == nil {
            throw ConfigurationError(variable: "AUTH_TYPE", reason: "'session_redis_auth' needs REDIS_URL")
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
