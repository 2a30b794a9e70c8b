import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import SessionAPI
import Synchronization
import Testing

/// The lines an `AppLogHandler` wrote, kept for a test.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])

    var output: LogOutput {
        LogOutput { bytes in self.lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) } }
    }

    var all: [String] { self.lines.withLock { $0 } }

    /// The access lines (one a request), text format.
    var accessLines: [String] { self.all.filter { $0.contains("[SessionAPI] request\n") } }

    func logger(_ format: LogFormat, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "session-api", factory: AppLogHandler.factory(format: format, output: self.output))
        logger.logLevel = level
        return logger
    }
}

/// One access line per request through swift-log, its request id, its formats; no secret in any line.
@Suite(.storeBackend) struct AccessLogTests {
    /// Runs `body` against an app whose log goes to `capture`.
    func withApp(
        _ authType: AuthType?,
        format: LogFormat = .text,
        level: Logger.Level = .info,
        capture: LogCapture,
        _ body: @Sendable (TestApp, any TestClientProtocol) async throws -> Void
    ) async throws {
        try await withDataDirectory { directory in
            var settings = AppConfiguration.test(directory: directory, authType: authType)
            settings.logLevel = level
            let configuration = settings
            let logger = capture.logger(format, level: level)
            let stores = try await AppStores.open(configuration, logger: testLogger())
            let app = try buildApplication(configuration, stores: stores, logger: logger)
            try await app.test(.router) { client in try await body(TestApp(configuration: configuration, stores: stores), client) }
        }
    }

    static var textLine: Regex<(Substring, Substring, Substring, Substring, Substring, Substring, Substring)> {
        #/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} info session-api: client_ip=(\S+) duration_ms=([0-9.]+) hb\.request\.id=(\S+) method=(\S+) route=(\S+) status=(\d+) \[SessionAPI\] request\n$/#
    }

