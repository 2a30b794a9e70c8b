import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SessionAPI
import Synchronization
import Testing

// MARK: - Data directories, configurations, apps

/// Runs `body` with a fresh, empty data directory under the system temp directory, removed afterwards.
func withDataDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("session-api-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url.path)
}

/// A logger for apps under test: warnings and errors only, so test output stays readable.
func testLogger() -> Logger {
    var logger = Logger(label: "session-api-tests")
    logger.logLevel = .warning
    return logger
}

extension AppConfiguration {
    /// A configuration for tests: loopback, port 0, bcrypt cost 4 (cost 12 takes ~200 ms a hash), quiet logs.
    static func test(directory: String, authType: AuthType? = nil) -> AppConfiguration {
        var configuration = AppConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.dataDirectory = directory
        configuration.authType = authType
        configuration.passwordArgon2MemoryKiB = 64
        configuration.passwordArgon2Iterations = 1
        configuration.logLevel = .warning
        TestBackend.apply(to: &configuration)
        return configuration
    }
}

/// An application under test with its configuration and stores (to seed users, or to look behind the API).
struct TestApp: Sendable {
    let configuration: AppConfiguration
    let stores: AppStores

    /// Runs `body` against an app with `authType` on a fresh data directory.
    static func run<T: Sendable>(
        _ authType: AuthType?,
        setup: TestingSetup = .router,
        _ body: @Sendable (TestApp, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        try await withDataDirectory { directory in
            try await Self.run(AppConfiguration.test(directory: directory, authType: authType), setup: setup, body)
        }
    }

    /// Runs `body` against the app `buildApplication` makes from `configuration` and `stores`
    /// (by default the stores `configuration` names, opened on its data directory).
    static func run<T: Sendable>(
        _ configuration: AppConfiguration,
        stores: AppStores? = nil,
        setup: TestingSetup = .router,
        logger: Logger = testLogger(),
        _ body: @Sendable (TestApp, any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let opened: AppStores
        if let stores {
            opened = stores
        } else {
            opened = try await AppStores.open(configuration, logger: logger)
        }
        let testApp = TestApp(configuration: configuration, stores: opened)
        let app = try buildApplication(configuration, stores: opened, logger: logger)
        return try await app.test(setup) { client in try await body(testApp, client) }
    }

    /// Adds a user straight to the store, as `session-api user create` does (POST needs a caller when auth is on).
    @discardableResult
    func seedUser(
        email: String = "bob@example.com",
        password: String = "H0lbertonSchool98!",
        firstName: String? = nil,
        lastName: String? = nil
    ) async throws -> User {
        try await UserAdministration.createUser(
            email: email,
            password: password,
            firstName: firstName,
            lastName: lastName,
            users: self.stores.users,
            hasher: PasswordHasher(self.configuration)
        )
    }
}

// MARK: - One helper per endpoint

/// The fields of a `POST /api/v1/users` body; `nil` fields are left out of the JSON.
struct NewUser: Encodable {
    var email: String?
    var password: String?
    var firstName: String?
    var lastName: String?

    enum CodingKeys: String, CodingKey {
        case email
        case password
        case firstName = "first_name"
        case lastName = "last_name"
    }
}

extension TestClientProtocol {
    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.execute(uri: uri, method: .get, headers: headers)
    }

    /// `GET /api/v1/status`
    func status(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.get("/api/v1/status", headers: headers)
    }

    /// `GET /api/v1/stats`
    func stats(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.get("/api/v1/stats", headers: headers)
    }

    /// `GET /api/v1/users`
    func listUsers(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.get("/api/v1/users", headers: headers)
    }

    /// `GET /api/v1/users/:id`
    func showUser(id: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.get("/api/v1/users/\(id)", headers: headers)
    }

    /// `GET /api/v1/users/me`
    func me(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.get("/api/v1/users/me", headers: headers)
    }

    /// `POST /api/v1/users` with a JSON body made of the non-nil fields.
    func createUser(
        email: String?,
        password: String?,
        firstName: String? = nil,
        lastName: String? = nil,
        headers: HTTPFields = [:]
    ) async throws -> TestResponse {
        let body = try JSONEncoder().encode(NewUser(email: email, password: password, firstName: firstName, lastName: lastName))
        return try await self.createUser(rawBody: Array(body), headers: headers)
    }

    /// `POST /api/v1/users` with exactly these body bytes.
    func createUser(rawBody: [UInt8], headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.execute(
            uri: "/api/v1/users",
            method: .post,
            headers: [.contentType: "application/json"] + headers,
            body: ByteBuffer(bytes: rawBody)
        )
    }

    /// `PUT /api/v1/users/:id` with exactly these body bytes.
    func updateUser(id: String, rawBody: [UInt8], headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.execute(
            uri: "/api/v1/users/\(id)",
            method: .put,
            headers: [.contentType: "application/json"] + headers,
            body: ByteBuffer(bytes: rawBody)
        )
    }

    /// `PUT /api/v1/users/:id` with a JSON text body.
    func updateUser(id: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.updateUser(id: id, rawBody: Array(json.utf8), headers: headers)
    }

    /// `DELETE /api/v1/users/:id`
    func deleteUser(id: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.execute(uri: "/api/v1/users/\(id)", method: .delete, headers: headers)
    }

    /// `POST /api/v1/auth_session/login` with URL-encoded form fields (a `nil` value leaves the field out).
    func loginForm(email: String?, password: String?, headers: HTTPFields = [:]) async throws -> TestResponse {
        let fields = [("email", email), ("password", password)].compactMap { name, value in
            value.map { "\(name)=\(formEncoded($0))" }
        }
        return try await self.loginRaw(
            body: Array(fields.joined(separator: "&").utf8),
            headers: [.contentType: "application/x-www-form-urlencoded"] + headers
        )
    }

    /// `POST /api/v1/auth_session/login` with a JSON body (a `nil` value leaves the field out).
    func loginJSON(email: String?, password: String?, headers: HTTPFields = [:]) async throws -> TestResponse {
        let body = try JSONEncoder().encode(NewUser(email: email, password: password))
        return try await self.loginRaw(body: Array(body), headers: [.contentType: "application/json"] + headers)
    }

    /// `POST /api/v1/auth_session/login` with exactly these body bytes and headers.
    func loginRaw(body: [UInt8], headers: HTTPFields) async throws -> TestResponse {
        try await self.execute(uri: "/api/v1/auth_session/login", method: .post, headers: headers, body: ByteBuffer(bytes: body))
    }

    /// Logs in (form fields) and returns the `name=value` pair to send back in a `Cookie` header.
    func login(
        email: String = "bob@example.com",
        password: String = "H0lbertonSchool98!",
        headers: HTTPFields = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> String {
        let response = try await self.loginForm(email: email, password: password, headers: headers)
        try #require(response.status == .ok, "login failed: \(response.status) \(response.text)", sourceLocation: sourceLocation)
        let cookie = try #require(response.setCookie, "login answered no Set-Cookie", sourceLocation: sourceLocation)
        return cookie.pair
    }

    /// `DELETE /api/v1/auth_session/logout`
    func logout(headers: HTTPFields = [:]) async throws -> TestResponse {
        try await self.execute(uri: "/api/v1/auth_session/logout", method: .delete, headers: headers)
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as browsers encode form fields.
func formEncoded(_ text: String) -> String {
    let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
    return text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
}

extension HTTPFields {
    /// A `Cookie` header carrying `pair` (`name=value`).
    static func cookie(_ pair: String) -> HTTPFields {
        [.cookie: pair]
    }

    /// `Authorization: Basic base64(email:password)`.
    static func basic(_ email: String, _ password: String) -> HTTPFields {
        [.authorization: "Basic " + Data("\(email):\(password)".utf8).base64EncodedString()]
    }
}

// MARK: - Reading responses

/// A user as the API sends it, decoded by the tests themselves (the server has no such type: it writes
/// users with `User.writeJSON(.public)`).
struct UserResponse: Codable, Equatable {
    let id: String
    let email: String
    let firstName: String?
    let lastName: String?
    let createdAt: String
    let updatedAt: String

    init(_ user: User) {
        self.id = user.id
        self.email = user.email
        self.firstName = user.firstName
        self.lastName = user.lastName
        self.createdAt = user.createdAt
        self.updatedAt = user.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case email
        case firstName = "first_name"
        case lastName = "last_name"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    /// Every key, `null` included, as the API writes it.
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.id, forKey: .id)
        try container.encode(self.email, forKey: .email)
        try container.encode(self.firstName, forKey: .firstName)
        try container.encode(self.lastName, forKey: .lastName)
        try container.encode(self.createdAt, forKey: .createdAt)
        try container.encode(self.updatedAt, forKey: .updatedAt)
    }
}

/// One `Set-Cookie` header, its attributes as a set (their order varies from run to run).
struct SetCookie: Equatable {
    let name: String
    let value: String
    let attributes: Set<String>

    init?(_ header: String) {
        var parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, let equals = parts[0].firstIndex(of: "=") else { return nil }
        self.name = String(parts[0][..<equals])
        self.value = String(parts[0][parts[0].index(after: equals)...])
        parts.removeFirst()
        self.attributes = Set(parts)
    }

    /// `name=value`, as a `Cookie` header sends it back.
    var pair: String { "\(self.name)=\(self.value)" }
}

extension TestResponse {
    var text: String { String(buffer: self.body) }

    /// The body as a JSON object; fails the test when it is not one.
    func jsonObject(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(self.text.utf8), options: [.fragmentsAllowed])
        return try #require(object as? [String: Any], "not a JSON object: \(self.text)", sourceLocation: sourceLocation)
    }

    /// The body decoded as a user.
    func user() throws -> UserResponse {
        try JSONDecoder().decode(UserResponse.self, from: Data(self.text.utf8))
    }

    /// The single `Set-Cookie` header, parsed.
    var setCookie: SetCookie? {
        let values = self.headers[values: .setCookie]
        guard values.count == 1 else { return nil }
        return SetCookie(values[0])
    }

    /// The `Allow` header's methods.
    var allowedMethods: Set<String> {
        Set((self.headers[.allow] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }
}

/// Checks an error answer: the status, a JSON content type, and the body exactly `{"error":"<message>"}`.
func expectError(
    _ response: TestResponse,
    _ status: HTTPResponse.Status,
    _ message: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    #expect(response.text == #"{"error":"\#(message)"}"#, sourceLocation: sourceLocation)
}

/// Checks an error answer whose message is not pinned: the status and a body `{"error": <non-empty string>}`.
func expectSomeError(_ response: TestResponse, _ status: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(response.status == status, "body: \(response.text)", sourceLocation: sourceLocation)
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    let object = try response.jsonObject(sourceLocation: sourceLocation)
    #expect(Array(object.keys) == ["error"], sourceLocation: sourceLocation)
    let message = try #require(object["error"] as? String, sourceLocation: sourceLocation)
    #expect(!message.isEmpty, sourceLocation: sourceLocation)
}

/// The public user keys, in the order a sorted-keys encoder writes them.
let userKeys = ["created_at", "email", "first_name", "id", "last_name", "updated_at"]

/// Whether `text` is a timestamp in the original's format, `YYYY-MM-DDTHH:MM:SS`.
func isTimestamp(_ text: String) -> Bool {
    text.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/#) != nil
}

/// Checks one user as JSON (an object from a parsed body): exactly the public keys, names present
/// (`null` when unset), a UUID id and timestamps in the original's format.
func expectUserObject(_ object: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(object.keys.sorted() == userKeys, sourceLocation: sourceLocation)
    #expect(UUID(uuidString: object["id"] as? String ?? "") != nil, "id: \(object["id"] ?? "none")", sourceLocation: sourceLocation)
    #expect(object["email"] is String, sourceLocation: sourceLocation)
    for key in ["first_name", "last_name"] {
        #expect(object[key] is String || object[key] is NSNull, "\(key): \(object[key] ?? "absent")", sourceLocation: sourceLocation)
    }
    for key in ["created_at", "updated_at"] {
        #expect(isTimestamp(object[key] as? String ?? ""), "\(key): \(object[key] ?? "absent")", sourceLocation: sourceLocation)
    }
}

/// Checks a response whose body is one user: the JSON shape, keys sorted in the raw body, no password.
/// Returns the decoded user.
@discardableResult
func expectUserJSON(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) throws -> UserResponse {
    #expect(response.headers[.contentType] == "application/json", sourceLocation: sourceLocation)
    expectUserObject(try response.jsonObject(sourceLocation: sourceLocation), sourceLocation: sourceLocation)
    expectKeysSorted(response.text, userKeys, sourceLocation: sourceLocation)
    expectNoPassword(response, sourceLocation: sourceLocation)
    return try response.user()
}

/// Checks that `keys` appear in `text` (a raw JSON body) in this order.
func expectKeysSorted(_ text: String, _ keys: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    let positions = keys.map { text.range(of: "\"\($0)\":")?.lowerBound }
    #expect(!positions.contains(nil), "missing keys in \(text)", sourceLocation: sourceLocation)
    let found = positions.compactMap { $0 }
    #expect(found == found.sorted(), "keys not sorted: \(text)", sourceLocation: sourceLocation)
}

/// Checks that no password, hash or `_password` key is in a response body.
func expectNoPassword(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(!response.text.contains("password"), "\(response.text)", sourceLocation: sourceLocation)
    #expect(!response.text.contains("$2"), "looks like a bcrypt hash: \(response.text)", sourceLocation: sourceLocation)
}

// MARK: - Session stores

extension SessionStore {
    /// Starts a session with nothing to replace: the only place the tests call `createSession` directly.
    func startSession(userID: String, metadata: SessionMetadata = SessionMetadata()) async throws -> String {
        try await self.createSession(userID: userID, metadata: metadata, replacing: nil)
    }
}

// MARK: - Time

/// A clock for `SessionExpiry` that moves only when a test says so.
final class ManualClock: Sendable {
    private let seconds: Mutex<Int>

    init(_ start: Int = 1_700_000_000) {
        self.seconds = Mutex(start)
    }

    func advance(by seconds: Int) {
        self.seconds.withLock { $0 += seconds }
    }

    /// The current time, for `SessionExpiry(duration:now:)`.
    var now: @Sendable () -> Int {
        { self.seconds.withLock { $0 } }
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

extension Argon2.Parameters {
    /// Cheap Argon2id for tests (the default's 19 MiB and two passes cost tens of milliseconds a hash).
    static let testing = Argon2.Parameters(memoryKiB: 64, iterations: 1, parallelism: 1)
}

// MARK: - Logs

/// A log handler that keeps every line (level, message and metadata as one text), for tests that read the log.
struct RecordingLogHandler: LogHandler {
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { self.lines.withLock { $0.append(line) } }
        var all: [String] { self.lines.withLock { $0 } }
    }

    let lines: Lines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        self.lines.append("\(event.level) \(event.message) \(fields)")
    }

    /// A logger at `level` whose lines go to `lines`.
    static func logger(_ lines: Lines, level: Logger.Level = .info) -> Logger {
        var logger = Logger(label: "session-api-tests") { _ in RecordingLogHandler(lines: lines) }
        logger.logLevel = level
        return logger
    }
}
