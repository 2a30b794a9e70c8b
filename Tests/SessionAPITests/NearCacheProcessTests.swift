import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import RedisClient
import SessionAPI
import Synchronization
import TestSupport
import Testing

/// The near-cache (issue 14) from outside: several real `session-api` processes on one real redis-server, through
/// HTTP only. A logout, an operator's `DEL`, a user's update or deletion on one process reaches every other
/// process's cache within ``bound``; Redis killed, restarted empty, flushed or frozen never makes a process answer
/// 200 for a session Redis no longer has (past the heartbeat, a cache that cannot hear invalidations is not used).
///
/// Each test starts its own standalone redis-server and processes, whatever `SESSION_API_TEST_BACKEND` says, so the
/// suite runs in the default backend run only: the other runs would repeat it unchanged. Serialized: it measures
/// delays, and several fleets at once on a 2-core machine would measure each other's load.
@Suite(
    .serialized,
    .enabled(if: TestBackend.current == .files, "starts its own standalone redis-server and processes: the same in every backend run")
)
struct NearCacheProcessTests {
    /// How long an invalidation may take to reach another process's cache. Generous, for a loaded 2-core machine:
    /// Redis' announcement is one loopback message.
    static let bound = Duration.seconds(1)
    /// How long a process may still answer from its cache once Redis stops answering: the listener's heartbeat
    /// (a `PING` every second, late after `REDIS_COMMAND_TIMEOUT_MS`, 1 s by default), plus slack.
    static let heartbeatBound = Duration.seconds(3)
    /// How long a test waits for a change to reach a process before it fails.
    static let giveUp = Duration.seconds(5)
    /// How a process refuses a cookie whose session is gone: 403 (a cookie that names no session), or 401.
    static let refusals: Set<HTTPResponse.Status> = [.unauthorized, .forbidden]
    static let bob = "bob@example.com"
    static let ann = "ann@example.com"
    static let password = "pw"

    // MARK: - Logout on one process, refused on the others

    /// Logs in through A, lets B and C cache the session, logs out through A: B and C refuse the cookie within the
    /// bound, 20 times over; A itself at once.
    @Test(.timeLimit(.minutes(5)), arguments: ["json", "redis"])
    func aLogoutOnOneProcessIsRefusedByTheOthersWithinTheBound(userStore: String) async throws {
        try await Self.withFleet(userStore: userStore) { fleet in
            let (a, others) = (fleet.servers[0], Array(fleet.servers[1...]))
            var delays: [Duration] = []
            for _ in 0..<20 {
                let cookie = try await Self.logIn(Self.bob, on: a)
                for server in others { try await Self.warm(cookie, on: server) }
                delays += try await Self.refusalDelays(cookie, on: others) {
                    let logout = try await a.withClient { try await Self.logOut(cookie, on: $0) }
                    try #require(logout.status == .ok, "logout through A answered \(logout.status)")
                }
                // The process that ended the session forgets it itself, before any announcement.
                let own = try await a.withClient { try await Self.me(cookie, on: $0) }
                #expect(Self.refusals.contains(own.status), "A answered \(own.status) for the cookie it just logged out")
            }
            #expect(delays.allSatisfy { $0 < Self.bound }, "a logout took longer than \(Self.bound) to reach a process: \(Self.summary(delays))")
            print("NEARCACHE logout on A, refused on B and C (USER_STORE=\(userStore)): \(Self.summary(delays))")
        }
    }

    // MARK: - An operator's DEL

    /// `DEL <prefix>session:<sha256 of the cookie>` from another Redis client (what `redis-cli DEL` does): every
    /// process, each holding the session in its cache, refuses the cookie within the bound.
    @Test(.timeLimit(.minutes(5)))
    func anOperatorsDelOfTheSessionKeyIsRefusedEverywhere() async throws {
        try await Self.withFleet { fleet in
            var delays: [Duration] = []
            for _ in 0..<5 {
                let cookie = try await Self.logIn(Self.bob, on: fleet.servers[0])
                for server in fleet.servers { try await Self.warm(cookie, on: server) }
                let key = "session-api:session:" + SessionID.handle(of: try Self.cookieValue(cookie))
                delays += try await Self.refusalDelays(cookie, on: fleet.servers) {
                    let deleted = try await RedisClient.withClient(fleet.redisConfiguration, logger: testLogger()) { try await $0.del(key) }
                    try #require(deleted == 1, "DEL \(key) deleted \(deleted) keys: not the session's key")
                }
            }
            #expect(delays.allSatisfy { $0 < Self.bound }, "a DEL took longer than \(Self.bound) to reach a process: \(Self.summary(delays))")
            print("NEARCACHE DEL of the session key, refused on A, B and C: \(Self.summary(delays))")
        }
    }

