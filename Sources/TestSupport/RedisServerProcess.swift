import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` for tests and benchmarks: a free 127.0.0.1 port, a fresh temporary directory, no persistence
/// unless asked for. It can also serve TLS only (``TLSOptions``) or run as a Sentinel (``start(extraArguments:unixSocket:tls:sentinelConfiguration:)``).
///
/// It deliberately does not use `RedisClient`: readiness is checked with a plain socket and a hand-written `PING` (for
/// a TLS-only server: an accepted TCP connection and the server's "Ready to accept connections" log line), so a client
/// bug can't make the fixture look healthy. Prefer ``withRedisServer(extraArguments:unixSocket:tls:_:)``, which always
/// stops the server, even when the body throws.
package final class RedisServerProcess: Sendable {
    /// How a TLS-only server is set up: `--port 0 --tls-port PORT` with these files.
    package struct TLSOptions: Sendable {
        /// The server's certificate (PEM).
        package var certificatePath: String
        /// The server certificate's private key (PEM).
        package var privateKeyPath: String
        /// The CA that client certificates must chain to (PEM).
        package var caCertificatePath: String
        /// `--tls-auth-clients yes` (a client certificate is required) or `no`.
        package var requireClientCertificates: Bool

        package init(certificatePath: String, privateKeyPath: String, caCertificatePath: String, requireClientCertificates: Bool) {
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
            self.caCertificatePath = caCertificatePath
            self.requireClientCertificates = requireClientCertificates
        }
    }

    /// The TCP port the server listens on, on 127.0.0.1 (the TLS port of a TLS-only server).
    package let port: Int
    /// The server's working directory (`--dir`): RDB/AOF files and `redis.log` live here.
    package let directory: URL
    /// The Unix socket path, when started with `unixSocket: true`.
    package let unixSocketPath: String?
    /// How the server serves TLS only, if it does.
    package let tls: TLSOptions?
    /// Whether the server speaks TLS only.
    package var usesTLS: Bool { self.tls != nil }
    private let arguments: [String]
    private let executable: URL
    private let state: Mutex<State>

    private struct State {
        /// The running server's process ID; `nil` before the first launch and once it has been reaped.
        var pid: pid_t?
        var paused = false
    }

    private init(port: Int, directory: URL, unixSocketPath: String?, tls: TLSOptions?, arguments: [String], executable: URL) {
        self.port = port
        self.directory = directory
        self.unixSocketPath = unixSocketPath
        self.tls = tls
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
    ///   - tls: Serve TLS only, on ``port`` (`--port 0 --tls-port PORT`), with these certificates.
    ///   - sentinelConfiguration: Run as a Sentinel (`redis-server sentinel.conf --sentinel`) with this configuration
    ///     file text (such as `sentinel monitor m 127.0.0.1 6379 2`), written to `sentinel.conf` in the directory; the
    ///     Sentinel rewrites that file as it learns.
    ///   - clusterBus: The server is a cluster node: its port is at most 55535 and the bus port (port + 10000) is free too.
    /// - Throws: ``RedisServerProcessError`` when `redis-server` is missing or does not start.
    package static func start(
        extraArguments: [String] = [],
        unixSocket: Bool = false,
        tls: TLSOptions? = nil,
        sentinelConfiguration: String? = nil,
        clusterBus: Bool = false
    ) async throws -> RedisServerProcess {
        let executable = try Self.locateRedisServer()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try clusterBus ? Self.freeClusterPort() : Self.freePort()
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let socketPath = unixSocket ? directory.appendingPathComponent("redis.sock").path : nil
            var arguments: [String] = []
            if let sentinelConfiguration {
                let path = directory.appendingPathComponent("sentinel.conf")
                try Data(sentinelConfiguration.utf8).write(to: path)
                arguments += [path.path, "--sentinel"]
            }
            if let tls {
                arguments += [
                    "--port", "0", "--tls-port", "\(port)", "--tls-cert-file", tls.certificatePath, "--tls-key-file", tls.privateKeyPath,
                    "--tls-ca-cert-file", tls.caCertificatePath, "--tls-auth-clients", tls.requireClientCertificates ? "yes" : "no",
                ]
            } else {
                arguments += ["--port", "\(port)"]
            }
            arguments += [
                "--bind", "127.0.0.1", "--dir", directory.path, "--daemonize", "no", "--logfile",
                directory.appendingPathComponent("redis.log").path,
            ]
            if sentinelConfiguration == nil {
                arguments += ["--save", "", "--appendonly", "no"]
            }
            if let socketPath {
                arguments += ["--unixsocket", socketPath, "--unixsocketperm", "700"]
            }
            arguments += extraArguments
            let server = RedisServerProcess(
                port: port,
                directory: directory,
                unixSocketPath: socketPath,
                tls: tls,
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
        // A restart must not see the previous run's "Ready" line.
        try? FileManager.default.removeItem(at: self.directory.appendingPathComponent("redis.log"))
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
            if await self.isReady() {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        Self.sendSignal(pid, SIGKILL)
        try? await self.waitForExit(pid)
        throw RedisServerProcessError("redis-server on port \(self.port) did not answer PING within 10 s: \(self.logTail())")
    }

    /// Whether the server serves: it answers `PING`, or (TLS only) it accepts TCP connections and has logged that it is
    /// ready (a Sentinel: its ID).
    private func isReady() async -> Bool {
        guard self.usesTLS else {
            return await Self.answersPingOffThePool(port: self.port)
        }
        // A Sentinel logs no "Ready" line; its ID comes once it has read its configuration and listens.
        let log = self.logTail(lines: 1000)
        guard log.contains("Ready to accept connections") || log.contains("Sentinel ID is") else {
            return false
        }
        return await Self.offThePool { Self.acceptsConnections(port: self.port) }
    }

    /// Starts `path` with `posix_spawn`, stdio on /dev/null, an empty signal mask and default signal handlers.
    ///
    /// Not Foundation's `Process`: on Linux it hands the child the spawning thread's signal mask, in which SIGTERM is
    /// blocked (observed under `swift test`), so redis-server would never see the SIGTERM of ``stop()``.
    private static func spawn(_ path: String, arguments: [String], output: String = "/dev/null") throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&fileActions, 1, 2)

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
        try Self.locate("redis-server", hint: "install it (apt-get install redis-server) — these tests need a real Redis")
    }

    private static func locate(_ name: String, hint: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/\(name)" } + ["/usr/bin/\(name)", "/usr/local/bin/\(name)"]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        throw RedisServerProcessError("\(name) was not found on PATH or in /usr/bin: \(hint)")
    }

    /// A free port at most 55535 whose cluster bus port (+10000) is free too.
    package static func freeClusterPort() throws -> Int {
        for _ in 0..<200 {
            let port = try Self.freePort()
            if port <= 55535, Self.isFree(port + 10000) {
                return port
            }
        }
        throw RedisServerProcessError("found no free port pair (P, P+10000) for a cluster node")
    }

    /// Whether `port` can be bound on 127.0.0.1 right now.
    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = Self.loopbackAddress(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
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
        await Self.offThePool { Self.answersPing(port: port) }
    }

    /// Runs blocking `work` on a Dispatch queue, so it never holds a Swift concurrency thread.
    package static func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: work())
            }
        }
    }

    /// Whether 127.0.0.1:`port` accepts a TCP connection within 200 ms (nothing is sent).
    package static func acceptsConnections(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0
    }

    /// Runs a command-line tool (such as `redis-cli` or `openssl`) to completion, polling for its exit, at most `timeout`.
    /// - Returns: Its standard output and standard error, interleaved.
    /// - Throws: ``RedisServerProcessError`` when the tool is missing, fails to start, exits with a non-zero status or
    ///   runs longer than `timeout` (it is then killed).
    @discardableResult
    package static func runTool(_ name: String, _ arguments: [String], timeout: Duration = .seconds(30)) async throws -> String {
        let path = try Self.locate(name, hint: "install it (apt-get install redis-tools openssl)")
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        let pid = try Self.spawn(path.path, arguments: arguments, output: output.path)
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                Self.sendSignal(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw RedisServerProcessError("\(name) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        // Exited normally with status 0: the low 7 bits (the signal) and the exit code are all zero.
        guard status == 0 else {
            throw RedisServerProcessError("\(name) \(arguments.joined(separator: " ")) failed (wait status \(status)): \(text)")
        }
        return text
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
///   - tls: Serve TLS only, with these certificates.
///   - body: The test.
@discardableResult
package func withRedisServer<Result>(
    extraArguments: [String] = [],
    unixSocket: Bool = false,
    tls: RedisServerProcess.TLSOptions? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RedisServerProcess) async throws -> Result
) async throws -> Result {
    let server = try await RedisServerProcess.start(extraArguments: extraArguments, unixSocket: unixSocket, tls: tls)
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
