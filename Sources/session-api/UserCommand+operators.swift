import ArgumentParser
import Foundation
import SessionAPI

// `session-api user list | show | delete | set-password`: every user is named by its id or its email.
extension UserCommand {
    /// `session-api user list [--json]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every user, oldest first.",
            discussion: "One line a user: id, email, first name, last name, created at (tab-separated, - when unset); --json: the API's JSON array."
        )

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print the users as the API does: one JSON array.")
        var json = false

        func run() async throws {
            let users = try await self.global.withStores { _, stores in try await stores.users.allUsers() }
            if self.json {
                var output: [UInt8] = []
                User.writeJSON(users, .public, into: &output)
                print(String(decoding: output, as: UTF8.self))
            } else {
                for user in users {
                    print(Output.columns([user.id, user.email, user.firstName, user.lastName, user.createdAt]))
                }
            }
        }
    }

    /// `session-api user show <id|email>`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one user as JSON, as the API does (exit 3: no such user).")

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The user's id or email.")
        var user: String

        func run() async throws {
            let reference = self.user
            let user = try await self.global.withStores { _, stores in
                try await UserAdministration.findUser(reference, users: stores.users)
            }
            guard let user else { throw CommandFailure.noUser(reference) }
            print(user.jsonString(.public))
        }
    }

    /// `session-api user delete <id|email>`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a user and end every session it has, as DELETE /api/v1/users/<id> does (exit 3: no such user)."
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The user's id or email.")
        var user: String

        func run() async throws {
            let reference = self.user
            let result = try await self.global.withStores { configuration, stores -> (User, Int?)? in
                guard let user = try await UserAdministration.findUser(reference, users: stores.users) else { return nil }
                let sessions = try? SessionAdministration.sharedStore(stores, configuration: configuration)
                guard let ended = try await UserAdministration.deleteUser(id: user.id, users: stores.users, sessions: sessions) else {
                    return nil
                }
                let detail = "session-api user delete; \(Self.sessionsEnded(sessions == nil ? nil : ended))"
                await GlobalOptions.audit(AuditEvent(.userDeleted, userID: user.id, detail: detail), stores, configuration)
                return (user, sessions == nil ? nil : ended)
            }
            guard let result else { throw CommandFailure.noUser(reference) }
            let (user, ended) = result
            print("deleted user \(user.id) (\(Output.safe(user.email))); \(Self.sessionsEnded(ended))")
        }

        /// `nil`: the mode keeps no sessions another process can end (none, or only the server's memory).
        static func sessionsEnded(_ count: Int?) -> String {
            guard let count else { return "no sessions ended: AUTH_TYPE keeps none that another process can reach" }
            return count == 1 ? "1 session ended" : "\(count) sessions ended"
        }
    }

    /// `session-api user set-password <id|email>`.
    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Give a user a new password and end its sessions (exit 3: no such user).",
            discussion: """
                The password is read from stdin (its first line) or, at a terminal, typed twice without echo; never \
                from the command line. It is checked and hashed as the API does it (not empty, no NUL, at most 1024 \
                bytes; Argon2id with PASSWORD_ARGON2_*). Running servers refuse the old password from their next read \
                of the user on (their Basic cache keeps the hash a credential matched, so it does not outlive a change).
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The user's id or email.")
        var user: String

        @Flag(help: "Keep the user's sessions (by default they end: a password is reset when it may be known to others).")
        var keepSessions = false

        func run() async throws {
            let configuration = try self.global.configuration()
            // Blocking: read before any work starts.
            let password = try PasswordInput.read()
            if password.isEmpty { throw CommandFailure("password missing") }
            if let problem = PasswordHasher.problem(with: password) { throw CommandFailure(problem) }
            let (reference, keepSessions) = (self.user, self.keepSessions)
            let result = try await self.global.withStores { _, stores -> (User, Int?)? in
                guard let user = try await UserAdministration.findUser(reference, users: stores.users) else { return nil }
                let sessions = keepSessions ? nil : try? SessionAdministration.sharedStore(stores, configuration: configuration)
                let done = try await UserAdministration.setPassword(
                    id: user.id,
                    password: password,
                    users: stores.users,
                    hasher: PasswordHasher(configuration),
                    sessions: sessions
                )
                guard let done else { return nil }
                let ended = keepSessions ? "sessions kept" : Delete.sessionsEnded(sessions == nil ? nil : done.endedSessions)
                let detail = "password set by session-api user set-password; \(ended)"
                await GlobalOptions.audit(AuditEvent(.userUpdated, userID: user.id, detail: detail), stores, configuration)
                return (done.user, sessions == nil ? nil : done.endedSessions)
            }
            guard let result else { throw CommandFailure.noUser(reference) }
            let (user, ended) = result
            let sessions = keepSessions ? "sessions kept" : Delete.sessionsEnded(ended)
            print("password set for user \(user.id) (\(Output.safe(user.email))); \(sessions)")
        }
    }
}
