import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// The built `session-api` binary, run as a separate process.
enum SessionAPIBinary {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String

        /// stderr's non-empty lines.
        var errorLines: [Substring] { self.stderr.split(separator: "\n") }
    }

    struct Timeout: Error, CustomStringConvertible {
        let arguments: [String]
        var description: String { "session-api \(self.arguments.joined(separator: " ")) did not exit in time" }
    }

    /// The `session-api` executable that `swift build` put next to the test bundle; the test fails when there is none.
    static func url(sourceLocation: SourceLocation = #_sourceLocation) throws -> URL {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("session-api"))
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("session-api"))
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/session-api"))
        let found = candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
        return try #require(
            found,
            "no session-api binary in \(candidates.map(\.path)): run `swift build --build-tests` before `swift test --skip-build`",
            sourceLocation: sourceLocation
        )
    }

    /// Runs the binary with `arguments` and exactly `environment` (plus `PATH`), with `stdin` as its standard
    /// input (a pipe; `nil`: /dev/null); kills it after `timeout`.
    static func run(
        _ arguments: [String],
        environment: [String: String],
        stdin: String? = nil,
        timeout: Duration = .seconds(30)
    ) async throws -> Result {
        let process = Process()
        process.executableURL = try self.url()
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { current, _ in current }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        let (exited, exit) = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exit.finish() }
        try process.run()
        if let stdin {
            // Far smaller than a pipe buffer: written at once, then the end of input.
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let finished = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in exited {}
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard finished else {
            process.terminate()
            throw Timeout(arguments: arguments)
        }
        // The process is gone, so its pipes are at their end (the outputs are far smaller than a pipe buffer).
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            stderr: String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        )
    }
}

