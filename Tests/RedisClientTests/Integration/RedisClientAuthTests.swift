import RedisClient
import TestSupport
import Testing

/// AUTH on every (re)connect, with a password and with an ACL user.
@Suite struct RedisClientAuthTests {
    @Test func passwordFromTheURL() async throws {
        try await withRedisServer(extraArguments: ["--requirepass", "p@ss:word/1"]) { server in
            var configuration = try RedisClientConfiguration(url: "redis://:p%40ss%3Aword%2F1@127.0.0.1:\(server.port)")
            configuration.connectTimeout = .seconds(2)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { (client) async throws in
                #expect(try await client.ping() == "PONG")
                #expect(try await client.send(["ACL", "WHOAMI"]).string == "default")
            }
        }
    }

    @Test func wrongPasswordFailsWithTheServersMessage() async throws {
        try await withRedisServer(extraArguments: ["--requirepass", "right"]) { server in
            try await Integration.withClient(server, { $0.password = "hunter2-wrong" }) { client in
                let error = await Integration.errorOf { try await client.ping() }
                #expect(error?.code == .notConnected)
                #expect(error?.message.contains("WRONGPASS") == true, "\(String(describing: error))")
                #expect(error.map { "\($0)" }?.contains("hunter2") == false)
            }
            try await Integration.withClient(server) { client in
                let error = await Integration.errorOf { try await client.ping() }
                #expect(error?.code == .notConnected)
                #expect(error?.message.contains("NOAUTH") == true, "\(String(describing: error))")
            }
        }
    }

    @Test func aclUserAndPasswordWithSelect() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { admin in
                try await admin.send(["ACL", "SETUSER", "alice", "on", ">wonder land", "~*", "+@all"])
            }
            var configuration = try RedisClientConfiguration(url: "redis://alice:wonder%20land@127.0.0.1:\(server.port)/5")
            configuration.connectTimeout = .seconds(2)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { (client) async throws in
                #expect(try await client.send(["ACL", "WHOAMI"]).string == "alice")
                #expect(try await client.send(["CLIENT", "INFO"]).string?.contains("db=5") == true)
            }
        }
    }

    @Test func authenticatesAgainAfterARestart() async throws {
        try await withRedisServer(extraArguments: ["--requirepass", "secret"]) { server in
            try await Integration.withClient(server, { $0.password = "secret" }) { client in
                #expect(try await client.ping() == "PONG")
                try await server.kill()
                try await server.restart()
                let whoami = try await Integration.eventually { try await client.send(["ACL", "WHOAMI"]) }
                #expect(whoami.string == "default")
            }
        }
    }
}