    // MARK: - Users in Redis: updated and deleted elsewhere

    /// `USER_STORE=redis`: B and C cache bob's session and bob; ann renames bob through A (B and C show the new name
    /// within the bound, never the old one again), then deletes him through A (B and C refuse his cookie).
    @Test(.timeLimit(.minutes(5)))
    func aUserUpdatedOrDeletedOnOneProcessIsSeenByTheOthersWithinTheBound() async throws {
        try await Self.withFleet(userStore: "redis") { fleet in
            let (a, others) = (fleet.servers[0], Array(fleet.servers[1...]))
            let annCookie = try await Self.logIn(Self.ann, on: a)
            let bobCookie = try await Self.logIn(Self.bob, on: others[0])
            var renames: [Duration] = []
            var name = "Bob"
            for round in 0..<5 {
                for server in others { try await Self.warm(bobCookie, on: server, caches: ["sessions", "users"]) }
                let (old, new) = (name, "Robert-\(round)")
                renames += try await Self.delays(
                    on: others,
                    request: { try await Self.me(bobCookie, on: $0) },
                    classify: { response in
                        guard response.status == .ok else { return .unexpected }
                        switch Self.firstName(response) {
                        case old: return .before
                        case new: return .after
                        default: return .unexpected
                        }
                    },
                    what: "first_name \(new)"
                ) {
                    let update = try await a.withClient { client in
                        try await client.put(
                            "/api/v1/users/\(fleet.bobID)",
                            headers: [.cookie: annCookie, .contentType: "application/json"],
                            body: ByteBuffer(string: #"{"first_name": "\#(new)"}"#)
                        )
                    }
                    try #require(update.status == .ok, "PUT through A answered \(update.status)")
                }
                name = new
            }
            #expect(renames.allSatisfy { $0 < Self.bound }, "an update took longer than \(Self.bound) to reach a process: \(Self.summary(renames))")
            print("NEARCACHE PUT /users/:id on A, new name on B and C (USER_STORE=redis): \(Self.summary(renames))")

            for server in others { try await Self.warm(bobCookie, on: server, caches: ["sessions", "users"]) }
            let deletions = try await Self.refusalDelays(bobCookie, on: others, refusals: Self.refusals.union([.notFound])) {
                let deletion = try await a.withClient { client in
                    try await client.delete("/api/v1/users/\(fleet.bobID)", headers: [.cookie: annCookie], body: ByteBuffer())
                }
                try #require(deletion.status == .ok, "DELETE through A answered \(deletion.status)")
            }
            #expect(
                deletions.allSatisfy { $0 < Self.bound },
                "a deletion took longer than \(Self.bound) to reach a process: \(Self.summary(deletions))"
            )
            print("NEARCACHE DELETE /users/:id on A, cookie refused on B and C (USER_STORE=redis): \(Self.summary(deletions))")
        }
    }

    // MARK: - Redis killed and restarted empty; FLUSHALL

