/// The Redis key layout (see README, "Keys"), one layout for a single Redis, Sentinel and Cluster.
///
/// Every key starts with the configured prefix, so `SCAN MATCH <prefix>*` finds everything of one deployment.
/// The keys that change together in one script share a Redis Cluster hash slot: a user's hash and session index
/// carry the hash tag `{<user id>}`. A session's hash is found from the cookie alone (the SHA-256 of the cookie,
/// no tag), so it lives in a slot of its own, as do an email's claim and the set of all users. What that costs
/// (some changes are two steps, in an order a crash between them cannot harm) is in `docs/scaling.md`.
package struct RedisKeys: Sendable {
    package let prefix: String

    /// - Parameter prefix: Must not contain `{` or `}` (`AppConfiguration` refuses those): a brace in the prefix
    ///   would change every key's hash tag.
    package init(prefix: String) {
        self.prefix = prefix
    }

    /// `<prefix>session:<sha256 hex of the session id>`: a hash, with the session's remaining lifetime as TTL.
    /// The ID itself is never stored, so a dump or a replica holds no usable cookie.
    package func session(hash: String) -> String { self.prefix + "session:" + hash }
    /// `<prefix>session:*` with the prefix's glob characters escaped: every session key and nothing else, for
    /// `SCAN MATCH` (a prefix such as `a[1]:` matches only itself).
    package var sessionPattern: String { Self.globEscaped(self.prefix) + "session:*" }
    /// `<prefix>user-sessions:{<user id>}`: a sorted set of session hashes scored by expiry (epoch seconds), in the
    /// user's slot.
    package func userSessions(userID: String) -> String { self.prefix + "user-sessions:{" + userID + "}" }
    /// `<prefix>user:{<user id>}`: a hash with the user's fields, in the user's slot.
    package func user(id: String) -> String { self.prefix + "user:{" + id + "}" }
    /// `<prefix>user-email:<normalised email>`: the user id; set with NX, so one email is one account.
    package func userEmail(normalizedEmail: String) -> String { self.prefix + "user-email:" + normalizedEmail }
    /// `<prefix>users`: the set of every user id.
    package var users: String { self.prefix + "users" }
    /// `<prefix>throttle:account:<sha256 hex of the normalised email>`: failed logins of one account (no email in key names).
    package func throttle(account: String) -> String { self.prefix + "throttle:account:" + SessionID.handle(of: account) }
    /// `<prefix>throttle:address:<ip>`: failed logins from one client address.
    package func throttle(address: String) -> String { self.prefix + "throttle:address:" + address }
    /// `<prefix>audit`: the audit stream (capped, `XADD ... MAXLEN ~ 10000`).
    package var audit: String { self.prefix + "audit" }

    /// `text` with the glob characters of `SCAN MATCH` (`*`, `?`, `[`, `]`, `\`) escaped, so that it matches only itself.
    static func globEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// `<prefix>layout`: `2` once `RedisLayoutMigration` has moved the keys of the first layout (no hash tags).
    package var layout: String { self.prefix + "layout" }

    /// `<prefix>user:<user id>` and `<prefix>user-sessions:<user id>`: the first layout's keys, before hash tags.
    package func legacyUser(id: String) -> String { self.prefix + "user:" + id }
    package func legacyUserSessions(userID: String) -> String { self.prefix + "user-sessions:" + userID }

    /// The SHA-256 (lower-case hex) of a session ID: what Redis keys sessions by.
    package static func sessionHash(_ sessionID: String) -> String {
        SessionID.handle(of: sessionID)
    }
}
