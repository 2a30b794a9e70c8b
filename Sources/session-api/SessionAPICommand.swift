import ArgumentParser
import Foundation

/// `session-api`: the server and its administration commands.
@main
struct SessionAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-api",
        abstract: "A user API with session-cookie authentication.",
        subcommands: [ServeCommand.self, UserCommand.self],
        defaultSubcommand: ServeCommand.self
    )

    /// Runs the command; failures print one line to stderr and exit 1.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            FileHandle.standardError.write(Data("session-api: \(failure.description)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
