import Testing

@testable import RedisClient

/// Hash slots, hash tags, key positions, redirects and the slot map, without a server.
@Suite struct ClusterRoutingTests {
    @Test func crc16IsXMODEM() {
        #expect(RedisHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisHashSlot.crc16([UInt8]()) == 0)
    }

    /// Values from `CLUSTER KEYSLOT` on redis-server 7.0 (the cluster suite checks more against the live server).
    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("hello", 866), ("", 0), ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
        ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{}", 15257),
    ])
    func knownSlots(key: String, slot: Int) {
        #expect(RedisHashSlot.of(key.utf8) == slot)
        #expect(RedisHashSlot.of(RedisArgument(key)) == slot)
        #expect(RedisHashSlot.of(RedisArgument(Array(key.utf8))) == slot)
    }

    @Test func routesByTheKeysOfEachCommand() throws {
        #expect(try RedisCommandRoute.of(["GET", "foo"]) == .slot(12182))
        #expect(try RedisCommandRoute.of(["get", "foo"]) == .slot(12182))
        #expect(try RedisCommandRoute.of(["HSET", "{user1000}.following", "f", "v"]) == .slot(3443))
        #expect(try RedisCommandRoute.of(["MSET", "{a}1", "x", "{a}2", "y"]) == .slot(RedisHashSlot.of("a".utf8)))
        #expect(try RedisCommandRoute.of(["EVALSHA", "abc", "2", "{u}:1", "{u}:2", "not-a-key"]) == .slot(RedisHashSlot.of("u".utf8)))
        #expect(try RedisCommandRoute.of(["EVAL", "return 1", "0", "argument"]) == .anyNode)
        #expect(try RedisCommandRoute.of(["ZUNIONSTORE", "{z}dest", "2", "{z}a", "{z}b", "WEIGHTS", "1", "2"]) == .slot(RedisHashSlot.of("z".utf8)))
        #expect(try RedisCommandRoute.of(["BLPOP", "{q}1", "{q}2", "0"]) == .slot(RedisHashSlot.of("q".utf8)))
        #expect(try RedisCommandRoute.of(["OBJECT", "ENCODING", "foo"]) == .slot(12182))
        #expect(try RedisCommandRoute.of(["PING"]) == .anyNode)
        #expect(try RedisCommandRoute.of(["SOMEFUTURECOMMAND", "x"]) == .anyNode)
        #expect(try RedisCommandRoute.of(["SCRIPT", "LOAD", "return 1"]) == .allPrimaries)
        #expect(
            try RedisCommandRoute.of(commands: [["MULTI"], ["SET", "{t}a", "1"], ["INCR", "{t}b"], ["EXEC"]]) == .slot(RedisHashSlot.of("t".utf8))
        )
        #expect(try RedisCommandRoute.of(commands: [["SET", "k", "v"], ["WAIT", "1", "100"]]) == .slot(RedisHashSlot.of("k".utf8)))
    }

    @Test func keysInDifferentSlotsAreRefusedBeforeSending() {
        let batches: [[[RedisArgument]]] = [
            [["DEL", "foo", "bar"]], [["EVALSHA", "abc", "2", "foo", "bar"]], [["MULTI"], ["SET", "foo", "1"], ["SET", "bar", "2"], ["EXEC"]],
        ]
        for commands in batches {
            let error = #expect(throws: RedisClientError.self) { try RedisCommandRoute.of(commands: commands) }
            #expect(error?.code == .crossSlot)
            #expect(error?.message.hasPrefix("CROSSSLOT") == true)
        }
    }

    @Test func parsesRedirects() {
        #expect(RedisClusterRedirect("MOVED 3999 127.0.0.1:6381", host: "h") == .moved(slot: 3999, endpoint: .tcp(host: "127.0.0.1", port: 6381)))
        #expect(RedisClusterRedirect("ASK 3999 10.0.0.2:7000", host: "h") == .ask(slot: 3999, endpoint: .tcp(host: "10.0.0.2", port: 7000)))
        #expect(RedisClusterRedirect("MOVED 1 :7001", host: "10.0.0.9") == .moved(slot: 1, endpoint: .tcp(host: "10.0.0.9", port: 7001)))
        #expect(RedisClusterRedirect("MOVED 1 fe80::1:7001", host: "h") == .moved(slot: 1, endpoint: .tcp(host: "fe80::1", port: 7001)))
        #expect(RedisClusterRedirect("TRYAGAIN Multiple keys request during rehashing of slot", host: "h") == .tryAgain)
        #expect(RedisClusterRedirect("CLUSTERDOWN The cluster is down", host: "h") == .clusterDown)
        #expect(RedisClusterRedirect("MOVED 99999 h:1", host: "h") == nil)
        #expect(RedisClusterRedirect("MOVED x h:1", host: "h") == nil)
        #expect(RedisClusterRedirect("WRONGTYPE Operation against a key", host: "h") == nil)
    }

    @Test func slotMapFromClusterSlots() throws {
        func node(_ host: String, _ port: Int64) -> RESPValue {
            .array([.bulkString(Array(host.utf8)), .integer(port), .bulkString(Array("id".utf8))])
        }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)]),
            .array([.integer(5461), .integer(10922), node("", 7001)]),
            .array([.integer(10923), .integer(16383), node("127.0.0.1", 7002)]),
        ])
        var map = try RedisClusterSlotMap(clusterSlotsReply: reply, host: "10.0.0.1")
        #expect(map.primaries == [.tcp(host: "127.0.0.1", port: 7000), .tcp(host: "10.0.0.1", port: 7001), .tcp(host: "127.0.0.1", port: 7002)])
        #expect(map.primary(forSlot: 0) == .tcp(host: "127.0.0.1", port: 7000))
        #expect(map.primary(forSlot: 5461) == .tcp(host: "10.0.0.1", port: 7001))
        #expect(map.primary(forSlot: 16383) == .tcp(host: "127.0.0.1", port: 7002))
        #expect(map.unassignedSlotCount == 0)
        map.assign(slot: 42, to: .tcp(host: "127.0.0.1", port: 7009))
        #expect(map.primary(forSlot: 42) == .tcp(host: "127.0.0.1", port: 7009))

        let partial = try RedisClusterSlotMap(clusterSlotsReply: .array([.array([.integer(0), .integer(99), node("h", 1)])]), host: "h")
        #expect(partial.unassignedSlotCount == 16384 - 100)
        #expect(partial.primary(forSlot: 100) == nil)
        #expect(throws: RedisClientError.self) { try RedisClusterSlotMap(clusterSlotsReply: .integer(1), host: "h") }
    }
}