    /// Redis killed (SIGKILL) while every process caches a session, restarted empty on the same port: a 200 only
    /// within the heartbeat bound of the kill, never after the restart; then 401/403 on every process. Then, with the
    /// caches in use again, `FLUSHALL` from outside: every process refuses within the bound.
    @Test(.timeLimit(.minutes(5)))
    func redisKilledAndRestartedEmptyOrFlushedLeavesNoStaleSession() async throws {
        try await Self.withFleet { fleet in
            let cookie = try await Self.logIn(Self.bob, on: fleet.servers[0])
            for server in fleet.servers { try await Self.warm(cookie, on: server) }
            let ((killedAt, restartedAt), answers) = try await Self.recording(cookie, on: fleet.servers) { log in
                // Some answers with Redis up first (from the caches).
                try await Task.sleep(for: .milliseconds(300))
                let killedAt = ContinuousClock.now
                try await fleet.redis.kill()
                // Down for longer than the heartbeat bound: the time a cache may wrongly be trusted, and then some.
                try await Task.sleep(for: Self.heartbeatBound + .seconds(2))
                let restartedAt = ContinuousClock.now
                try await fleet.redis.restart()
                let refused = try await eventually(timeout: .seconds(30)) {
                    fleet.servers.indices.allSatisfy { index in
                        log.answers.contains { $0.server == index && $0.start > restartedAt && $0.status.map(Self.refusals.contains) == true }
                    }
                }
                #expect(refused, "not every process refused the old cookie within 30 s of the restart\n\(fleet.logTails())")
                // And go on asking for a second more: nothing may bring the session back.
                try await Task.sleep(for: .seconds(1))
                return (killedAt, restartedAt)
            }
            let stale = answers.filter { $0.status == .ok && ($0.start > killedAt + Self.heartbeatBound || $0.start >= restartedAt) }
            #expect(
                stale.isEmpty,
                "200s after the kill's heartbeat bound or after the restart: \(Self.describe(stale, since: killedAt))\n\(fleet.logTails())"
            )
            let odd = answers.filter { answer in
                guard let status = answer.status else { return true }
                return status != .ok && !Self.refusals.contains(status) && !(500...599).contains(status.code)
            }
            #expect(odd.isEmpty, "answers other than 200, 401/403 or 5xx: \(Self.describe(odd, since: killedAt))")
            for index in fleet.servers.indices {
                let mine = answers.filter { $0.server == index }
                let down = mine.filter { $0.start > killedAt + Self.heartbeatBound && $0.end < restartedAt }
                #expect(
                    !down.isEmpty && down.allSatisfy { $0.status.map { (500...599).contains($0.code) } == true },
                    "process \(index) while Redis was down: \(Self.describe(down, since: killedAt))"
                )
                let lastOK = mine.last { $0.status == .ok && $0.start >= killedAt }.map { Self.milliseconds($0.end - killedAt) } ?? "none"
                let firstRefusal = mine.first { $0.start > restartedAt && $0.status.map(Self.refusals.contains) == true }
                print(
                    """
                    NEARCACHE redis killed, process \(index): last 200 after the kill: \(lastOK); first refusal \
                    \(firstRefusal.map { Self.milliseconds($0.end - restartedAt) } ?? "none") after the restart began \
                    (\(mine.count) answers: \(Self.histogram(mine)))
                    """
                )
            }

