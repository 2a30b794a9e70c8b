import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// The Prometheus metrics: what moves when requests, logins and Redis commands happen, and `/metrics` itself.
@Suite(.storeBackend) struct MetricsTests {
    /// The value of the sample `name{labels}` in a Prometheus text; `nil` when absent.
    static func sample(_ text: String, _ name: String, _ labels: [(String, String)] = []) -> Double? {
        let selector = labels.isEmpty ? name : name + "{" + labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
        for line in text.split(separator: "\n") where line.hasPrefix(selector + " ") {
            return Double(line.dropFirst(selector.count + 1))
        }
        return nil
    }

    static func render(_ metrics: AppMetrics) -> String {
        String(decoding: metrics.render(), as: UTF8.self)
    }

    @Test func requestsLoginsAndTheHashQueueAreCounted() async throws {
        let metrics = AppMetrics()
        try await withDataDirectory { directory in
            var settings = AppConfiguration.test(directory: directory, authType: .sessionExpAuth)
            settings.loginFailuresPerAccount = 1  // bob's second failure in a row is throttled
            let configuration = settings
            let stores = try await AppStores.open(configuration, logger: testLogger(), metrics: metrics)
            let app = try buildApplication(configuration, stores: stores, logger: testLogger(), metrics: metrics)
            try await app.test(.router) { client in
                try await TestApp(configuration: configuration, stores: stores).seedUser()
                #expect(try await client.status().status == .ok)
                #expect(try await client.status().status == .ok)
                let cookie = try await client.login()
                #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                #expect(try await client.loginForm(email: "bob@example.com", password: "wrong").status == .unauthorized)
                #expect(try await client.loginForm(email: "bob@example.com", password: "wrong").status == .tooManyRequests)
                #expect(try await client.loginForm(email: "nobody@example.com", password: "pw").status == .notFound)
                #expect(try await client.loginForm(email: nil, password: "pw").status == .badRequest)
                #expect(try await client.showUser(id: "abc", headers: .cookie(cookie)).status == .notFound)
                #expect(try await client.showUser(id: "def", headers: .cookie(cookie)).status == .notFound)
            }
        }
        let text = Self.render(metrics)
        let requests = "session_api_http_requests_total"
        #expect(Self.sample(text, requests, [("route", "/api/v1/status"), ("method", "GET"), ("status", "200")]) == 2, "\(text)")
        #expect(Self.sample(text, requests, [("route", "/api/v1/users/me"), ("method", "GET"), ("status", "200")]) == 1)
        // The route's pattern, not the path: both ids are one series.
        #expect(Self.sample(text, requests, [("route", "/api/v1/users/{id}"), ("method", "GET"), ("status", "404")]) == 2)
        #expect(!text.contains("/api/v1/users/abc"))
        #expect(Self.sample(text, requests, [("route", "/api/v1/auth_session/login"), ("method", "POST"), ("status", "401")]) == 1)
        let durations = "session_api_http_request_duration_seconds_count"
        #expect(Self.sample(text, durations, [("route", "/api/v1/status"), ("method", "GET")]) == 2)
        #expect(text.contains(#"session_api_http_request_duration_seconds_bucket{route="/api/v1/status",method="GET",le="0.001"}"#))
        for (outcome, count) in [("success", 1.0), ("wrong_password", 1), ("unknown_user", 1), ("invalid", 1), ("unavailable", 0), ("throttled", 1)] {
            #expect(Self.sample(text, "session_api_logins_total", [("outcome", outcome)]) == count, "\(outcome)")
        }
        #expect(Self.sample(text, "session_api_password_hash_queue_depth") == 0)
        #expect(text.contains("# TYPE session_api_http_requests_total counter"))
        #expect(text.contains("# TYPE session_api_http_request_duration_seconds histogram"))
    }

