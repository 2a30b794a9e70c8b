import Foundation
import RedisClient
import SessionAPI
import TestSupport
import Testing

/// Which stores the API tests run against, chosen by `SESSION_API_TEST_BACKEND` so that the same suite
/// runs unchanged against every backend (scripts/test.sh runs all three):
/// - `files` (default): each test's own `AUTH_TYPE`, users in `.db_User.json`;
/// - `redis`: every session mode becomes `session_redis_auth`, users stay in the JSON file;
/// - `redis-users`: `session_redis_auth` and users in Redis hashes;
/// - `cluster`: as `redis-users`, on a Redis Cluster of 3 primaries (no replicas) that each suite builds.
enum TestBackend: String, Sendable {
    case files
    case redis
    case redisUsers = "redis-users"
    case cluster

    static let current: TestBackend = {
        let name = ProcessInfo.processInfo.environment["SESSION_API_TEST_BACKEND"] ?? "files"
        guard let backend = TestBackend(rawValue: name) else {
            preconditionFailure("SESSION_API_TEST_BACKEND=\(name): expected files, redis, redis-users or cluster")
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
        if Self.current == .redisUsers || Self.current == .cluster {
            configuration.userStore = .redis
        }
    }
}

/// Runs a suite with a private redis-server when the backend needs one (stopped by PID afterwards).
struct StoreBackendTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        switch TestBackend.current {
        case .files:
            return try await function()
        case .cluster:
            let cluster = try await RedisClusterFixture.start(primaries: 3, replicasPerPrimary: 0)
            // A generous first connect: each app reads the slot map, then connects to every primary, on a loaded machine.
            var configuration = RedisClientConfiguration(connectTimeout: .seconds(5))
            configuration.topology = .cluster(.init(seeds: try RedisClientConfiguration.Endpoint.list(cluster.seedList, defaultPort: 6379)))
            do {
                try await TestBackend.$redisServer.withValue(configuration) { try await function() }
            } catch {
                await cluster.stop()
                throw error
            }
            await cluster.stop()
            return
        case .redis, .redisUsers:
            break
        }
        let server = try await RedisServerProcess.start()
        // A generous first connect, as for the cluster: the suites start many servers at once on a loaded machine.
        let configuration = RedisClientConfiguration(endpoint: .tcp(host: "127.0.0.1", port: server.port), connectTimeout: .seconds(5))
        do {
            try await TestBackend.$redisServer.withValue(configuration) {
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
