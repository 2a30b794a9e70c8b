/// How requests are authenticated, chosen by `AUTH_TYPE`.
package enum AuthType: String, Sendable, CaseIterable {
    /// No authentication, on purpose: every route is open to whoever reaches the server.
    case noAuthentication = "none"
    /// `Authorization: Basic base64(email:password)` on every request.
    case basicAuth = "basic_auth"
    /// Session cookie; sessions kept in this process's memory, never expire.
    case sessionAuth = "session_auth"
    /// Session cookie; sessions in memory, invalid after `SESSION_DURATION` seconds.
    case sessionExpAuth = "session_exp_auth"
    /// Session cookie; sessions in `.db_UserSession.json`, with the same expiry.
    case sessionDBAuth = "session_db_auth"
    /// Session cookie; sessions in Redis with TTLs: the production mode.
    case sessionRedisAuth = "session_redis_auth"

    /// Whether this mode issues session cookies (and so has login/logout routes).
    package var usesSessions: Bool { self != .basicAuth && self != .noAuthentication }
}

/// Where users are kept, chosen by `USER_STORE`.
package enum UserStoreKind: String, Sendable, CaseIterable {
    case json
    case redis
}
