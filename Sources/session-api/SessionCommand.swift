import ArgumentParser
import Foundation
import SessionAPI

/// `session-api session ...`: the sessions in the configured store (`session_db_auth`'s file or
/// `session_redis_auth`'s Redis; the memory modes' sessions live in the server process only).
struct SessionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Inspect and end sessions in the configured session store (JSON file or Redis).",
        subcommands: [List.self, Revoke.self, Count.self, Inspect.self]
    )

    /// Looks up the user named by `reference` and runs `body` with it and the shared session store.
    static func withUserSessions<T: Sendable>(
        _ global: GlobalOptions,
        user reference: String,
        _ body: @escaping @Sendable (User, any SessionStore, _ audit: @Sendable (AuditEvent) async -> Void) async throws -> T
    ) async throws -> T {
        try await global.withStores { configuration, stores in
            let sessions = try SessionAdministration.sharedStore(stores, configuration: configuration)
            guard let user = try await UserAdministration.findUser(reference, users: stores.users) else {
                throw CommandFailure.noUser(reference)
            }
            return try await body(user, sessions) { event in await GlobalOptions.audit(event, stores, configuration) }
        }
    }

    /// `session-api session list --user <id|email> [--json]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a user's live sessions, newest first (exit 3: no such user).",
            discussion: """
                One line a session: handle, created at, expires at, ip, user agent (tab-separated, - when unknown). The \
                handle (SHA-256 of the session ID) names the session for `session revoke --handle`; the cookie is never shown.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The user's id or email.")
        var user: String

        @Flag(help: "Print one JSON array of {created_at, expires_at, handle, ip, user_agent, user_id}.")
        var json = false

        func run() async throws {
            let sessions = try await SessionCommand.withUserSessions(self.global, user: self.user) { user, store, _ in
                try await store.sessions(userID: user.id)
            }
            if self.json {
                print(SessionAdministration.jsonString(sessions))
            } else {
                for session in sessions {
                    print(Output.columns([session.handle, session.createdAt, session.expiresAt, session.metadata.ip, session.metadata.userAgent]))
                }
            }
        }
    }

    /// `session-api session revoke --user <id|email> (--all | --handle H)`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "End one session of a user (--handle) or all of them (--all) (exit 3: no such user, or no such session of it)."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The user's id or email.")
        var user: String

        @Flag(help: "End every session of the user.")
        var all = false

        @Option(help: "End the session with this handle (from `session list`).")
        var handle: String?

        func validate() throws {
            guard self.all != (self.handle != nil) else { throw ValidationError("give either --all or --handle") }
        }

        func run() async throws {
            let handle = self.handle
            let ended = try await SessionCommand.withUserSessions(self.global, user: self.user) { user, store, audit -> Int in
                guard let handle else {
                    let ended = try await store.deleteSessions(userID: user.id, keeping: nil)
                    await audit(AuditEvent(.sessionRevoked, userID: user.id, detail: "session-api session revoke --all; \(ended) sessions"))
                    return ended
                }
                guard try await store.deleteSession(userID: user.id, handle: handle) else {
                    throw CommandFailure("no session \(Output.safe(handle)) of user \(user.id)", status: .notFound)
                }
                await audit(AuditEvent(.sessionRevoked, userID: user.id, detail: "session-api session revoke; session \(handle)"))
                return 1
            }
            print(ended == 1 ? "1 session ended" : "\(ended) sessions ended")
        }
    }

    /// `session-api session count`.
    struct Count: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print how many live sessions the store holds, every user's (Redis: SCAN, never KEYS)."
        )

        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let count = try await self.global.withStores { configuration, stores in
                try await SessionAdministration.sharedStore(stores, configuration: configuration).count()
            }
            print(count)
        }
    }

    /// `session-api session inspect --cookie VALUE`.
    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what the store holds for a session cookie (exit 3: nothing).",
            discussion: """
                Redis: the session hash (found by the SHA-256 of the cookie, so nothing has to be hashed by hand), its TTL \
                and its entry in the user's index. JSON file: the session's record. The cookie is a password: pass - to \
                read it from stdin rather than leave it in `ps` and the shell's history.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: "The cookie's value (or NAME=VALUE as in a Cookie header); - reads it from stdin.")
        var cookie: String

        @Flag(help: "Print one JSON object {fields, handle, index, live, location, ttl_seconds}.")
        var json = false

        func run() async throws {
            let text = self.cookie == "-" ? readLine(strippingNewline: true) ?? "" : self.cookie
            let inspection = try await self.global.withStores { configuration, stores -> SessionInspection in
                let store = try SessionAdministration.sharedStore(stores, configuration: configuration)
                guard let sessionID = SessionAdministration.sessionID(fromCookie: text, cookieName: configuration.sessionCookieName) else {
                    throw CommandFailure("not a session ID: the server refuses such a cookie before asking any store", status: .notFound)
                }
                guard let inspection = try await store.inspect(sessionID: sessionID) else {
                    throw CommandFailure("no session for this cookie in the store", status: .notFound)
                }
                return inspection
            }
            if self.json {
                print(SessionAdministration.jsonString(inspection))
                return
            }
            print("location\t\(Output.safe(inspection.location))")
            print("handle\t\(inspection.handle)")
            print("live\t\(inspection.isLive ? "yes" : "no (expired: the server refuses it)")")
            if let seconds = inspection.timeToLive {
                print(seconds < 0 ? "ttl\tnone (the key never expires)" : "ttl\t\(seconds) s")
            } else {
                print("ttl\tnone: this store keeps no TTL; a session ends SESSION_DURATION after created_at")
            }
            if let index = inspection.index {
                print("index\t\(Output.safe(index.key)) \(index.score.map { "score \($0)" } ?? "(not in the index)")")
            }
            for (name, value) in inspection.fields.sorted(by: { $0.key < $1.key }) {
                print("\(Output.safe(name))\t\(Output.safe(value))")
            }
        }
    }
}
