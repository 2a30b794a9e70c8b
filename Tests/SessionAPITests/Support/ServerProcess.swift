import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A `session-api serve` process started from the built binary, on a free loopback port, for tests
/// that need real processes (several sharing one file, kill -9). Stopped by PID.
final class ServerProcess: Sendable {
    let port: Int
    let process: Process
    /// The `METRICS_PORT` it was given, when started with `metrics: true`.
    let metricsPort: Int?

    /// Starts the server with `environment` (added to a minimal one) and `API_HOST=host`, and waits until
    /// `/healthz` answers on 127.0.0.1. Its output and log go to `output`, or (the log) to the tests' stderr.
    /// With `metrics`, it also gets a free `METRICS_PORT` (a new one on each attempt, as the API's port).
    init(
        environment: [String: String],
        host: String = "127.0.0.1",
        output: URL? = nil,
        metrics: Bool = false,
        timeout: Duration = .seconds(30)
    ) async throws {
        let binary = try Self.binaryURL()
        var lastError: (any Error)?
        for _ in 0..<5 {
            let port = try Self.freePort()
            let process = Process()
            process.executableURL = binary
            process.arguments = ["serve"]
            var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "LOG_LEVEL": "warning"]
            env.merge(environment) { _, new in new }
            env["API_HOST"] = host
            env["API_PORT"] = String(port)
            let metricsPort = metrics ? try Self.freePort() : nil
            if let metricsPort { env["METRICS_PORT"] = String(metricsPort) }
            process.environment = env
            if let output {
                _ = FileManager.default.createFile(atPath: output.path, contents: nil)
                let file = try FileHandle(forWritingTo: output)
                process.standardOutput = file
                process.standardError = file
            } else {
                process.standardOutput = FileHandle.nullDevice
            }
            try process.run()
            do {
                try await Self.waitUntilHealthy(port: port, process: process, timeout: timeout)
                self.port = port
                self.process = process
                self.metricsPort = metricsPort
                return
            } catch {
                lastError = error
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
        }
        throw lastError ?? ServerProcessError("server did not start")
    }

    var pid: Int32 { self.process.processIdentifier }

    /// SIGKILL, then wait for the process to be gone.
    func kill9() {
        if self.process.isRunning { kill(self.pid, SIGKILL) }
        self.process.waitUntilExit()
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    func terminate() -> Int32 {
        if self.process.isRunning { kill(self.pid, SIGTERM) }
        self.process.waitUntilExit()
        return self.process.terminationStatus
    }

    /// Runs `body` with a client connected to this server.
    func withClient<T: Sendable>(_ body: @escaping @Sendable (TestClient) async throws -> T) async throws -> T {
        try await TestClient.withClient(host: "127.0.0.1", port: self.port, operation: body)
    }

    /// The `session-api` binary next to the test bundle (`swift build --build-tests` builds both).
    static func binaryURL() throws -> URL {
        var candidates: [URL] = []
        if let bundle = Bundle.allBundles.first(where: { $0.bundlePath.hasSuffix(".xctest") }) {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("session-api"))
        }
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("session-api"))
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/session-api"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
        throw ServerProcessError("session-api binary not found (looked in \(candidates.map(\.path))); run `swift build --build-tests` first")
    }

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ServerProcessError("socket failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw ServerProcessError("bind failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func waitUntilHealthy(port: Int, process: Process, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw ServerProcessError("server exited with \(process.terminationStatus)") }
            let healthy = try? await TestClient.withClient(host: "127.0.0.1", port: port) { client in
                try await client.get("/healthz").status == .ok
            }
            if healthy == true { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServerProcessError("server on port \(port) not healthy after \(timeout)")
    }
}

struct ServerProcessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