            // The caches are in use again (the listeners subscribed to the new server); FLUSHALL empties them all.
            let second = try await Self.logIn(Self.bob, on: fleet.servers[0])
            for server in fleet.servers { try await Self.warm(second, on: server) }
            let delays = try await Self.refusalDelays(second, on: fleet.servers) {
                _ = try await RedisClient.withClient(fleet.redisConfiguration, logger: testLogger()) { try await $0.send("FLUSHALL") }
            }
            #expect(delays.allSatisfy { $0 < Self.bound }, "FLUSHALL took longer than \(Self.bound) to reach a process: \(Self.summary(delays))")
            print("NEARCACHE FLUSHALL, refused on A, B and C: \(Self.summary(delays))")
        }
    }

    // MARK: - Redis frozen and resumed

    /// Redis frozen (SIGSTOP) while B and C cache a session: a logout through A cannot complete; B and C answer 200
    /// only within the heartbeat bound of the freeze. Resumed (SIGCONT): a logout through A is refused by B and C
    /// within the bound and never accepted again; and the caches work again for a new session.
    @Test(.timeLimit(.minutes(5)))
    func redisPausedThenResumedLeavesNoStaleSession() async throws {
        try await Self.withFleet { fleet in
            let (a, others) = (fleet.servers[0], Array(fleet.servers[1...]))
            let cookie = try await Self.logIn(Self.bob, on: a)
            for server in others { try await Self.warm(cookie, on: server) }
            let (times, answers) = try await Self.recording(cookie, on: others) { log in
                try await Task.sleep(for: .milliseconds(300))
                let pausedAt = ContinuousClock.now
                try fleet.redis.pause()
                let frozenLogout = try await a.withClient { try await Self.logOut(cookie, on: $0) }
                let frozenLogoutTook = ContinuousClock.now - pausedAt
                // Frozen for longer than the heartbeat bound: past it, no cache may answer.
                try await Task.sleep(until: pausedAt + Self.heartbeatBound + .seconds(2), clock: .continuous)
                let resumedAt = ContinuousClock.now
                try fleet.redis.resume()
                // Log out through A once it reaches Redis again (503 while its connections come back). 403 or 404:
                // the frozen logout's DEL was already sent, and Redis ran it when it woke.
                var logout = try await a.withClient { try await Self.logOut(cookie, on: $0) }
                let retryUntil = ContinuousClock.now + .seconds(20)
                while logout.status == .serviceUnavailable, ContinuousClock.now < retryUntil {
                    try await Task.sleep(for: .milliseconds(50))
                    logout = try await a.withClient { try await Self.logOut(cookie, on: $0) }
                }
                let loggedOutAt = ContinuousClock.now
                #expect([.ok, .forbidden, .notFound].contains(logout.status), "the logout after the resume answered \(logout.status)")
                let refused = try await eventually(timeout: .seconds(10)) {
                    others.indices.allSatisfy { index in
                        log.answers.contains { $0.server == index && $0.end >= loggedOutAt && $0.status.map(Self.refusals.contains) == true }
                    }
                }
                #expect(refused, "not every process refused the cookie within 10 s of the logout\n\(fleet.logTails())")
                try await Task.sleep(for: .seconds(1))
                return (pausedAt, resumedAt, loggedOutAt, frozenLogout.status, frozenLogoutTook, logout.status)
            }
            let (pausedAt, resumedAt, loggedOutAt, frozenLogout, frozenLogoutTook, logout) = times
            #expect(frozenLogout != .ok, "a logout completed while Redis was frozen")
            let staleWhileFrozen = answers.filter { $0.status == .ok && $0.start > pausedAt + Self.heartbeatBound && $0.end < resumedAt }
            #expect(
                staleWhileFrozen.isEmpty,
                "200s from the cache while Redis was frozen: \(Self.describe(staleWhileFrozen, since: pausedAt))\n\(fleet.logTails())"
            )
            var delays: [Duration] = []
            for index in others.indices {
                let mine = answers.filter { $0.server == index }
                let frozen = mine.filter { $0.start > pausedAt + Self.heartbeatBound && $0.end < resumedAt }
                #expect(
                    !frozen.isEmpty && frozen.allSatisfy { $0.status.map { (500...599).contains($0.code) } == true },
                    "process \(index + 1) while Redis was frozen: \(Self.describe(frozen, since: pausedAt))"
                )
                let firstRefusal = try #require(mine.first { $0.end >= resumedAt && $0.status.map(Self.refusals.contains) == true })
                let delay = max(firstRefusal.end - loggedOutAt, .zero)
                delays.append(delay)
                let accepted = mine.filter { $0.status == .ok && ($0.start > firstRefusal.end || $0.start > loggedOutAt + Self.bound) }
                #expect(
                    accepted.isEmpty,
                    "process \(index + 1) accepted the cookie after refusing it or after the bound: \(Self.describe(accepted, since: loggedOutAt))\n\(fleet.logTails())"
                )
                let lastOK =
                    mine.last { $0.status == .ok && $0.start >= pausedAt && $0.end < resumedAt }.map { Self.milliseconds($0.end - pausedAt) }
                    ?? "none"
                print(
                    """
                    NEARCACHE redis frozen, process \(index + 1): last 200 during the freeze at \(lastOK) after it; \
                    refused \(Self.milliseconds(delay)) after the logout that followed the resume (\(mine.count) answers: \(Self.histogram(mine)))
                    """
                )
            }
            #expect(delays.allSatisfy { $0 < Self.bound }, "after the resume, a logout took longer than \(Self.bound): \(Self.summary(delays))")
            print(
                """
                NEARCACHE redis frozen: logout during the freeze answered \(frozenLogout) after \(Self.milliseconds(frozenLogoutTook)); \
                after the resume it answered \(logout); refused on B and C: \(Self.summary(delays))
                """
            )

            // Invalidations flow again: a new session is cached and its logout reaches B and C.
            let second = try await Self.logIn(Self.bob, on: a)
            for server in others { try await Self.warm(second, on: server) }
            let after = try await Self.refusalDelays(second, on: others) {
                let logout = try await a.withClient { try await Self.logOut(second, on: $0) }
                try #require(logout.status == .ok, "logout through A answered \(logout.status)")
            }
            #expect(after.allSatisfy { $0 < Self.bound }, "after the resume, a logout took longer than \(Self.bound): \(Self.summary(after))")
            print("NEARCACHE after the freeze, a new session's logout on A, refused on B and C: \(Self.summary(after))")
        }
    }

    // MARK: - NEAR_CACHE=off

    /// `NEAR_CACHE=off`: no lookup is a hit, and a logout through A is refused by B on its very next request.
    @Test(.timeLimit(.minutes(3)))
    func withTheCacheOffALogoutIsRefusedAtOnce() async throws {
        try await Self.withFleet(processes: 2, nearCache: false) { fleet in
            let (a, b) = (fleet.servers[0], fleet.servers[1])
            for _ in 0..<5 {
                let cookie = try await Self.logIn(Self.bob, on: a)
                try await b.withClient { client in
                    for _ in 0..<3 {
                        let me = try await Self.me(cookie, on: client)
                        #expect(me.status == .ok)
                    }
                }
                let logout = try await a.withClient { try await Self.logOut(cookie, on: $0) }
                try #require(logout.status == .ok)
                let after = try await b.withClient { try await Self.me(cookie, on: $0) }
                #expect(Self.refusals.contains(after.status), "B answered \(after.status) right after the logout on A")
            }
            #expect(try await Self.lookups(b, cache: "sessions", result: "hit") == 0)
        }
    }
}

