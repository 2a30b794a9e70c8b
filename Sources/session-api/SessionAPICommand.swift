import ArgumentParser
import Foundation

/// `session-api`: the server and its administration commands.
@main
struct SessionAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-api",
        abstract: "A user API with session-cookie authentication.",
        discussion: """
            Exit statuses: 0 done, 1 failure (a store unavailable, a configuration or input that cannot be used), \
            2 usage (a wrong command line), 3 not found (no such user, session or handle). Failures print one line on stderr.
            """,
        subcommands: [ServeCommand.self, UserCommand.self, SessionCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    /// Parses and runs the command; a failure prints one line to stderr and exits with its `ExitStatus`.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            Self.fail(failure.description, status: failure.status)
        } catch {
            switch exitCode(for: error) {
            case .success:
                // --help (its `run` throws a help request) prints the help on stdout and exits 0.
                exit(withError: error)
            case .validationFailure:
                let message = self.message(for: error).split(whereSeparator: \.isNewline).joined(separator: "; ")
                Self.fail("\(message) (see --help)", status: .usage)
            default:
                Self.fail("\(error)", status: .failure)
            }
        }
    }

    private static func fail(_ message: String, status: ExitStatus) -> Never {
        FileHandle.standardError.write(Data("session-api: \(message)\n".utf8))
        Foundation.exit(status.rawValue)
    }
}
