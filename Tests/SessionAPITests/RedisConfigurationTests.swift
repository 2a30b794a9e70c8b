import Foundation
import RedisClient
import SessionAPI
import Testing

/// The Redis topology settings: `REDIS_SENTINELS`, `REDIS_CLUSTER_NODES`, `REDIS_WAIT_*`, read once and refused at
/// start-up when they cannot be used, with one line naming the variable.
@Suite struct RedisConfigurationTests {
    static let base = ["AUTH_TYPE": "session_redis_auth", "USER_STORE": "redis"]

    static func configuration(_ environment: [String: String]) throws -> AppConfiguration {
        try AppConfiguration(environment: Self.base.merging(environment) { $1 })
    }

    @Test func sentinelsWithTheURLsCredentials() throws {
        let configuration = try Self.configuration([
            "REDIS_URL": "redis://app:secret@ignored.example:7000/3",
            "REDIS_SENTINELS": "10.0.0.1,10.0.0.2:26380, [::1]:26381",
            "REDIS_SENTINEL_MASTER": "sessions",
            "REDIS_SENTINEL_USERNAME": "watcher",
            "REDIS_SENTINEL_PASSWORD": "s3ntinel",
            "REDIS_COMMAND_TIMEOUT_MS": "250",
        ])
        let redis = try #require(configuration.redis)
        let sentinel = try #require(redis.topology.sentinel)
        #expect(sentinel.endpoints == [.tcp(host: "10.0.0.1", port: 26379), .tcp(host: "10.0.0.2", port: 26380), .tcp(host: "::1", port: 26381)])
        #expect(sentinel.masterName == "sessions")
        #expect(sentinel.username == "watcher")
        #expect(sentinel.password == "s3ntinel")
        #expect(redis.username == "app")
        #expect(redis.password == "secret")
        #expect(redis.database == 3)
        #expect(redis.commandTimeout == .milliseconds(250))
        #expect(!"\(redis)".contains("secret") && !"\(redis)".contains("s3ntinel"))
    }

    @Test func clusterWithoutAURL() throws {
        let configuration = try Self.configuration(["REDIS_CLUSTER_NODES": "127.0.0.1:7000,127.0.0.1:7001"])
        let cluster = try #require(configuration.redis?.topology.cluster)
        #expect(cluster.seeds == [.tcp(host: "127.0.0.1", port: 7000), .tcp(host: "127.0.0.1", port: 7001)])
        #expect(configuration.redis?.password == nil)
        #expect(configuration.redis?.database == 0)
        #expect(configuration.redisReplicaWait == nil)
    }

    @Test func replicaWait() throws {
        let defaults = try Self.configuration(["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_REPLICAS": "1"])
        #expect(defaults.redisReplicaWait == RedisReplicaWait(replicas: 1, timeout: .milliseconds(100)))
        let set = try Self.configuration(["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_REPLICAS": "2", "REDIS_WAIT_TIMEOUT_MS": "20"])
        #expect(set.redisReplicaWait == RedisReplicaWait(replicas: 2, timeout: .milliseconds(20)))
    }

    @Test(arguments: [
        (["REDIS_SENTINELS": "10.0.0.1", "REDIS_CLUSTER_NODES": "10.0.0.2"], "REDIS_CLUSTER_NODES"),
        (["REDIS_SENTINELS": "10.0.0.1"], "REDIS_SENTINEL_MASTER"),
        (["REDIS_SENTINELS": "10.0.0.1,,10.0.0.2", "REDIS_SENTINEL_MASTER": "m"], "REDIS_SENTINELS"),
        (["REDIS_SENTINELS": "10.0.0.1:notaport", "REDIS_SENTINEL_MASTER": "m"], "REDIS_SENTINELS"),
        (["REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "redis://127.0.0.1"], "REDIS_SENTINEL_MASTER"),
        (["REDIS_SENTINEL_PASSWORD": "pw", "REDIS_URL": "redis://127.0.0.1"], "REDIS_SENTINEL_PASSWORD"),
        (["REDIS_CLUSTER_NODES": "127.0.0.1:99999"], "REDIS_CLUSTER_NODES"),
        (["REDIS_CLUSTER_NODES": "127.0.0.1:7000", "REDIS_URL": "redis://127.0.0.1/2"], "REDIS_URL"),
        (["REDIS_CLUSTER_NODES": "127.0.0.1:7000", "REDIS_URL": "unix:///tmp/redis.sock"], "REDIS_URL"),
        (["REDIS_CLUSTER_NODES": "127.0.0.1:7000", "REDIS_URL": "rediss://127.0.0.1?ca=/nonexistent/ca.pem"], "REDIS_URL"),
        (["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_REPLICAS": "0"], "REDIS_WAIT_REPLICAS"),
        (["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_REPLICAS": "one"], "REDIS_WAIT_REPLICAS"),
        (["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_TIMEOUT_MS": "50"], "REDIS_WAIT_TIMEOUT_MS"),
        (["REDIS_URL": "redis://127.0.0.1", "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "0"], "REDIS_WAIT_TIMEOUT_MS"),
    ])
    func unusableSettingsStopStartUpNamingTheVariable(environment: [String: String], variable: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try Self.configuration(environment) }
        #expect(error.variable == variable, "\(error)")
        #expect(error.description.hasPrefix("\(variable): "))
        #expect(!error.description.contains("\n"))
    }

    @Test func waitWithoutAnyRedisIsRefused() throws {
        let error = try #require(throws: ConfigurationError.self) { try AppConfiguration(environment: ["REDIS_WAIT_REPLICAS": "1"]) }
        #expect(error.variable == "REDIS_WAIT_REPLICAS")
    }
}
