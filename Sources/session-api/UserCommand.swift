import ArgumentParser
import Foundation
import Logging
import SessionAPI

/// `session-api user ...`: manage users in the configured store (the first user must come from here,
/// because `POST /api/v1/users` needs an authenticated caller).
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage users in the configured user store.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user and print it as JSON.")

        @OptionGroup var global: GlobalOptions

        @Option(help: "The user's email (unique, case-insensitively).")
        var email: String

        @Option(
            help: """
                The user's password (at most 72 bytes). Other users see it in `ps` and it stays in shell history: \
                leave it out to type it without echo, or to pipe it on stdin (one line).
                """
        )
        var password: String?

        @Option(help: "First name.")
        var firstName: String?

        @Option(help: "Last name.")
        var lastName: String?

        static let flagWarning =
            "--password is visible to other users (ps, /proc) and kept in shell history; leave it out to be prompted or to pipe it on stdin"

        func run() async throws {
            let configuration = try self.global.configuration()
            var logger = Logger(label: "session-api")
            logger.logLevel = .warning
            let password: String
            if let flag = self.password {
                if !flag.isEmpty {
                    FileHandle.standardError.write(Data("session-api: warning: \(Self.flagWarning)\n".utf8))
                }
                password = flag
            } else {
                password = try PasswordInput.read()
            }
            do {
                let (email, firstName, lastName) = (self.email, self.firstName, self.lastName)
                let user = try await AppStores.withStores(configuration, logger: logger) { stores in
                    try await UserAdministration.createUser(
                        email: email,
                        password: password,
                        firstName: firstName,
                        lastName: lastName,
                        users: stores.users,
                        hasher: PasswordHasher(configuration)
                    )
                }
                print(user.jsonString(.public))
            } catch let error as StoreError where error.code == .duplicateEmail {
                throw CommandFailure("a user with email \(self.email) already exists")
            } catch let error as StoreError {
                throw CommandFailure("cannot create the user: \(error.message)")
            } catch let error as UserAdministration.InputError {
                throw CommandFailure(error.description)
            } catch let error as ConfigurationError {
                throw CommandFailure("configuration: \(error)")
            }
        }
    }
}
