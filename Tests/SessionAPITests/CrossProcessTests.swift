import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SessionAPI
import Synchronization
import TestSupport
import Testing

/// Several real processes sharing one `.db_User.json`: one consistent store, nothing lost on kill -9.
@Suite(.serialized) struct CrossProcessTests {
    static let jsonHeaders: HTTPFields = [.contentType: "application/json"]

    static func createBody(_ email: String) -> ByteBuffer {
        ByteBuffer(string: #"{"email": "\#(email)", "password": "pw"}"#)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("session-api-xproc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func usersInFile(_ directory: URL) throws -> [String: [String: Any]] {
        let data = try Data(contentsOf: directory.appendingPathComponent(".db_User.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
    }

    @Test func fourProcessesCreatingAtOnceEndWithEveryUser() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = ["DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1"]
        var servers: [ServerProcess] = []
        defer { for server in servers { server.terminate() } }
        for _ in 0..<4 { servers.append(try await ServerProcess(environment: environment)) }

        // 4 processes x 100 users, 4 connections per process, all at once.
        let created = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, server) in servers.enumerated() {
                for worker in 0..<4 {
                    group.addTask {
                        try await server.withClient { client in
                            var count = 0
                            for n in 0..<25 {
                                let email = "p\(index)-w\(worker)-\(n)@example.com"
                                let response = try await client.post("/api/v1/users", headers: Self.jsonHeaders, body: Self.createBody(email))
                                if response.status == .created { count += 1 }
                            }
                            return count
                        }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(created == 400)
        #expect(try Self.usersInFile(directory).count == 400)
        // Every process sees the others' writes on its next read.
        for server in servers {
            let stats = try await server.withClient { try await $0.get("/api/v1/stats") }
            #expect(stats.body.map { String(buffer: $0) } == #"{"users":400}"#)
        }
        // One email, one account, across processes: the same email sent to all four at once.
        let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
            for server in servers {
                group.addTask {
                    try await server.withClient {
                        try await $0.post("/api/v1/users", headers: Self.jsonHeaders, body: Self.createBody("Same@Example.com")).status
                    }
                }
            }
            return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == .created }.count == 1)
        #expect(statuses.filter { $0 == .conflict }.count == 3)
        #expect(try Self.usersInFile(directory).count == 401)
    }

    @Test func writerKilledMidwayLeavesAValidFileWithEveryCreatedUser() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try await ServerProcess(environment: [
            "DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
        ])
        defer { server.kill9() }
        let confirmed = ConfirmedIDs()

        // 8 writers create users until the server dies under them; kill -9 once 150 creates are confirmed.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    try? await server.withClient { client in
                        for n in 0..<10_000 {
                            let response = try await client.post(
                                "/api/v1/users",
                                headers: Self.jsonHeaders,
                                body: Self.createBody("w\(worker)-\(n)@example.com")
                            )
                            guard response.status == .created, let body = response.body,
                                let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
                                let id = json["id"] as? String
                            else { continue }
                            confirmed.add(id)
                        }
                    }
                }
            }
            group.addTask {
                let deadline = ContinuousClock.now + .seconds(60)
                while confirmed.count < 150, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
                server.kill9()
            }
            try await group.waitForAll()
        }

        let ids = confirmed.all
        #expect(ids.count >= 150)
        let users = try Self.usersInFile(directory)
        let missing = ids.subtracting(users.keys)
        #expect(missing.isEmpty, "users answered 201 but absent from the file: \(missing)")

        // A new process opens the file and serves every one of them.
        let restarted = try await ServerProcess(environment: [
            "DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
        ])
        defer { restarted.terminate() }
        let stats = try await restarted.withClient { try await $0.get("/api/v1/stats") }
        #expect(stats.status == .ok)
        #expect(stats.body.map { String(buffer: $0) } == #"{"users":\#(users.count)}"#)
        // and clears any temp file the killed writer left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }
}

