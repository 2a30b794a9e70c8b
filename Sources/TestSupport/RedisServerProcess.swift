import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` for tests and benchmarks: a free 127.0.0.1 port, a fresh temporary directory, no persistence
/// unless asked for.
///
/// It deliberately does not use `RedisClient`: readiness is checked with a plain socket and a hand-written `PING`, so a
/// client bug can't make the fixture look healthy. Prefer ``withRedisServer(extraArguments:unixSocket:_:)``, which
/// always stops the server, even when the body throws.
package final class RedisServerProcess: Sendable {
    /// The TCP port the server listens on, on 127.0.0.1.
    package let port: Int
    /// The server's working directory (`--dir`): RDB/AOF files and `redis.log` live here.
    package let directory: URL
    /// The Unix socket path, when started with `unixSocket: true`.
    package let unixSocketPath: String?
    private let arguments: [String]
    private let executable: URL
    private let state: Mutex<State>

    private struct State {
        /// The running server's process ID; `nil` before the first launch and once it has been reaped.
        var pid: pid_t?
        var paused = false
    }

    private init(port: Int, directory: URL, unixSocketPath: String?, arguments: [String], executable: URL) {
        self.port = port
        self.directory = directory
        self.unixSocketPath = unixSocketPath
        self.arguments = arguments
        self.executable = executable
        self.state = Mutex(State())
    }

    deinit {
        // Last resort when a test forgot to stop the server: never leave a redis-server behind.
        if let pid = self.state.withLock({ $0.pid }) {
            Self.sendSignal(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    // MARK: Starting

    /// Starts `redis-server` on a free port in a new temporary directory and waits until it answers `PING`.
    /// - Parameters:
    ///   - extraArguments: More `redis-server` arguments, such as `["--requirepass", "secret"]` or `["--appendonly", "yes"]`;
    ///     they come last, so they override the defaults.
    ///   - unixSocket: Also listen on a Unix socket in the temporary directory (see ``unixSocketPath``).
    /// - Throws: ``RedisServerProcessError`` when `redis-server` is missing or does not start.
    package static func start(extraArguments: [String] = [], unixSocket: Bool = false) async throws -> RedisServerProcess {
        let executable = try Self.locateRedisServer()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try Self.freePort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let socketPath = unixSocket ? directory.appendingPathComponent("redis.sock").path : nil
            var arguments = [
                "--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory.path, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--logfile", directory.appendingPathComponent("redis.log").path,
            ]
            if let socketPath {
                arguments += ["--unixsocket", socketPath, "--unixsocketperm", "700"]
            }
            arguments += extraArguments
            let server = RedisServerProcess(
                port: port,
                directory: directory,
                unixSocketPath: socketPath,
                arguments: arguments,
                executable: executable
            )
            do {
                try await server.launch()
                return server
            } catch let error as RedisServerProcessError where error.portInUse {
                // Another process took the port between our probe and redis' bind: try another one.
                lastError = error
                continue
            }
        }
        throw lastError ?? RedisServerProcessError("could not start redis-server")
    }

    /// Starts the process with the stored arguments and waits (polling `PING`, at most 10 s) until it answers.
    private func launch() async throws {
        let pid = try Self.spawn(self.executable.path, arguments: self.arguments)
        self.state.withLock {
            $0.pid = pid
            $0.paused = false
        }

        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let status = self.reapIfExited(pid) {
                let log = self.logTail()
                throw RedisServerProcessError(
                    "redis-server exited at start-up (wait status \(status)): \(log)",
                    portInUse: log.contains("Address already in use")
                )
            }
            if await Self.answersPingOffThePool(port: self.port) {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        Self.sendSignal(pid, SIGKILL)
        try? await self.waitForExit(pid)
        throw RedisServerProcessError("redis-server on port \(self.port) did not answer PING within 10 s: \(self.logTail())")
    }

    /// Starts `path` with `posix_spawn`, stdio on /dev/null, an empty signal mask and default signal handlers.
    ///
    /// Not Foundation's `Process`: on Linux it hands the child the spawning thread's signal mask, in which SIGTERM is
    /// blocked (observed under `swift test`), so redis-server would never see the SIGTERM of ``stop()``.
    private static func spawn(_ path: String, arguments: [String]) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 2, "/dev/null", O_WRONLY, 0)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) }
        defer {
            for argument in argv {
                free(argument)
            }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &fileActions, &attributes, argv + [nil], environ)
        guard result == 0 else {
            throw RedisServerProcessError("could not start \(path): posix_spawn failed with error \(result)")
        }
        return pid
    }

    // MARK: Controlling

    /// The server's process ID, while it runs.
    package var pid: Int32? {
        self.state.withLock { $0.pid }
    }

    /// Stops the server with SIGTERM and waits until it has exited (SIGKILL after 10 s). Does nothing if it is not running.
    package func stop() async throws {
        guard let (pid, paused) = self.state.withLock({ state in state.pid.map { ($0, state.paused) } }) else { return }
        Self.sendSignal(pid, SIGTERM)
        if paused {
            // A stopped process only acts on SIGTERM once it runs again.
            Self.sendSignal(pid, SIGCONT)
        }
        do {
            try await self.waitForExit(pid)
        } catch {
            Self.sendSignal(pid, SIGKILL)
            try await self.waitForExit(pid)
        }
    }

    /// Kills the server with SIGKILL (no shutdown, no save) and waits until it has exited.
    package func kill() async throws {
        guard let pid = self.pid else { return }
        Self.sendSignal(pid, SIGKILL)
        try await self.waitForExit(pid)
    }

    /// Freezes the server with SIGSTOP: its sockets still accept connections but nothing is answered.
    package func pause() throws {
        try self.signal(SIGSTOP)
        self.state.withLock { $0.paused = true }
    }

    /// Resumes a server frozen by ``pause()``, with SIGCONT.
    package func resume() throws {
        try self.signal(SIGCONT)
        self.state.withLock { $0.paused = false }
    }

    /// Stops the server if it runs, then starts it again on the same port and directory and waits until it answers `PING`.
    package func restart() async throws {
        try await self.stop()
        try await self.launch()
    }

    /// Deletes the temporary directory. Call after ``stop()``.
    package func removeDirectory() {
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// The last lines of the server's log, for failure messages.
    package func logTail(lines: Int = 10) -> String {
        let url = self.directory.appendingPathComponent("redis.log")
        guard let data = try? Data(contentsOf: url) else { return "(no log)" }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    private func signal(_ signal: Int32) throws {
        guard let pid = self.pid else {
            throw RedisServerProcessError("redis-server on port \(self.port) is not running")
        }
        guard Self.sendSignal(pid, signal) == 0 else {
            throw RedisServerProcessError("could not send signal \(signal) to redis-server (pid \(pid)): errno \(errno)")
        }
    }

    // MARK: Helpers

    /// Polls until `pid` has exited and reaps it, at most 10 s.
    private func waitForExit(_ pid: pid_t) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while self.reapIfExited(pid) == nil {
            guard ContinuousClock.now < deadline else {
                throw RedisServerProcessError("redis-server (pid \(pid)) did not exit within 10 s")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Reaps `pid` if it has exited and returns its wait status; `nil` while it runs.
    private func reapIfExited(_ pid: pid_t) -> Int32? {
        self.state.withLock { state -> Int32? in
            guard state.pid == pid else { return 0 }  // already reaped
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result != 0 else { return nil }
            state.pid = nil
            state.paused = false
            return result == pid ? status : -1
        }
    }

    private static func locateRedisServer() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/redis-server" } + ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        throw RedisServerProcessError(
            "redis-server was not found on PATH or in /usr/bin: install it (apt-get install redis-server) — these tests need a real Redis"
        )
    }

    /// A TCP port that is free on 127.0.0.1 right now: bind port 0, read the port the kernel chose, close.
    package static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerProcessError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = Self.loopbackAddress(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw RedisServerProcessError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw RedisServerProcessError("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// ``answersPing(port:)`` on a Dispatch queue, so its blocking socket calls never hold a Swift concurrency thread.
    package static func answersPingOffThePool(port: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Self.answersPing(port: port))
            }
        }
    }

    /// Whether a server on 127.0.0.1:`port` answers a hand-encoded `PING` within 200 ms (`+PONG`, or `-NOAUTH` when it
    /// requires a password).
    package static func answersPing(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        let ping = Array("*1\r\n$4\r\nPING\r\n".utf8)
        guard ping.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == ping.count else { return false }
        var reply = [UInt8](repeating: 0, count: 64)
        let received = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard received > 0 else { return false }
        let text = String(decoding: reply[0..<received], as: UTF8.self)
        return text.hasPrefix("+PONG") || text.hasPrefix("-NOAUTH")
    }

    /// `kill(2)`; named differently so it can't be confused with ``kill()``.
    @discardableResult
    private static func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
        #if canImport(Glibc)
        Glibc.kill(pid, signal)
        #else
        Darwin.kill(pid, signal)
        #endif
    }

    private static func loopbackAddress(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian
        return address
    }
}

/// Runs `body` with a fresh `redis-server`, then stops it by PID and deletes its directory, whether `body` returns or throws.
/// - Parameters:
///   - extraArguments: More `redis-server` arguments.
///   - unixSocket: Also listen on a Unix socket.
///   - body: The test.
@discardableResult
package func withRedisServer<Result>(
    extraArguments: [String] = [],
    unixSocket: Bool = false,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServerProcess) async throws -> Result
) async throws -> Result {
    let server = try await RedisServerProcess.start(extraArguments: extraArguments, unixSocket: unixSocket)
    let result: Result
    do {
        result = try await body(server)
    } catch {
        try? await server.stop()
        server.removeDirectory()
        throw error
    }
    try await server.stop()
    server.removeDirectory()
    return result
}

/// Why the `redis-server` fixture failed.
package struct RedisServerProcessError: Error, CustomStringConvertible {
    package let description: String
    let portInUse: Bool

    init(_ description: String, portInUse: Bool = false) {
        self.description = description
        self.portInUse = portInUse
    }
}