// MARK: - The fleet: one redis-server, several processes

extension NearCacheProcessTests {
    /// One redis-server and `servers` on it, all on one data directory, with users bob and ann.
    struct Fleet: Sendable {
        let redis: RedisServerProcess
        let directory: URL
        let servers: [ServerProcess]
        let bobID: String

        /// Where a test's own Redis client connects (an operator's `redis-cli`).
        var redisConfiguration: RedisClientConfiguration {
            RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: self.redis.port), connectTimeout: .seconds(5))
        }

        func log(_ index: Int) -> String {
            (try? String(contentsOf: self.directory.appendingPathComponent("server-\(index).log"), encoding: .utf8)) ?? "(no log)"
        }

        /// The last lines of every process's log but its access lines, and Redis', for failure messages.
        func logTails() -> String {
            let servers = self.servers.indices.map { index in
                let lines = self.log(index).split(separator: "\n").filter { !$0.contains("GET /api/v1/users/me") && !$0.contains("/metrics") }
                return "process \(index) log: " + lines.suffix(15).joined(separator: "\n  ")
            }
            return (servers + ["redis: " + self.redis.logTail()]).joined(separator: "\n")
        }
    }

    /// Runs `body` with a fresh redis-server and `processes` session-api processes (`AUTH_TYPE=session_redis_auth`,
    /// `NEAR_CACHE` on or off, `USER_STORE` as asked, a metrics port and a log file each), then stops them all by PID.
    static func withFleet(
        processes: Int = 3,
        userStore: String = "json",
        nearCache: Bool = true,
        _ body: (Fleet) async throws -> Void
    ) async throws {
        let redis = try await RedisServerProcess.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("session-api-nearcache-\(UUID().uuidString)")
        var servers: [ServerProcess] = []
        func stopAll() async {
            for server in servers { server.terminate() }
            try? await redis.stop()
            redis.removeDirectory()
            try? FileManager.default.removeItem(at: directory)
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let environment = [
                "DATA_DIR": directory.path, "AUTH_TYPE": "session_redis_auth", "REDIS_URL": "redis://127.0.0.1:\(redis.port)",
                "USER_STORE": userStore, "NEAR_CACHE": nearCache ? "on" : "off", "PASSWORD_ARGON2_MEMORY_KIB": "64",
                "PASSWORD_ARGON2_ITERATIONS": "1", "LOG_LEVEL": "info",
            ]
            let bobID = try await AppStores.withStores(try AppConfiguration(environment: environment), logger: testLogger()) { stores in
                let hasher = PasswordHasher(parameters: .testing)
                let bob = try await UserAdministration.createUser(
                    email: Self.bob,
                    password: Self.password,
                    firstName: "Bob",
                    lastName: nil,
                    users: stores.users,
                    hasher: hasher
                )
                _ = try await UserAdministration.createUser(
                    email: Self.ann,
                    password: Self.password,
                    firstName: "Ann",
                    lastName: nil,
                    users: stores.users,
                    hasher: hasher
                )
                return bob.id
            }
            for index in 0..<processes {
                let log = directory.appendingPathComponent("server-\(index).log")
                servers.append(try await ServerProcess(environment: environment, output: log, metrics: true))
            }
            let fleet = Fleet(redis: redis, directory: directory, servers: servers, bobID: bobID)
            // The setting took: each process said so at start-up.
            for index in servers.indices {
                #expect(fleet.log(index).contains(nearCache ? "near-cache on" : "near-cache off"), "process \(index): \(fleet.log(index))")
            }
            try await body(fleet)
        } catch {
            await stopAll()
            throw error
        }
        await stopAll()
    }
}