extension CrossProcessTests {
    /// Two processes on one Redis: a login through one is a session for the other, and so is its logout.
    @Test(arguments: ["json", "redis"])
    func sessionsAreSharedBetweenProcessesThroughRedis(userStore: String) async throws {
        let redis = try await RedisServerProcess.start()
        defer { try? FileManager.default.removeItem(at: redis.directory) }
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let environment = [
            "DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1", "AUTH_TYPE": "session_redis_auth",
            "REDIS_URL": "redis://127.0.0.1:\(redis.port)", "USER_STORE": userStore,
        ]
        let configuration = try AppConfiguration(environment: environment)
        _ = try await AppStores.withStores(configuration, logger: testLogger()) { stores in
            try await UserAdministration.createUser(
                email: "bob@example.com",
                password: "pw",
                firstName: "Bob",
                lastName: nil,
                users: stores.users,
                hasher: PasswordHasher(parameters: .testing)
            )
        }
        let first = try await ServerProcess(environment: environment)
        defer { first.terminate() }
        let second = try await ServerProcess(environment: environment)
        defer { second.terminate() }

        let login = try await first.withClient { client in
            try await client.post(
                "/api/v1/auth_session/login",
                headers: [.contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "email=bob%40example.com&password=pw")
            )
        }
        #expect(login.status == .ok)
        let setCookie = try #require(login.head.headerFields[.setCookie])
        let pair = try #require(setCookie.split(separator: ";").first.map(String.init))
        let me = try await second.withClient { try await $0.get("/api/v1/users/me", headers: [.cookie: pair]) }
        #expect(me.status == .ok)
        #expect(me.body.map { String(buffer: $0) }?.contains(#""email":"bob@example.com""#) == true)
        let logout = try await second.withClient { try await $0.delete("/api/v1/auth_session/logout", headers: [.cookie: pair], body: ByteBuffer()) }
        #expect(logout.status == .ok)
        let after = try await first.withClient { try await $0.get("/api/v1/users/me", headers: [.cookie: pair]) }
        #expect(after.status == .forbidden)
        try await redis.stop()
    }
}

extension CrossProcessTests {
    /// SIGTERM stops accepting but lets a request in flight finish, then the process exits 0.
    @Test func sigtermDrainsInFlightRequestsAndExitsZero() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Argon2id with 256 MiB and 4 passes (about a second a hash here): a create still running when SIGTERM arrives.
        let server = try await ServerProcess(
            environment: ["DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "262144", "PASSWORD_ARGON2_ITERATIONS": "4"]
        )
        defer { server.kill9() }
        let status = try await withThrowingTaskGroup(of: HTTPResponse.Status?.self) { group in
            group.addTask {
                try await server.withClient { client in
                    try await client.post("/api/v1/users", headers: Self.jsonHeaders, body: Self.createBody("slow@example.com")).status
                }
            }
            group.addTask {
                // Nothing outside the process shows that the request has arrived, so this waits a fixed 0.2 s: well
                // after the request is sent, well before its ~1 s hash is done.
                try await Task.sleep(for: .milliseconds(200))
                kill(server.pid, SIGTERM)
                return nil
            }
            var created: HTTPResponse.Status?
            for try await result in group { if let result { created = result } }
            return created
        }
        #expect(status == .created)
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
        #expect(try Self.usersInFile(directory).count == 1)
    }
}

/// IDs of users whose create answered 201, collected from several tasks.
final class ConfirmedIDs: Sendable {
    private let ids = Mutex<Set<String>>([])
    func add(_ id: String) { self.ids.withLock { _ = $0.insert(id) } }
    var count: Int { self.ids.withLock { $0.count } }
    var all: Set<String> { self.ids.withLock { $0 } }
}

extension CrossProcessTests {
    static let formHeaders: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    /// Runs `body` with one client connected to each of three servers.
    static func withClients<T: Sendable>(
        _ servers: [ServerProcess],
        _ body: @escaping @Sendable ([TestClient]) async throws -> T
    ) async throws -> T {
        try await servers[0].withClient { first in
            try await servers[1].withClient { second in
                try await servers[2].withClient { third in try await body([first, second, third]) }
            }
        }
    }

