import RedisClient
import TestSupport
import Testing

/// EVALSHA with NOSCRIPT recovery.
@Suite struct RedisScriptIntegrationTests {
    static let script = RedisScript(
        """
        local n = redis.call('INCRBY', KEYS[1], ARGV[1])
        return {n, ARGV[2]}
        """
    )

    @Test func digestMatchesScriptLoad() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let loaded = try await client.send(["SCRIPT", "LOAD", RedisArgument(Self.script.source)])
                #expect(loaded.string == Self.script.sha1)
            }
        }
    }

    @Test func evalshaLoadsTheScriptWhenRedisDoesNotKnowIt() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                #expect(try await client.send(["SCRIPT", "EXISTS", RedisArgument(Self.script.sha1)]) == .array([.integer(0)]))
                let first = try await client.evalsha(Self.script, keys: ["counter"], arguments: [5, "a\r\nb"])
                #expect(first == .array([.integer(5), .bulkString(Array("a\r\nb".utf8))]))
                #expect(try await client.send(["SCRIPT", "EXISTS", RedisArgument(Self.script.sha1)]) == .array([.integer(1)]))
                #expect(try await client.evalsha(Self.script, keys: ["counter"], arguments: [1, "x"]).array?.first == .integer(6))

                try await client.send(["SCRIPT", "FLUSH"])
                #expect(try await client.evalsha(Self.script, keys: ["counter"], arguments: [1, "x"]).array?.first == .integer(7))
            }
        }
    }

    @Test func evalshaSurvivesARestart() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                #expect(try await client.evalsha(Self.script, keys: ["c"], arguments: [1, ""]).array?.first == .integer(1))
                try await server.restart()
                let reply = try await Integration.eventually { try await client.evalsha(Self.script, keys: ["c"], arguments: [1, ""]) }
                // No persistence: the counter starts again; what matters is that the script runs.
                #expect(reply.array?.first == .integer(1))
            }
        }
    }

    @Test func scriptErrorsAreThrown() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let failing = RedisScript("return redis.error_reply('MYERR custom failure')")
                let error = await Integration.errorOf { try await client.evalsha(failing) }
                #expect(error?.code == .commandError)
                #expect(error?.message == "MYERR custom failure")
                let broken = RedisScript("this is not lua")
                let compile = await Integration.errorOf { try await client.evalsha(broken) }
                #expect(compile?.code == .commandError)
            }
        }
    }
}
