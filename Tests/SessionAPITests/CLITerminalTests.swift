import Foundation
import SessionAPI
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `session-api user create` without `--password` on a terminal (a pseudo-terminal here): a prompt, no echo.
@Suite struct CLITerminalTests {
    /// A pseudo-terminal pair: the test types on `controller`, the binary's stdin and stderr are `terminal`.
    final class PseudoTerminal: Sendable {
        let controller: Int32
        let terminal: Int32

        init() throws {
            // posix_openpt, unlockpt and ptsname, as glibc does them on Linux (Swift's Glibc module lacks them).
            let controller = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
            try #require(controller >= 0, "/dev/ptmx: \(String(cString: strerror(errno)))")
            var unlock: Int32 = 0
            var number: UInt32 = 0
            // TIOCSPTLCK and TIOCGPTN (asm-generic values: x86-64, arm64).
            guard ioctl(controller, 0x4004_5431, &unlock) == 0, ioctl(controller, 0x8004_5430, &number) == 0 else {
                close(controller)
                throw PseudoTerminalError()
            }
            let terminal = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_CLOEXEC)
            guard terminal >= 0 else {
                close(controller)
                throw PseudoTerminalError()
            }
            _ = fcntl(controller, F_SETFL, fcntl(controller, F_GETFL) | O_NONBLOCK)
            self.controller = controller
            self.terminal = terminal
        }

        deinit {
            close(self.controller)
            close(self.terminal)
        }

        /// Whether the terminal echoes what is typed.
        var echoes: Bool {
            var settings = termios()
            return tcgetattr(self.terminal, &settings) == 0 && settings.c_lflag & tcflag_t(ECHO) != 0
        }

        func type(_ text: String) {
            _ = text.utf8CString.withUnsafeBytes { write(self.controller, $0.baseAddress, $0.count - 1) }
        }

        /// What the terminal has shown so far (non-blocking).
        func drain() -> String {
            var output: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 1024)
            while true {
                let count = read(self.controller, &buffer, buffer.count)
                guard count > 0 else { break }
                output += buffer[..<count]
            }
            return String(decoding: output, as: UTF8.self)
        }

        /// Polls the terminal's output until it contains `marker`; returns all output so far.
        func waitFor(_ marker: String, after shown: String, timeout: Duration = .seconds(20)) async throws -> String {
            var shown = shown
            let deadline = ContinuousClock.now + timeout
            while !shown.contains(marker), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
                shown += self.drain()
            }
            try #require(shown.contains(marker), "no \(marker.debugDescription) on the terminal: \(shown.debugDescription)")
            return shown
        }
    }

    struct PseudoTerminalError: Error {}

    /// Starts `user create --email bob@example.com` on `terminal`; returns the process and its stdout.
    static func start(on terminal: PseudoTerminal, directory: String) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = try SessionAPIBinary.url()
        process.arguments = ["user", "create", "--email", "bob@example.com"]
        process.environment = ["PATH": "/usr/bin:/bin", "DATA_DIR": directory, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1"]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardInput = FileHandle(fileDescriptor: terminal.terminal, closeOnDealloc: false)
        process.standardError = FileHandle(fileDescriptor: terminal.terminal, closeOnDealloc: false)
        try process.run()
        return (process, stdout)
    }

    /// Waits for `process` to exit (polled), then returns its status.
    static func exitStatus(_ process: Process, timeout: Duration = .seconds(20)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test func thePasswordIsTypedTwiceWithoutEcho() async throws {
        try await withDataDirectory { directory in
            let terminal = try PseudoTerminal()
            let (process, stdout) = try Self.start(on: terminal, directory: directory)
            var shown = try await terminal.waitFor("Password: ", after: "")
            // A typo, erased (DEL), and the Enter key (CR, which the terminal turns into a newline).
            terminal.type("correct horsx\u{7F}e\r")
            shown = try await terminal.waitFor("Password (again): ", after: shown)
            terminal.type("correct horse\r")
            #expect(try await Self.exitStatus(process) == 0, "terminal: \(shown + terminal.drain())")
            shown += terminal.drain()
            #expect(!shown.contains("horse"), "the password was echoed: \(shown.debugDescription)")
            #expect(terminal.echoes, "echo was not turned back on")
            let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(output.contains(#""email":"bob@example.com""#))
            try await TestApp.run(AppConfiguration.test(directory: directory, authType: .sessionAuth)) { _, client in
                _ = try await client.login(email: "bob@example.com", password: "correct horse")
            }
        }
    }

    @Test func ctrlCCancelsAndTurnsEchoBackOn() async throws {
        try await withDataDirectory { directory in
            let terminal = try PseudoTerminal()
            let (process, _) = try Self.start(on: terminal, directory: directory)
            let shown = try await terminal.waitFor("Password: ", after: "")
            terminal.type("correct\u{03}")
            #expect(try await Self.exitStatus(process) == 1)
            #expect((shown + terminal.drain()).contains("session-api: cancelled"))
            #expect(terminal.echoes, "echo was not turned back on")
            #expect(!FileManager.default.fileExists(atPath: directory + "/.db_User.json"))
        }
    }
}
