import RedisClient
import TestSupport
import Testing

/// Commands and replies against a real `redis-server`.
@Suite struct RedisClientCommandTests {
    @Test func tenThousandConcurrentCommandsEachGetTheirOwnReply() async throws {
        try await withRedisServer { server in
            // The default pool: one connection per event loop of NIO's shared group.
            var configuration = Integration.configuration(for: server)
            configuration.commandTimeout = .seconds(10)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
                let count = 10_000
                try await withThrowingDiscardingTaskGroup { group in
                    for index in 0..<count {
                        group.addTask {
                            try await client.set("key:\(index)", value: "value-\(index)")
                        }
                    }
                }
                let mismatches = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            try await client.getString("key:\(index)") == "value-\(index)" ? 0 : 1
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(mismatches == 0)
                #expect(try await client.send(["DBSIZE"]) == .integer(Int64(count)))
            }
        }
    }

    @Test func oneConnectionPipelinesManyCommands() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server, { $0.connectionCount = 1 }) { client in
                let results = try await withThrowingTaskGroup(of: (Int, Int64).self) { group in
                    for index in 0..<2000 {
                        group.addTask { (index, try await client.incr("counter:\(index % 7)")) }
                    }
                    return try await group.reduce(into: [Int64]()) { $0.append($1.1) }
                }
                #expect(results.count == 2000)
                let total = try await client.pipeline((0..<7).map { ["GET", RedisArgument("counter:\($0)")] })
                #expect(total.compactMap(\.int64).reduce(0, +) == 2000)
            }
        }
    }

    @Test func binaryKeysAndValuesRoundTrip() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let value: [UInt8] = [0x00, 0x0D, 0x0A, 0x24, 0x2A, 0x2B, 0x2D, 0x3A, 0xFF, 0xFE, 0x00, 0x0D, 0x0A]
                let key = RedisArgument([0x6B, 0x00, 0x0D, 0x0A, 0x6B])
                #expect(try await client.send(["SET", key, RedisArgument(value)]) == .simpleString("OK"))
                #expect(try await client.send(["GET", key]) == .bulkString(value))
                #expect(try await client.send(["STRLEN", key]) == .integer(Int64(value.count)))

                try await client.set("crlf", value: "line one\r\nline two\r\n\0")
                #expect(try await client.getString("crlf") == "line one\r\nline two\r\n\0")

                var generator = SystemRandomNumberGenerator()
                let large = (0..<(1 << 20)).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                try await client.set("large", value: large)
                #expect(try await client.get("large") == large)
                #expect(try await client.send(["STRLEN", "large"]) == .integer(1 << 20))
            }
        }
    }

    @Test func replyTypes() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                // nil
                #expect(try await client.get("missing") == nil)
                #expect(try await client.send(["GET", "missing"]) == .null)
                // integer
                #expect(try await client.incr("n") == 1)
                #expect(try await client.send(["INCRBY", "n", -11]) == .integer(-10))
                // simple string
                #expect(try await client.ping() == "PONG")
                // error replies are thrown with the server's text
                try await client.hset("hash", fields: ["f": "v"])
                let wrongType = await Integration.errorOf { try await client.get("hash") }
                #expect(wrongType?.code == .commandError)
                #expect(wrongType?.message.hasPrefix("WRONGTYPE") == true)
                let unknown = await Integration.errorOf { try await client.send(["NOSUCHCOMMAND", "x"]) }
                #expect(unknown?.code == .commandError)
                #expect(unknown?.message.hasPrefix("ERR unknown command") == true)
                let notInteger = await Integration.errorOf { try await client.incr("hash") }
                #expect(notInteger?.code == .commandError)
                // nested arrays, with nil and error elements, from Lua
                let nested = try await client.send([
                    "EVAL", "return {1, {2, {'deep', false}}, 'x', redis.pcall('INCR', KEYS[1])}", 1, "hash",
                ])
                #expect(
                    nested
                        == .array([
                            .integer(1),
                            .array([.integer(2), .array([.bulkString(Array("deep".utf8)), .null])]),
                            .bulkString(Array("x".utf8)),
                            .error("WRONGTYPE Operation against a key holding the wrong kind of value"),
                        ])
                )
                // the connection is still in sync after all of that
                #expect(try await client.ping() == "PONG")
            }
        }
    }

    @Test func stringAndKeyCommands() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                #expect(try await client.set("a", value: "1"))
                #expect(try await client.set("a", value: "2", onlyIfNotExists: true) == false)
                #expect(try await client.getString("a") == "1")
                #expect(try await client.set("b", value: [0x01, 0x02], expiresInSeconds: 100, onlyIfNotExists: true))
                let ttl = try await client.ttl("b")
                #expect((99...100).contains(ttl))
                let pttl = try await client.pttl("b")
                #expect((98_000...100_000).contains(pttl))
                #expect(try await client.ttl("a") == -1)
                #expect(try await client.ttl("missing") == -2)
                #expect(try await client.expire("a", seconds: 50))
                #expect(try await client.expire("missing", seconds: 50) == false)
                #expect(try await client.exists("a", "b", "missing") == 2)
                #expect(try await client.del("a", "b", "missing") == 2)
                #expect(try await client.exists(["a", "b"]) == 0)
                #expect(try await client.del([]) == 0)
            }
        }
    }

    /// SCAN to the end, a page at a time: every matching key (more than one page of them), nothing else.
    @Test func scanKeysFindsEveryMatchingKey() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                _ = try await client.pipeline((0..<250).map { ["SET", RedisArgument("scan:\($0)"), "v"] } + [["SET", "other", "v"]])
                var pages = 0
                var found = Set<String>()
                try await client.scanKeys(matching: "scan:*", count: 50) { keys in
                    pages += 1
                    found.formUnion(keys.compactMap(\.string))
                }
                #expect(found == Set((0..<250).map { "scan:\($0)" }))
                #expect(pages > 1)
                try await client.scanKeys(matching: "nothing:*") { keys in #expect(keys.isEmpty) }
            }
        }
    }

    @Test func hashCommands() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { (client) async throws in
                let fields: [String: RedisArgument] = ["email": "a@example.com", "name": "Ada", "blob": RedisArgument([0x00, 0xFF])]
                #expect(try await client.hset("user:1", fields: fields) == 3)
                #expect(try await client.hset("user:1", fields: ["name": "Ada L."]) == 0)
                #expect(try await client.hget("user:1", field: "name") == Array("Ada L.".utf8))
                #expect(try await client.hget("user:1", field: "missing") == nil)
                #expect(try await client.hmget("user:1", fields: ["email", "missing", "blob"]) == [Array("a@example.com".utf8), nil, [0x00, 0xFF]])
                #expect(
                    try await client.hgetall("user:1") == [
                        "email": Array("a@example.com".utf8), "name": Array("Ada L.".utf8), "blob": [0x00, 0xFF],
                    ]
                )
                #expect(try await client.hgetall("missing") == [:])
                #expect(try await client.hdel("user:1", fields: ["blob", "missing"]) == 1)
                #expect(try await client.hgetall("user:1").count == 2)
            }
        }
    }

    @Test func setCommandsAndCursorPaging() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let members = (0..<500).map { "member-\($0)" }
                #expect(try await client.sadd("set", members: members) == 500)
                #expect(try await client.sadd("set", members: ["member-0", "new"]) == 1)
                #expect(try await client.srem("set", members: ["new", "absent"]) == 1)
                #expect(try await client.scard("set") == 500)
                #expect(try await client.scard("missing") == 0)

                var seen = Set<String>()
                var cursor = "0"
                var pages = 0
                repeat {
                    let page = try await client.sscan("set", cursor: cursor, count: 50)
                    seen.formUnion(page.members.map { String(decoding: $0, as: UTF8.self) })
                    cursor = page.cursor
                    pages += 1
                } while cursor != "0" && pages < 1000
                #expect(seen == Set(members))
                #expect(pages > 1)

                let matched = try await client.sscan("set", match: "member-1?", count: 1000)
                #expect(Set(matched.members.map { String(decoding: $0, as: UTF8.self) }) == Set((10...19).map { "member-\($0)" }))

                #expect(Set(try await client.smembers("set").map { String(decoding: $0, as: UTF8.self) }) == Set(members))
            }
        }
    }

    @Test func sortedSetCommands() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                #expect(try await client.zadd("z", members: [(score: 3, member: "c"), (score: 1.5, member: "a"), (score: 2, member: "b")]) == 3)
                #expect(try await client.zadd("z", members: [(score: 0.5, member: "c")]) == 0)
                let range = try await client.zrangeWithScores("z", start: 0, stop: -1)
                #expect(range.map { String(decoding: $0.member, as: UTF8.self) } == ["c", "a", "b"])
                #expect(range.map(\.score) == [0.5, 1.5, 2])
                #expect(try await client.zremrangebyscore("z", min: -.infinity, max: 1.5) == 2)
                #expect(try await client.zrem("z", members: ["b", "zz"]) == 1)
                #expect(try await client.zrangeWithScores("z", start: 0, stop: -1).isEmpty)
            }
        }
    }

    @Test func pipelineReturnsEveryReplyInOrder() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let replies = try await client.pipeline([["SET", "p", "1"], ["INCR", "p"], ["LPUSH", "p", "x"], ["GET", "p"], ["GET", "nope"]])
                #expect(
                    replies == [
                        .simpleString("OK"), .integer(2), .error("WRONGTYPE Operation against a key holding the wrong kind of value"),
                        .bulkString(Array("2".utf8)), .null,
                    ]
                )
                #expect(try await client.pipeline([]) == [])
            }
        }
    }

    @Test func transactionRunsAtomicallyInOneWrite() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server) { client in
                let results = try await client.transaction([["SET", "t", "1"], ["INCR", "t"], ["EXPIRE", "t", 100], ["GET", "t"]])
                #expect(results == [.simpleString("OK"), .integer(2), .integer(1), .bulkString(Array("2".utf8))])

                // A command failing at run time: the others still run, the failure is an element.
                let partial = try await client.transaction([["LPUSH", "t", "x"], ["INCR", "t"]])
                #expect(partial == [.error("WRONGTYPE Operation against a key holding the wrong kind of value"), .integer(3)])

                // A command rejected while queueing: nothing runs, the whole transaction throws.
                let aborted = await Integration.errorOf { try await client.transaction([["INCR", "t"], ["SET", "only-one-argument"]]) }
                #expect(aborted?.code == .commandError)
                #expect(aborted?.message.contains("EXECABORT") == true)
                #expect(aborted?.message.contains("wrong number of arguments") == true)
                #expect(try await client.getString("t") == "3")
                // The connection is usable afterwards (no dangling MULTI).
                #expect(try await client.incr("t") == 4)
            }
        }
    }

    @Test func selectsTheConfiguredDatabase() async throws {
        try await withRedisServer { server in
            try await Integration.withClient(server, { $0.database = 3 }) { client in
                try await client.set("in-db-3", value: "yes")
                let info = try await client.send(["CLIENT", "INFO"]).string ?? ""
                #expect(info.contains("db=3"))
            }
            try await Integration.withClient(server) { (client) async throws in
                #expect(try await client.get("in-db-3") == nil)
            }
            try await Integration.withClient(server, { $0.database = 3 }) { (client) async throws in
                #expect(try await client.getString("in-db-3") == "yes")
            }
        }
    }

    @Test func connectsOverAUnixSocketFromAURL() async throws {
        try await withRedisServer(unixSocket: true) { server in
            let path = try #require(server.unixSocketPath)
            var configuration = try RedisClientConfiguration(url: "unix://\(path)?db=2")
            configuration.connectTimeout = .seconds(2)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
                try await client.set("via-unix", value: "1")
                #expect(try await client.send(["CLIENT", "INFO"]).string?.contains("db=2") == true)
            }
        }
    }

    @Test func commandsAfterTheClientStoppedFailWithShutdown() async throws {
        try await withRedisServer { server in
            let client = try await Integration.withClient(server) { client in
                try await client.ping()
                return client
            }
            let error = await Integration.errorOf { try await client.ping() }
            #expect(error?.code == .shutdown)
            let again = await Integration.errorOf { try await client.run() }
            #expect(again?.code == .shutdown)
        }
    }
}
