import Logging
import RedisClient

/// Something a security reviewer wants on record. Never a password, a hash, a cookie or a session ID.
package struct AuditEvent: Sendable, Equatable {
    package enum Kind: String, Sendable {
        case loginSucceeded = "login.success"
        case loginFailed = "login.failure"
        case loginThrottled = "login.throttled"
        case basicAuthFailed = "basic.failure"
        case logout = "logout"
        case sessionRevoked = "session.revoked"
        case userCreated = "user.created"
        case userUpdated = "user.updated"
        case userDeleted = "user.deleted"
    }

    package var kind: Kind
    /// The user acted upon (or logged in).
    package var userID: String?
    /// The email a login or Basic request named (failures name no user id).
    package var account: String?
    /// The user who did it, when it is not `userID` (an admin deleting another user).
    package var actorID: String?
    package var ip: String?
    /// A few words: why a login failed, which sessions ended, which fields changed.
    package var detail: String?

    package init(_ kind: Kind, userID: String? = nil, account: String? = nil, actorID: String? = nil, ip: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.userID = userID
        self.account = account
        self.actorID = actorID
        self.ip = ip
        self.detail = detail
    }

    /// The event's fields, in a fixed order, without the empty ones.
    var fields: [(String, String)] {
        [
            ("event", self.kind.rawValue), ("user_id", self.userID), ("account", self.account), ("actor_id", self.actorID), ("ip", self.ip),
            ("detail", self.detail),
        ]
        .compactMap { name, value in value.map { (name, $0) } }
    }
}

/// Where audit events go: one structured log line each (`audit` at info, the fields as metadata), and in the
/// Redis modes an entry in the capped stream `<prefix>audit` (`XADD ... MAXLEN ~ 10000`), which an operator
/// reads with `redis-cli XREVRANGE <prefix>audit + - COUNT 20`. Recording never fails the request: a stream
/// that cannot be written is a warning in the log, and the log line is there anyway.
package struct AuditTrail: Sendable {
    private let redis: RedisClient?
    private let keys: RedisKeys
    package static let streamLength = 10_000

    package init(redis: RedisClient?, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    /// Only the log line (the modes without Redis, and tests).
    package static let logOnly = AuditTrail(redis: nil, keys: RedisKeys(prefix: ""))

    package func record(_ event: AuditEvent, logger: Logger) async {
        var metadata: Logger.Metadata = [:]
        for (name, value) in event.fields { metadata[name] = .string(value) }
        logger.info("audit", metadata: metadata)
        guard let redis = self.redis else { return }
        var command: [RedisArgument] = ["XADD", RedisArgument(self.keys.audit), "MAXLEN", "~", RedisArgument(Self.streamLength), "*"]
        command.append(contentsOf: [RedisArgument("at"), RedisArgument(Timestamp.string())])
        for (name, value) in event.fields { command.append(contentsOf: [RedisArgument(name), RedisArgument(value)]) }
        do {
            _ = try await redis.send(command)
        } catch {
            logger.warning("audit event not written to Redis", metadata: ["event": .string(event.kind.rawValue), "error": "\(error)"])
        }
    }
}
