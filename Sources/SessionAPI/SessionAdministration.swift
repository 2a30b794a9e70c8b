import Foundation

/// What `session-api session ...` does with the configured session store, kept in the library next to
/// `UserAdministration` so that the commands hold no logic of their own.
package enum SessionAdministration {
    /// Why the sessions cannot be reached from this process, as one line for the operator.
    package struct Unreachable: Error, CustomStringConvertible {
        package let description: String
    }

    /// The session store another process can use: `session_db_auth`'s file or `session_redis_auth`'s Redis.
    /// - Throws: `Unreachable` in a mode without sessions, or whose sessions live in the server's memory.
    package static func sharedStore(_ stores: AppStores, configuration: AppConfiguration) throws(Unreachable) -> any SessionStore {
        switch configuration.authType {
        case .sessionDBAuth?, .sessionRedisAuth?:
            guard let sessions = stores.sessions else { throw Unreachable(description: "no session store is configured") }
            return sessions
        case .sessionAuth?, .sessionExpAuth?:
            let mode = configuration.authType?.rawValue ?? ""
            throw Unreachable(
                description: "AUTH_TYPE=\(mode) keeps sessions in the server process's memory: no other process can see them"
            )
        case .basicAuth?, .noAuthentication?, nil:
            throw Unreachable(description: "AUTH_TYPE=\(configuration.authType?.rawValue ?? "(unset)") has no sessions")
        }
    }

    /// The session ID in what the operator pasted: the cookie's value, or `NAME=VALUE` as a `Cookie` header
    /// carries it; `nil` when it does not have the shape of a session ID (the server refuses such a cookie
    /// before it asks any store).
    package static func sessionID(fromCookie text: String, cookieName: String) -> String? {
        var value = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        if value.hasPrefix(cookieName + "=") { value = value.dropFirst(cookieName.count + 1) }
        return SessionID.isWellFormed(value) ? String(value) : nil
    }

    // MARK: - JSON

    /// A session as one JSON object with sorted keys: `{"created_at","expires_at","handle","ip","user_agent","user_id"}`,
    /// `null` for what is not known (the API's shape, less `current`, plus the user).
    package static func jsonString(_ session: SessionInfo) -> String {
        var output: [UInt8] = []
        Self.writeJSON(session, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Sessions as a JSON array of `jsonString(_:)` objects.
    package static func jsonString(_ sessions: [SessionInfo]) -> String {
        var output: [UInt8] = [UInt8(ascii: "[")]
        for (index, session) in sessions.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            Self.writeJSON(session, into: &output)
        }
        output.append(UInt8(ascii: "]"))
        return String(decoding: output, as: UTF8.self)
    }

    private static func writeJSON(_ session: SessionInfo, into output: inout [UInt8]) {
        Self.writeObject(
            [
                ("created_at", .string(session.createdAt)), ("expires_at", .string(session.expiresAt)), ("handle", .string(session.handle)),
                ("ip", .string(session.metadata.ip)), ("user_agent", .string(session.metadata.userAgent)), ("user_id", .string(session.userID)),
            ],
            into: &output
        )
    }

    /// What a store holds for a session as one JSON object with sorted keys: `fields` (the stored fields),
    /// `handle`, `index` (Redis: `{"key","score"}`, `score` `null` when not indexed; elsewhere `null`), `live`,
    /// `location`, `ttl_seconds` (Redis; elsewhere `null`).
    package static func jsonString(_ inspection: SessionInspection) -> String {
        var fields: [UInt8] = []
        Self.writeObject(inspection.fields.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }, into: &fields)
        var index: [UInt8] = Array("null".utf8)
        if let entry = inspection.index {
            index = []
            Self.writeObject([("key", .string(entry.key)), ("score", .string(entry.score))], into: &index)
        }
        var output: [UInt8] = []
        Self.writeObject(
            [
                ("fields", .raw(fields)), ("handle", .string(inspection.handle)), ("index", .raw(index)),
                ("live", .raw(Array((inspection.isLive ? "true" : "false").utf8))), ("location", .string(inspection.location)),
                ("ttl_seconds", .raw(Array((inspection.timeToLive.map(String.init) ?? "null").utf8))),
            ],
            into: &output
        )
        return String(decoding: output, as: UTF8.self)
    }

    private enum JSONValue {
        case string(String?)
        case raw([UInt8])
    }

    private static func writeObject(_ members: [(String, JSONValue)], into output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        for (index, (key, value)) in members.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.writeString(key, into: &output)
            output.append(UInt8(ascii: ":"))
            switch value {
            case .string(let text): JSONText.writeString(text, into: &output)
            case .raw(let bytes): output.append(contentsOf: bytes)
            }
        }
        output.append(UInt8(ascii: "}"))
    }
}
