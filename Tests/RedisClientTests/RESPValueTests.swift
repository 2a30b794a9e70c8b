import RedisClient
import Testing

@Suite struct RESPValueTests {
    @Test func accessors() {
        #expect(RESPValue.bulkString(Array("abc".utf8)).string == "abc")
        #expect(RESPValue.simpleString("OK").bytes == Array("OK".utf8))
        #expect(RESPValue.integer(5).int64 == 5)
        #expect(RESPValue.bulkString(Array("12".utf8)).int64 == 12)
        #expect(RESPValue.array([.null]).array == [.null])
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.error("ERR x").errorMessage == "ERR x")
        #expect(RESPValue.integer(1).string == nil)
        #expect(RESPValue.null.array == nil)
    }

    @Test func description() {
        let value = RESPValue.array([.simpleString("OK"), .bulkString([0xFF]), .integer(3), .null, .error("ERR e")])
        #expect(value.description == "[+OK, <1 bytes>, :3, nil, -ERR e]")
    }

    @Test func argumentsFromLiteralsAndValues() {
        let arguments: [RedisArgument] = ["GET", 42, RedisArgument([0, 1]), RedisArgument(2.5), RedisArgument(Double.infinity)]
        #expect(arguments.map(\.bytes) == [Array("GET".utf8), Array("42".utf8), [0, 1], Array("2.5".utf8), Array("+inf".utf8)])
    }
}
