import ArgumentParser
import Foundation
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
}

/// A failure reported as one line on stderr and exit status 1, never a stack trace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