    /// `session_db_auth`, three processes on one `DATA_DIR`, logins and logouts racing: every cycle logs in on one
    /// process, reads `/users/me` on the next and logs out on the third; from then on, no process accepts that
    /// cookie (a process trusting a stale cache of `.db_UserSession.json` would).
    @Test func aLoggedOutSessionIsRefusedByEveryProcess() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (workers, cycles) = (6, 50)
        let users = try await JSONFileUserStore(directory: directory.path)
        for worker in 0..<workers {
            _ = try await UserAdministration.createUser(
                email: "w\(worker)@example.com",
                password: "pw",
                firstName: nil,
                lastName: nil,
                users: users,
                hasher: PasswordHasher(parameters: .testing)
            )
        }
        let environment = [
            "DATA_DIR": directory.path, "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1", "AUTH_TYPE": "session_db_auth",
        ]
        var started: [ServerProcess] = []
        defer { for server in started { server.terminate() } }
        for _ in 0..<3 { started.append(try await ServerProcess(environment: environment)) }
        let servers = started

        // Each worker: its own user and its own turn of the processes; returns its failures and logged-out cookies.
        let results = try await withThrowingTaskGroup(of: (failures: [String], cookies: [String]).self) { group in
            for worker in 0..<workers {
                group.addTask {
                    try await Self.withClients(servers) { clients in
                        let (login, me, logout) = (clients[worker % 3], clients[(worker + 1) % 3], clients[(worker + 2) % 3])
                        var failures: [String] = []
                        var cookies: [String] = []
                        for cycle in 0..<cycles {
                            let label = "worker \(worker) cycle \(cycle)"
                            let response = try await login.post(
                                "/api/v1/auth_session/login",
                                headers: Self.formHeaders,
                                body: ByteBuffer(string: "email=w\(worker)%40example.com&password=pw")
                            )
                            guard response.status == .ok, let setCookie = response.head.headerFields[.setCookie],
                                let pair = setCookie.split(separator: ";").first.map(String.init)
                            else {
                                failures.append("\(label): login answered \(response.status)")
                                continue
                            }
                            let cookie: HTTPFields = [.cookie: pair]
                            let before = try await me.get("/api/v1/users/me", headers: cookie).status
                            if before != .ok { failures.append("\(label): /users/me after login answered \(before)") }
                            let out = try await logout.delete("/api/v1/auth_session/logout", headers: cookie, body: ByteBuffer()).status
                            if out != .ok { failures.append("\(label): logout answered \(out)") }
                            cookies.append(pair)
                            for (index, client) in clients.enumerated() {
                                let after = try await client.get("/api/v1/users/me", headers: cookie).status
                                if after != .forbidden { failures.append("\(label): process \(index) answered \(after) after logout") }
                            }
                        }
                        return (failures, cookies)
                    }
                }
            }
            return try await group.reduce(into: [(failures: [String], cookies: [String])]()) { $0.append($1) }
        }
        let failures = results.flatMap(\.failures)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(5))")
        let cookies = results.flatMap(\.cookies)
        #expect(cookies.count == workers * cycles)

        // And once more at the end, every logged-out cookie on every process.
        let accepted = try await Self.withClients(servers) { clients in
            var accepted: [String] = []
            for (index, client) in clients.enumerated() {
                for pair in cookies {
                    let status = try await client.get("/api/v1/users/me", headers: [.cookie: pair]).status
                    if status != .forbidden { accepted.append("process \(index): \(status)") }
                }
            }
            return accepted
        }
        #expect(accepted.isEmpty, "logged-out cookies not refused at the end: \(accepted.prefix(5))")
    }
}

/// The real binary, without `AUTH_TYPE`, asked for every address: it listens on loopback only and says so.
@Suite struct OpenByDefaultTests {
    @Test func withoutAuthTypeTheBinaryListensOnLoopbackAndWarns() async throws {
        let directory = try CrossProcessTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = directory.appendingPathComponent("server.log")
        let server = try await ServerProcess(
            environment: ["DATA_DIR": directory.path, "LOG_LEVEL": "info"],
            host: "0.0.0.0",
            output: log
        )
        #expect(server.terminate() == 0)
        let text = try String(contentsOf: log, encoding: .utf8)
        #expect(text.contains("AUTH_TYPE is unset: no authentication, so listening on 127.0.0.1 only, not on API_HOST=0.0.0.0"), "\(text)")
        #expect(text.contains("listening on 127.0.0.1:\(server.port)"), "\(text)")
        #expect(!text.contains("listening on 0.0.0.0"), "\(text)")
    }
}