    /// Redis commands by name, their errors while Redis is down, and the reconnect once it is back.
    @Test func redisCommandsErrorsAndReconnects() async throws {
        let metrics = AppMetrics()
        try await withDataDirectory { directory in
            try await withRedisServer { redis in
                var settings = AppConfiguration.test(directory: directory, authType: .sessionRedisAuth)
                settings.authType = .sessionRedisAuth
                settings.sessionDuration = 3600
                settings.redis = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: redis.port), connectTimeout: .seconds(5))
                settings.redisPrefix = "metrics-\(UUID().uuidString):"
                // Every request reaches Redis (the near-cache would answer the first request after the kill).
                settings.nearCache = false
                let configuration = settings
                let stores = try await AppStores.open(configuration, logger: testLogger(), metrics: metrics)
                let app = try buildApplication(configuration, stores: stores, logger: testLogger(), metrics: metrics)
                try await app.test(.router) { client in
                    try await TestApp(configuration: configuration, stores: stores).seedUser()
                    let cookie = try await client.login()
                    #expect(try await client.me(headers: .cookie(cookie)).status == .ok)
                    let before = Self.render(metrics)
                    #expect(
                        (Self.sample(before, "session_api_redis_command_duration_seconds_count", [("command", "EVALSHA")]) ?? 0) >= 1,
                        "\(before)"
                    )
                    #expect((Self.sample(before, "session_api_redis_command_duration_seconds_count", [("command", "HMGET")]) ?? 0) >= 1)
                    #expect(Self.sample(before, "session_api_redis_reconnects_total") == 0)

                    try await redis.stop()
                    #expect(try await client.me(headers: .cookie(cookie)).status == .serviceUnavailable)
                    let down = Self.render(metrics)
                    let errors = down.split(separator: "\n").filter { $0.hasPrefix("session_api_redis_command_errors_total{command=\"HMGET\"") }
                    #expect(!errors.isEmpty, "\(down)")

                    try await redis.restart()
                    // The pool reconnects by itself (backoff at most 2 s): poll, never sleep a fixed time.
                    let deadline = ContinuousClock.now + .seconds(30)
                    while Self.sample(Self.render(metrics), "session_api_redis_reconnects_total") ?? 0 < 1, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    #expect((Self.sample(Self.render(metrics), "session_api_redis_reconnects_total") ?? 0) >= 1)
                }
            }
        }
    }
}

/// `GET /metrics` of the real binary, on its own port.
@Suite(.enabled(if: TestBackend.current == .files, "the real binary with its own stores"))
struct MetricsEndpointTests {
    @Test func scrapeAfterAFewRequests() async throws {
        try await withDataDirectory { directory in
            let users = try await JSONFileUserStore(directory: directory)
            _ = try await UserAdministration.createUser(
                email: "bob@example.com",
                password: "pw",
                firstName: nil,
                lastName: nil,
                users: users,
                hasher: PasswordHasher(parameters: .testing)
            )
            let server = try await ServerProcess(
                environment: [
                    "DATA_DIR": directory, "AUTH_TYPE": "session_auth", "PASSWORD_ARGON2_MEMORY_KIB": "64", "PASSWORD_ARGON2_ITERATIONS": "1",
                ],
                metrics: true
            )
            defer { server.terminate() }
            let metricsPort = try #require(server.metricsPort)
            let statuses = try await server.withClient { client in
                [
                    try await client.get("/api/v1/status").head.status,
                    try await client.login(email: "bob@example.com", password: "pw").head.status,
                    try await client.login(email: "bob@example.com", password: "no").head.status,
                    // Not on the API's port.
                    try await client.get("/metrics").head.status,
                ]
            }
            #expect(statuses == [.ok, .ok, .unauthorized, .unauthorized])
            let scrape = try await TestClient.withClient(host: "127.0.0.1", port: metricsPort) { client in
                try await client.get("/metrics")
            }
            #expect(scrape.head.status == .ok)
            #expect(scrape.head.headerFields[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = scrape.body.map { String(buffer: $0) } ?? ""
            let status = [("route", "/api/v1/status"), ("method", "GET"), ("status", "200")]
            #expect(MetricsTests.sample(text, "session_api_http_requests_total", status) == 1, "\(text)")
            #expect(MetricsTests.sample(text, "session_api_logins_total", [("outcome", "success")]) == 1)
            #expect(MetricsTests.sample(text, "session_api_logins_total", [("outcome", "wrong_password")]) == 1)
            #expect(
                (MetricsTests.sample(text, "session_api_http_requests_total", [("route", "/healthz"), ("method", "GET"), ("status", "200")]) ?? 0)
                    >= 1
            )
        }
    }
}
