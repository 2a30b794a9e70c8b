import Foundation
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// Which stores the API tests run against, chosen by `SESSION_API_TEST_BACKEND` so that the same suite
/// runs unchanged against every backend (scripts/test.sh runs all three):
/// - `files` (default): each test's own `AUTH_TYPE`, users in `.db_User.json`;
/// - `redis`: every session mode becomes `session_redis_auth`, users stay in the JSON file;
/// - `redis-users`: `session_redis_auth` and users in Redis hashes.
enum TestBackend: String, Sendable {
    case files
    case redis
    case redisUsers = "redis-users"

    static let current: TestBackend = {
        let name = ProcessInfo.processInfo.environment["SESSION_API_TEST_BACKEND"] ?? "files"
        guard let backend = TestBackend(rawValue: name) else {
            preconditionFailure("SESSION_API_TEST_BACKEND=\(name): expected files, redis or redis-users")
        }
        return backend
    }()

    /// The Redis of the running suite (set by `.storeBackend`), for the Redis backends.
    @TaskLocal static var redisServer: RedisClientConfiguration?

    /// Points `configuration` at the current backend: Redis sessions (and users) under a prefix of its own,
    /// so tests running at once never see each other's keys.
    static func apply(to configuration: inout AppConfiguration) {
        guard Self.current != .files, let redis = Self.redisServer else { return }
        configuration.redis = redis
        configuration.redisPrefix = "test-\(UUID().uuidString):"
        if let authType = configuration.authType, authType.usesSessions {
            configuration.authType = .sessionRedisAuth
        }
        if Self.current == .redisUsers {
            configuration.userStore = .redis
        }
    }
}

/// Runs a suite with a private redis-server when the backend needs one (stopped by PID afterwards).
struct StoreBackendTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        guard TestBackend.current != .files else { return try await function() }
        let server = try await RedisServerProcess.start()
        do {
            try await TestBackend.$redisServer.withValue(RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: server.port))) {
                try await function()
            }
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }
}

extension Trait where Self == StoreBackendTrait {
    /// The stores of `SESSION_API_TEST_BACKEND` for every test of the suite.
    static var storeBackend: Self { StoreBackendTrait() }
}