// MARK: - Requests

extension NearCacheProcessTests {
    /// Logs `email` in through `server` and returns the `name=value` cookie pair; a 503 (Redis coming back) is
    /// asked again for 20 s.
    static func logIn(_ email: String, on server: ServerProcess) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let response = try await server.withClient { client in
                try await client.post(
                    "/api/v1/auth_session/login",
                    headers: [.contentType: "application/x-www-form-urlencoded"],
                    body: ByteBuffer(string: "email=\(formEncoded(email))&password=\(Self.password)")
                )
            }
            if response.status == .serviceUnavailable, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            try #require(response.status == .ok, "login of \(email) answered \(response.status)")
            let setCookie = try #require(response.head.headerFields[.setCookie], "login answered no Set-Cookie")
            return try #require(setCookie.split(separator: ";").first.map(String.init))
        }
    }

    /// The value of a `name=value` cookie pair: the session ID.
    static func cookieValue(_ pair: String) throws -> String {
        let parts = pair.split(separator: "=", maxSplits: 1)
        try #require(parts.count == 2, "not a cookie pair: \(pair)")
        return String(parts[1])
    }

    static func me(_ cookie: String, on client: TestClient) async throws -> TestClient.Response {
        try await client.get("/api/v1/users/me", headers: [.cookie: cookie])
    }

    static func logOut(_ cookie: String, on client: TestClient) async throws -> TestClient.Response {
        try await client.delete("/api/v1/auth_session/logout", headers: [.cookie: cookie], body: ByteBuffer())
    }

    static func firstName(_ response: TestClient.Response) -> String? {
        guard let body = response.body, let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            return nil
        }
        return object["first_name"] as? String
    }

    /// A near-cache lookup counter of `server`, read from its `GET /metrics` (0 while absent).
    static func lookups(_ server: ServerProcess, cache: String, result: String) async throws -> Double {
        let port = try #require(server.metricsPort)
        let text = try await TestClient.withClient(host: "127.0.0.1", port: port) { client in
            try await client.get("/metrics").body.map { String(buffer: $0) } ?? ""
        }
        // Labels in any order.
        let wanted: Set<String> = [#"cache="\#(cache)""#, #"result="\#(result)""#]
        let name = "session_api_near_cache_lookups_total{"
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            guard let close = line.firstIndex(of: "}") else { continue }
            let labels = Set(line[line.index(line.startIndex, offsetBy: name.count)..<close].split(separator: ",").map(String.init))
            if labels == wanted { return Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) ?? 0 }
        }
        return 0
    }

    /// GETs `/users/me` with `cookie` on `server` until its near-cache answers from memory (the hit counter of each
    /// of `caches` grows), so that what follows tests an invalidation, not a miss. Normally the second GET is the hit:
    /// the first reads Redis and fills the cache. A fill that raced an invalidation (the login's own writes, announced
    /// a moment later) is dropped, and the cache is bypassed until the process's listener has subscribed, so it may
    /// take a few more.
    static func warm(_ cookie: String, on server: ServerProcess, caches: [String] = ["sessions"]) async throws {
        var counts: [Double] = []
        for cache in caches { counts.append(try await Self.lookups(server, cache: cache, result: "hit")) }
        let before = counts
        let deadline = ContinuousClock.now + .seconds(20)
        try await server.withClient { client in
            while true {
                let response = try await Self.me(cookie, on: client)
                try #require(response.status == .ok, "GET /users/me answered \(response.status) while warming the cache")
                var hit = true
                for (cache, count) in zip(caches, before) {
                    if try await Self.lookups(server, cache: cache, result: "hit") <= count { hit = false }
                }
                if hit { return }
                try #require(ContinuousClock.now < deadline, "port \(server.port): no near-cache hit within 20 s (the cache is not in use)")
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// What a process answered, seen from a test waiting for a change.
    enum Seen: Sendable {
        /// The state before the change (still allowed until it arrives).
        case before
        /// The changed state.
        case after
        /// Neither: a failure.
        case unexpected
    }

    /// Opens a connection to each of `servers` and checks that it answers `request` in the state before; runs
    /// `change` (which returns once the change is in Redis), then sends `request` back to back on each connection
    /// until it answers in the state after (failing after ``giveUp``). Returns how long after `change` returned each
    /// one did. Then asks each 20 more times: an answer in the state before would be a stale cache entry coming back.
    static func delays(
        on servers: [ServerProcess],
        request: @escaping @Sendable (TestClient) async throws -> TestClient.Response,
        classify: @escaping @Sendable (TestClient.Response) -> Seen,
        what: String,
        after change: () async throws -> Void
    ) async throws -> [Duration] {
        let clients = servers.map { TestClient(host: "127.0.0.1", port: $0.port) }
        for client in clients { client.connect() }
        do {
            for (index, client) in clients.enumerated() {
                let response = try await request(client)
                try #require(classify(response) == .before, "port \(servers[index].port) answered \(response.status) before the change to \(what)")
            }
            try await change()
            let changedAt = ContinuousClock.now
            let delays = try await withThrowingTaskGroup(of: Duration.self) { group in
                for (index, client) in clients.enumerated() {
                    let port = servers[index].port
                    group.addTask {
                        // A process that never gets there ends the test: one clear failure, not one per round.
                        var unexpected: [String] = []
                        var delay: Duration?
                        while delay == nil {
                            let response = try await request(client)
                            let elapsed = ContinuousClock.now - changedAt
                            switch classify(response) {
                            case .after: delay = elapsed
                            case .before: break
                            case .unexpected: unexpected.append("\(response.status) \(Self.text(response))")
                            }
                            if delay == nil, elapsed > Self.giveUp {
                                throw NearCacheTestFailure(
                                    "port \(port) still answered \(response.status) \(Self.text(response)) \(Self.giveUp) after the change to \(what)"
                                )
                            }
                        }
                        if !unexpected.isEmpty {
                            Issue.record(
                                "port \(port) answered \(unexpected.count) times neither before nor after, waiting for \(what): \(unexpected.prefix(3))"
                            )
                        }
                        var relapses: [String] = []
                        for _ in 0..<20 {
                            let response = try await request(client)
                            if classify(response) != .after { relapses.append("\(response.status) \(Self.text(response))") }
                        }
                        if !relapses.isEmpty {
                            Issue.record(
                                "port \(port) answered \(relapses.count) of 20 times otherwise after it had shown \(what): \(relapses.prefix(3))"
                            )
                        }
                        return delay ?? .zero
                    }
                }
                return try await group.reduce(into: [Duration]()) { $0.append($1) }
            }
            for client in clients { try? await client.shutdown() }
            return delays
        } catch {
            for client in clients { try? await client.shutdown() }
            throw error
        }
    }

    /// ``delays(on:request:classify:what:after:)`` for `GET /users/me` with `cookie`: accepted (200) before,
    /// refused (`refusals`) after.
    static func refusalDelays(
        _ cookie: String,
        on servers: [ServerProcess],
        refusals: Set<HTTPResponse.Status> = Self.refusals,
        after change: () async throws -> Void
    ) async throws -> [Duration] {
        try await Self.delays(
            on: servers,
            request: { try await Self.me(cookie, on: $0) },
            classify: { response in
                if response.status == .ok { return .before }
                return refusals.contains(response.status) ? .after : .unexpected
            },
            what: "a refusal",
            after: change
        )
    }

    static func text(_ response: TestClient.Response) -> String {
        response.body.map { String(buffer: $0) } ?? ""
    }
}

/// Why a near-cache test stopped early.
struct NearCacheTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Recording answers while Redis goes away

extension NearCacheProcessTests {
    /// One answer to a recording poller: from which process (its index), when it was asked and answered, and its
    /// status (`nil`: no HTTP answer at all).
    struct Answer: Sendable {
        let server: Int
        let start: ContinuousClock.Instant
        let end: ContinuousClock.Instant
        let status: HTTPResponse.Status?
    }

    /// Every answer so far, shared by the pollers and the test.
    final class AnswerLog: Sendable {
        private let state = Mutex<(answers: [Answer], stopped: Bool)>(([], false))
        var answers: [Answer] { self.state.withLock { $0.answers } }
        var stopped: Bool { self.state.withLock { $0.stopped } }
        func append(_ answer: Answer) { self.state.withLock { $0.answers.append(answer) } }
        func stop() { self.state.withLock { $0.stopped = true } }
    }

    /// Asks each of `servers` `GET /users/me` with `cookie` every 5 ms (one connection each) while `body` runs;
    /// returns what `body` returned and every answer.
    static func recording<T: Sendable>(
        _ cookie: String,
        on servers: [ServerProcess],
        _ body: (AnswerLog) async throws -> T
    ) async throws -> (T, [Answer]) {
        let log = AnswerLog()
        let result = try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, server) in servers.enumerated() {
                group.addTask { await Self.poll(cookie, on: server, index: index, into: log) }
            }
            defer { log.stop() }
            let result = try await body(log)
            log.stop()
            try await group.waitForAll()
            return result
        }
        return (result, log.answers)
    }

    private static func poll(_ cookie: String, on server: ServerProcess, index: Int, into log: AnswerLog) async {
        while !log.stopped {
            // A lost connection is recorded and opened again.
            try? await server.withClient { client in
                while !log.stopped {
                    let start = ContinuousClock.now
                    do {
                        let status = try await Self.me(cookie, on: client).status
                        log.append(Answer(server: index, start: start, end: .now, status: status))
                    } catch {
                        log.append(Answer(server: index, start: start, end: .now, status: nil))
                        throw error
                    }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

// MARK: - Reporting

extension NearCacheProcessTests {
    static func milliseconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return String(format: "%.1f ms", Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }

    /// `n`, p50, p99 and max of some delays (nearest-rank percentiles).
    static func summary(_ delays: [Duration]) -> String {
        let sorted = delays.sorted()
        guard let last = sorted.last else { return "n=0" }
        func percentile(_ p: Double) -> Duration { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        return "n=\(sorted.count) p50=\(Self.milliseconds(percentile(0.5))) p99=\(Self.milliseconds(percentile(0.99))) max=\(Self.milliseconds(last))"
    }

    /// How many answers had each status.
    static func histogram(_ answers: [Answer]) -> String {
        let counts = Dictionary(grouping: answers) { $0.status.map { "\($0.code)" } ?? "no answer" }.mapValues(\.count)
        return counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    }

    /// The first few answers, with their times after `origin`, for failure messages.
    static func describe(_ answers: [Answer], since origin: ContinuousClock.Instant) -> String {
        let shown = answers.prefix(10).map { answer in
            "process \(answer.server): \(answer.status.map { "\($0.code)" } ?? "no answer") asked at +\(Self.milliseconds(answer.start - origin)), answered at +\(Self.milliseconds(answer.end - origin))"
        }
        return "\(answers.count) answers" + (shown.isEmpty ? "" : ": " + shown.joined(separator: "; "))
    }
}