/// `session-api user create` and `session-api serve` start-up failures, through the real binary.
@Suite struct CLITests {
    static func environment(_ directory: String) -> [String: String] {
        ["DATA_DIR": directory, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1"]
    }

    /// Checks a failed run: non-zero exit, nothing on stdout, one line on stderr with no crash trace.
    func expectOneLineFailure(_ result: SessionAPIBinary.Result, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status != 0, sourceLocation: sourceLocation)
        #expect(result.errorLines.count == 1, "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        for marker in ["Fatal error", "Stack dump", "stack trace", "Backtrace", "0x0000"] {
            #expect(!result.stderr.contains(marker), "stderr: \(result.stderr)", sourceLocation: sourceLocation)
        }
    }

    @Test func userCreatePrintsTheUserAndStoresIt() async throws {
        try await withDataDirectory { directory in
            // The password on stdin, as the README shows: not on the command line.
            let result = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com", "--first-name", "Bob"],
                environment: Self.environment(directory),
                stdin: "H0lbertonSchool98!\n"
            )
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stderr.isEmpty, "stderr: \(result.stderr)")
            let lines = result.stdout.split(separator: "\n")
            #expect(lines.count == 1, "stdout: \(result.stdout)")
            let text = String(try #require(lines.first))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            expectUserObject(object)
            expectKeysSorted(text, userKeys)
            #expect(!text.contains("password"))
            #expect(object["email"] as? String == "bob@example.com")
            #expect(object["first_name"] as? String == "Bob")
            #expect(object["last_name"] is NSNull)
            let id = try #require(object["id"] as? String)

            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/.db_User.json"))
            let records = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
            #expect(records.count == 1)
            let record = try #require(records[id])
            #expect(record["email"] as? String == "bob@example.com")
            #expect(record["first_name"] as? String == "Bob")
            let hash = try #require(record["_password"] as? String)
            #expect(hash.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$"), "PASSWORD_ARGON2_* not used: \(hash)")

            // The API serves the user the CLI made, and the password works.
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .sessionAuth)) { _, client in
                let cookie = try await client.login(email: "bob@example.com", password: "H0lbertonSchool98!")
                #expect(try await client.me(headers: .cookie(cookie)).user().id == id)
            }
        }
    }

    @Test func duplicateEmailFailsWithOneLine() async throws {
        try await withDataDirectory { directory in
            let first = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com"],
                environment: Self.environment(directory),
                stdin: "pw\n"
            )
            #expect(first.status == 0, "stderr: \(first.stderr)")
            let second = try await SessionAPIBinary.run(
                ["user", "create", "--email", "BOB@example.com", "--last-name", "Dup"],
                environment: Self.environment(directory),
                stdin: "other\n"
            )
            self.expectOneLineFailure(second)
            #expect(second.stdout.isEmpty)
            #expect(second.stderr.contains("BOB@example.com"))
            let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/.db_User.json"))
            #expect(try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]).count == 1)
        }
    }

    /// An empty password is refused, from the flag, from empty stdin, from an empty line or with no stdin at all.
    @Test(
        arguments: [
            (["--password", ""], nil),
            ([], ""),
            ([], "\n"),
            ([], nil),
        ] as [([String], String?)]
    )
    func emptyPasswordFailsWithOneLine(flag: [String], stdin: String?) async throws {
        try await withDataDirectory { directory in
            let result = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com"] + flag,
                environment: Self.environment(directory),
                stdin: stdin
            )
            self.expectOneLineFailure(result)
            #expect(result.status == 1)
            #expect(result.stderr.contains("password missing"), "stderr: \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/.db_User.json"))
        }
    }

    /// stdin gives one line: the line break is not part of the password (nor is what follows), and the rest
    /// of the line is, spaces included.
    @Test(arguments: ["correct horse\n", "correct horse\r\n", "correct horse", "correct horse\nsecond line\n"])
    func passwordFromStdinLogsIn(stdin: String) async throws {
        try await withDataDirectory { directory in
            let result = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com"],
                environment: Self.environment(directory),
                stdin: stdin
            )
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.stderr.isEmpty, "stderr: \(result.stderr)")
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .sessionAuth)) { _, client in
                _ = try await client.login(email: "bob@example.com", password: "correct horse")
                expectError(try await client.loginForm(email: "bob@example.com", password: "correct horse\n"), .unauthorized, "wrong password")
            }
        }
    }

    /// `--password` still works, with a one-line warning that argv is visible to other users.
    @Test func passwordFlagWorksAndWarns() async throws {
        try await withDataDirectory { directory in
            let result = try await SessionAPIBinary.run(
                ["user", "create", "--email", "bob@example.com", "--password", "correct horse"],
                environment: Self.environment(directory)
            )
            #expect(result.status == 0, "stderr: \(result.stderr)")
            #expect(result.errorLines.count == 1, "stderr: \(result.stderr)")
            #expect(result.stderr.hasPrefix("session-api: warning: --password is visible to other users"), "stderr: \(result.stderr)")
            #expect(!result.stderr.contains("correct horse"))
            #expect(result.stdout.contains(#""email":"bob@example.com""#))
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .sessionAuth)) { _, client in
                _ = try await client.login(email: "bob@example.com", password: "correct horse")
            }
        }
    }

    @Test func dataDirFlagOverridesTheEnvironment() async throws {
        try await withDataDirectory { environmentDirectory in
            try await withDataDirectory { flagDirectory in
                let result = try await SessionAPIBinary.run(
                    ["user", "create", "--email", "bob@example.com", "--password", "pw", "--data-dir", flagDirectory],
                    environment: Self.environment(environmentDirectory)
                )
                #expect(result.status == 0, "stderr: \(result.stderr)")
                #expect(FileManager.default.fileExists(atPath: flagDirectory + "/.db_User.json"))
                #expect(!FileManager.default.fileExists(atPath: environmentDirectory + "/.db_User.json"))
            }
        }
    }

    @Test(arguments: [
        ("API_PORT", "abc"),
        ("API_PORT", "99999"),
        ("AUTH_TYPE", "kerberos"),
        ("SESSION_NAME", "bad;name"),
    ])
    func serveWithABadVariableFailsWithOneLineNamingIt(variable: String, value: String) async throws {
        try await withDataDirectory { directory in
            var environment = Self.environment(directory)
            environment["API_HOST"] = "127.0.0.1"
            environment[variable] = value
            let result = try await SessionAPIBinary.run(["serve"], environment: environment)
            self.expectOneLineFailure(result)
            #expect(result.stderr.contains(variable), "stderr: \(result.stderr)")
            // `serve` is the default command.
            let implicit = try await SessionAPIBinary.run([], environment: environment)
            self.expectOneLineFailure(implicit)
            #expect(implicit.stderr.contains(variable), "stderr: \(implicit.stderr)")
        }
    }

    @Test func serveWithACorruptUsersFileFailsWithOneLine() async throws {
        try await withDataDirectory { directory in
            try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/.db_User.json"))
            var environment = Self.environment(directory)
            environment["API_HOST"] = "127.0.0.1"
            environment["API_PORT"] = "0"
            let result = try await SessionAPIBinary.run(["serve"], environment: environment)
            self.expectOneLineFailure(result)
            #expect(result.stderr.contains(".db_User.json"), "stderr: \(result.stderr)")
            #expect(try String(contentsOfFile: directory + "/.db_User.json", encoding: .utf8) == "{not json")
        }
    }
}
