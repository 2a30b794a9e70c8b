import ArgumentParser
import Foundation
import Logging
import SessionAPI

/// Options every subcommand shares; each overrides the environment variable it names.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Directory of .db_User.json and .db_UserSession.json (env DATA_DIR).")
    var dataDir: String?

    /// The configuration from the environment, with these flags on top; an unusable value ends the
    /// command with one line on stderr naming the variable.
    func configuration() throws -> AppConfiguration {
        var environment = ProcessInfo.processInfo.environment
        if let dataDir { environment["DATA_DIR"] = dataDir }
        do {
            return try AppConfiguration(environment: environment)
        } catch {
            throw CommandFailure("configuration: \(error)")
        }
    }

    /// The logger of an administration command: errors only (a Redis that is down is reported once, as the
    /// command's failure), so stdout and stderr stay what scripts read.
    static func commandLogger(_ configuration: AppConfiguration) -> Logger {
        var logger = Logger(label: "session-api", factory: AppLogHandler.factory(format: configuration.logFormat))
        logger.logLevel = .error
        return logger
    }

    /// Records what an administration command changed in the audit trail: the Redis stream `<prefix>audit` in the
    /// Redis modes (the log line stays below the command's `error` level, so stderr stays what scripts read).
    static func audit(_ event: AuditEvent, _ stores: AppStores, _ configuration: AppConfiguration) async {
        await stores.audit.record(event, logger: Self.commandLogger(configuration))
    }

    /// Opens the configured stores (running the Redis client they share), runs `body`, and turns every failure
    /// into a one-line `CommandFailure`.
    func withStores<T: Sendable>(_ body: @escaping @Sendable (AppConfiguration, AppStores) async throws -> T) async throws -> T {
        let configuration = try self.configuration()
        do {
            return try await AppStores.withStores(configuration, logger: Self.commandLogger(configuration)) { stores in
                try await body(configuration, stores)
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch let error as StoreError {
            throw CommandFailure("store: \(error.message)")
        } catch let error as ConfigurationError {
            throw CommandFailure("configuration: \(error)")
        } catch let error as UserAdministration.InputError {
            throw CommandFailure(error.description)
        } catch let error as SessionAdministration.Unreachable {
            throw CommandFailure(error.description)
        }
    }
}

/// The exit statuses of every command, for scripts (README, "Operations").
enum ExitStatus: Int32 {
    /// Done.
    case success = 0
    /// Could not be done: a store is unavailable, the configuration or the input cannot be used.
    case failure = 1
    /// The command line is wrong: an unknown command or option, a missing or extra argument.
    case usage = 2
    /// The user, session or handle named does not exist.
    case notFound = 3
}

/// A failure reported as one line on stderr and an exit status (1 unless said otherwise), never a stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    let status: ExitStatus

    init(_ description: String, status: ExitStatus = .failure) {
        self.description = description
        self.status = status
    }

    /// No user `reference` names (exit status 3).
    static func noUser(_ reference: String) -> Self {
        Self("no user \(Output.safe(reference))", status: .notFound)
    }
}