    @Test func oneTextLinePerRequestWithRouteStatusDurationAndID() async throws {
        let capture = LogCapture()
        try await self.withApp(nil, capture: capture) { _, client in
            let status = try await client.status()
            #expect(status.status == .ok)
            let generated = try #require(status.headers[HTTPField.Name("X-Request-Id")!])
            #expect(generated.count >= 16)
            _ = try await client.showUser(id: "no-such-id")
            _ = try await client.get("/no/such/path")
            let echoed = try await client.get("/api/v1/status", headers: [HTTPField.Name("X-Request-Id")!: "abc-123.def:4/5+6="])
            #expect(echoed.headers[HTTPField.Name("X-Request-Id")!] == "abc-123.def:4/5+6=")
            // Not sane (a space, a quote, too long): replaced by a generated id, never logged or echoed.
            for bad in ["two words", "quote\"", String(repeating: "a", count: 129)] {
                let replaced = try await client.get("/api/v1/status", headers: [HTTPField.Name("X-Request-Id")!: bad])
                let id = try #require(replaced.headers[HTTPField.Name("X-Request-Id")!])
                #expect(id != bad && RequestIDCheck.isHex(id))
            }

            let lines = capture.accessLines
            #expect(lines.count == 7, "\(capture.all)")
            let parsed = lines.compactMap { try? Self.textLine.wholeMatch(in: $0)?.output }
            #expect(parsed.count == lines.count, "\(lines)")
            #expect(
                parsed.map { String($0.5) } == [
                    "/api/v1/status", "/api/v1/users/{id}", "NotFound", "/api/v1/status", "/api/v1/status", "/api/v1/status", "/api/v1/status",
                ]
            )
            #expect(parsed.map { String($0.6) } == ["200", "404", "404", "200", "200", "200", "200"])
            #expect(parsed.allSatisfy { $0.4 == "GET" && $0.1 == "-" && Double($0.2) != nil })
            #expect(parsed[0].3 == generated)
            #expect(parsed[3].3 == "abc-123.def:4/5+6=")
            #expect(!capture.all.joined().contains("two words") && !capture.all.joined().contains("aaaaaaaaaaaaaaaa"))
        }
    }

    @Test func jsonFormatIsOneObjectALine() async throws {
        let capture = LogCapture()
        try await self.withApp(nil, format: .json, capture: capture) { _, client in
            _ = try await client.get("/api/v1/users/xyz", headers: [HTTPField.Name("X-Request-Id")!: "req-1"])
            let lines = capture.all.filter { $0.contains(#""message":"request""#) }
            #expect(lines.count == 1, "\(capture.all)")
            let line = try #require(lines.first)
            #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["level"] as? String == "info")
            #expect(object["label"] as? String == "session-api")
            #expect(object["source"] as? String == "SessionAPI")
            #expect(object["message"] as? String == "request")
            #expect(object["hb.request.id"] as? String == "req-1")
            #expect(object["method"] as? String == "GET")
            #expect(object["route"] as? String == "/api/v1/users/{id}")
            #expect(object["status"] as? Int == 404)
            #expect(object["duration_ms"] is Double || object["duration_ms"] is Int)
            #expect(object["client_ip"] as? String == "-")
            let timestamp = try #require(object["timestamp"] as? String)
            #expect(timestamp.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "\(timestamp)")
        }
    }

    @Test func warningLevelWritesNoAccessLine() async throws {
        let capture = LogCapture()
        try await self.withApp(nil, level: .warning, capture: capture) { _, client in
            let response = try await client.status()
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("X-Request-Id")!] != nil)
        }
        #expect(capture.all.allSatisfy { $0.contains(" warning ") }, "\(capture.all)")
        #expect(capture.accessLines.isEmpty, "\(capture.all)")
    }

    /// The access line's fast path writes exactly what the ordinary path (`Logger.info` with metadata) writes.
    @Test(arguments: LogFormat.allCases)
    func theFastPathWritesWhatTheOrdinaryPathWrites(format: LogFormat) {
        let entries = [
            AccessLogEntry(
                clientIP: "203.0.113.7",
                duration: .microseconds(412),
                requestID: "abc-1",
                method: "GET",
                route: "/api/v1/users/me",
                status: 200
            ),
            AccessLogEntry(
                clientIP: "-",
                duration: .seconds(12) + .microseconds(5),
                requestID: "x",
                method: "DELETE",
                route: "NotFound",
                status: 404
            ),
        ]
        for entry in entries {
            let fast = LogCapture()
            #expect(AppLogHandler(label: "session-api", format: format, output: fast.output).logAccess(entry))
            let ordinary = LogCapture()
            var logger = ordinary.logger(format)
            logger[metadataKey: "hb.request.id"] = .string(entry.requestID)
            logger.info(AccessLogEntry.message, metadata: entry.metadata, source: "SessionAPI")
            let withoutTime = { (line: String) in line.replacing(#/^\S+ |"timestamp":"[^"]*"/#, with: "") }
            #expect(fast.all.map(withoutTime) == ordinary.all.map(withoutTime))
            #expect(fast.all.count == 1)
        }
        let milliseconds = LogCapture()
        _ = AppLogHandler(label: "session-api", format: .text, output: milliseconds.output).logAccess(entries[1])
        #expect(milliseconds.all.first?.contains(" duration_ms=12000.005 ") == true)
        // Other metadata on the logger: the ordinary path, which writes it too.
        var handler = AppLogHandler(label: "session-api", format: .text, output: LogCapture().output)
        handler[metadataKey: "extra"] = "1"
        #expect(!handler.logAccess(entries[0]))
        handler.logLevel = .warning
        handler[metadataKey: "extra"] = nil
        #expect(!handler.logAccess(entries[0]))
    }

    /// A log line's values cannot start a line of their own.
    @Test func controlCharactersInValuesAreEscaped() {
        let capture = LogCapture()
        let logger = capture.logger(.text)
        logger.info("two\nlines", metadata: ["key": "a\r\nb"])
        let line = capture.all.first ?? ""
        #expect(line.hasSuffix(#"key=a\r\nb [SessionAPITests] two\nlines"# + "\n"), "\(line)")
    }
}

extension TestClient {
    /// `POST /api/v1/auth_session/login` with form fields, on a live server.
    func login(email: String, password: String) async throws -> TestClient.Response {
        try await self.post(
            "/api/v1/auth_session/login",
            headers: [.contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "email=\(formEncoded(email))&password=\(formEncoded(password))")
        )
    }
}

/// `LogWriter`: lines written at once from many tasks all arrive, whole.
@Suite struct LogWriterTests {
    @Test func concurrentLinesArriveWhole() async throws {
        try await withDataDirectory { directory in
            let path = directory + "/log"
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            try #require(descriptor >= 0)
            let writer = LogWriter(descriptor: descriptor)
            await withTaskGroup(of: Void.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        for line in 0..<500 {
                            writer.write(Array("task \(task) line \(line) \(String(repeating: "x", count: line % 97))\n".utf8))
                        }
                    }
                }
            }
            close(descriptor)
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 8 * 500)
            #expect(Set(lines).count == 8 * 500)
            #expect(lines.allSatisfy { $0.wholeMatch(of: #/task \d line (\d+) x*/#).map { $0.1.count > 0 } == true })
        }
    }
}

