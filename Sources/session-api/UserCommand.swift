import ArgumentParser
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

        @Option(help: "The user's password (at most 72 bytes).")
        var password: String

        @Option(help: "First name.")
        var firstName: String?

        @Option(help: "Last name.")
        var lastName: String?

        func run() async throws {
            let configuration = try self.global.configuration()
            var logger = Logger(label: "session-api")
            logger.logLevel = .warning
            do {
                let (email, password, firstName, lastName) = (self.email, self.password, self.firstName, self.lastName)
                let user = try await AppStores.withStores(configuration, logger: logger) { stores in
                    try await UserAdministration.createUser(
                        email: email,
                        password: password,
                        firstName: firstName,
                        lastName: lastName,
                        users: stores.users,
                        hasher: PasswordHasher(cost: configuration.passwordHashCost)
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