enum RequestIDCheck {
    static func isHex(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy(\.isHexDigit)
    }
}

/// The real binary's log of a login and of a Basic request, grepped: one access line per request and no
/// password, hash, cookie value or credentials anywhere, even at `trace`.
@Suite(.enabled(if: TestBackend.current == .files, "the real binary with its own stores"))
struct AccessLogSecretsTests {
    static let password = "S3cret-horse-battery"

    /// Starts the binary with `authType`, one user, the log in a file; returns the log after `body`.
    func withServer(
        _ authType: AuthType,
        format: LogFormat,
        _ body: @escaping @Sendable (ServerProcess, TestClient) async throws -> (requests: Int, secrets: [String])
    ) async throws -> (log: String, requests: Int, secrets: [String]) {
        try await withDataDirectory { directory in
            let users = try await JSONFileUserStore(directory: directory)
            let user = try await UserAdministration.createUser(
                email: "bob@example.com",
                password: Self.password,
                firstName: nil,
                lastName: nil,
                users: users,
                hasher: PasswordHasher(parameters: .testing)
            )
            let logFile = URL(fileURLWithPath: directory + "/server.log")
            let server = try await ServerProcess(
                environment: [
                    "DATA_DIR": directory, "AUTH_TYPE": authType.rawValue, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
                    "LOG_LEVEL": "trace",
                    "LOG_FORMAT": format.rawValue,
                ],
                output: logFile
            )
            let before = try String(contentsOf: logFile, encoding: .utf8)
            let made: (requests: Int, secrets: [String])
            do {
                made = try await server.withClient { client in try await body(server, client) }
            } catch {
                server.terminate()
                throw error
            }
            #expect(server.terminate() == 0)
            let log = try String(contentsOf: logFile, encoding: .utf8)
            return (String(log.dropFirst(before.count)), made.requests, made.secrets + [Self.password, try #require(user.passwordHash)])
        }
    }

    func expectNoSecrets(_ log: String, _ secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in secrets {
            #expect(!log.contains(secret), "the log holds \(secret)", sourceLocation: sourceLocation)
        }
        for header in ["authorization", "cookie", "set-cookie", "basic "] {
            #expect(!log.lowercased().contains(header), "the log names \(header)", sourceLocation: sourceLocation)
        }
    }

    /// The access lines of requests other than the start-up's `/healthz` polls.
    func accessLines(_ log: String, _ format: LogFormat) -> [Substring] {
        log.split(separator: "\n").filter { line in
            switch format {
            case .text: line.hasSuffix("[SessionAPI] request") && !line.contains("route=/healthz")
            case .json: line.contains(#""message":"request""#) && !line.contains(#""route":"/healthz""#)
            }
        }
    }

    @Test(arguments: LogFormat.allCases)
    func loginAndSessionRequests(format: LogFormat) async throws {
        let result = try await self.withServer(.sessionAuth, format: format) { _, client in
            let login = try await client.login(email: "bob@example.com", password: Self.password)
            #expect(login.head.status == .ok)
            let pair = try #require(login.head.headerFields[.setCookie]?.split(separator: ";").first.map(String.init))
            let value = String(pair.drop { $0 != "=" }.dropFirst())
            #expect(try await client.get("/api/v1/users/me", headers: .cookie(pair)).head.status == .ok)
            #expect(try await client.login(email: "bob@example.com", password: "wrong \(Self.password)").head.status == .unauthorized)
            #expect(try await client.delete("/api/v1/auth_session/logout", headers: .cookie(pair), body: ByteBuffer()).head.status == .ok)
            return (4, [value, SessionID.handle(of: value)])
        }
        #expect(self.accessLines(result.log, format).count == result.requests, "\(result.log)")
        self.expectNoSecrets(result.log, result.secrets)
    }

    @Test(arguments: LogFormat.allCases)
    func basicRequests(format: LogFormat) async throws {
        let result = try await self.withServer(.basicAuth, format: format) { _, client in
            let good = try await client.get("/api/v1/users/me", headers: .basic("bob@example.com", Self.password))
            #expect(good.head.status == .ok)
            let bad = try await client.get("/api/v1/users/me", headers: .basic("bob@example.com", "nope"))
            #expect(bad.head.status == .forbidden)
            return (2, [])
        }
        #expect(self.accessLines(result.log, format).count == result.requests, "\(result.log)")
        let credentials = Data("bob@example.com:\(Self.password)".utf8).base64EncodedString()
        self.expectNoSecrets(result.log, result.secrets + [credentials])
    }
}
