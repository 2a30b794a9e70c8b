import NIOCore
import Testing

@testable import RedisClient

@Suite struct CommandEncoderTests {
    private func encode(_ commands: [[RedisArgument]]) throws -> [UInt8] {
        var encoder = HiredisCommandEncoder()
        var buffer = ByteBuffer()
        for command in commands {
            try encoder.encode(command, into: &buffer)
        }
        return Array(buffer.readableBytesView)
    }

    @Test func encodesBulkStringsWithLengths() throws {
        let bytes = try self.encode([["GET", "key"]])
        #expect(bytes == Array("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n".utf8))
    }

    @Test func argumentsWithCRLFAndNULAreBinarySafe() throws {
        let value: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x24, 0x2A]
        let bytes = try self.encode([["SET", "a\r\nb", RedisArgument(value)]])
        var expected = Array("*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$6\r\n".utf8)
        expected += value
        expected += Array("\r\n".utf8)
        #expect(bytes == expected)
    }

    @Test func emptyArgumentsAndNumbers() throws {
        let bytes = try self.encode([["SET", "", "", "EX", 60], ["ZADD", "z", RedisArgument(1.5), "m", RedisArgument(-Double.infinity), "n"]])
        let expected =
            "*5\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n$2\r\nEX\r\n$2\r\n60\r\n"
            + "*6\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$1\r\nm\r\n$4\r\n-inf\r\n$1\r\nn\r\n"
        #expect(bytes == Array(expected.utf8))
    }

    @Test func reusesItsScratchBufferAcrossCommands() throws {
        let long = RedisArgument([UInt8](repeating: 0x61, count: 1000))
        let bytes = try self.encode([["SET", "k", long], ["GET", "k"]])
        let expected = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000\r\n" + String(repeating: "a", count: 1000) + "\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        #expect(bytes == Array(expected.utf8))
    }

    @Test func largeArgument() throws {
        let value = [UInt8](repeating: 0x7A, count: 1 << 20)
        let bytes = try self.encode([["SET", "big", RedisArgument(value)]])
        let header = Array("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n".utf8)
        #expect(bytes.count == header.count + value.count + 2)
        #expect(Array(bytes.prefix(header.count)) == header)
    }

    @Test func emptyCommandIsRejected() throws {
        let error = #expect(throws: RedisClientError.self) { try self.encode([[]]) }
        #expect(error?.code == .protocolError)
    }
}

@Suite struct ReplyDecoderTests {
    /// Replies of every type, back to back, with the values they decode to.
    static let stream: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        (
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            .error("WRONGTYPE Operation against a key holding the wrong kind of value")
        ),
        (":-42\r\n", .integer(-42)),
        (":9223372036854775807\r\n", .integer(.max)),
        ("$5\r\nhello\r\n", .bulkString(Array("hello".utf8))),
        ("$0\r\n\r\n", .bulkString([])),
        ("$4\r\na\r\n\0\r\n", .bulkString([0x61, 0x0D, 0x0A, 0x00])),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("*0\r\n", .array([])),
        (
            "*3\r\n:1\r\n*2\r\n$1\r\nx\r\n*1\r\n-ERR inner\r\n$-1\r\n",
            .array([.integer(1), .array([.bulkString([0x78]), .array([.error("ERR inner")])]), .null])
        ),
    ]

    private static var streamBytes: [UInt8] { Array(Self.stream.map(\.0).joined().utf8) }

    private func decodeAll(_ chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        let decoder = try HiredisReplyDecoder()
        var values: [RESPValue] = []
        for chunk in chunks {
            try decoder.feed(ByteBuffer(bytes: chunk))
            while let value = try decoder.next() {
                values.append(value)
            }
        }
        return values
    }

    @Test func decodesEveryReplyType() throws {
        let values = try self.decodeAll([Self.streamBytes[...]])
        #expect(values == Self.stream.map(\.1))
    }

    @Test func decodesRepliesSplitAtEveryByteBoundary() throws {
        let bytes = Self.streamBytes
        let expected = Self.stream.map(\.1)
        for split in 0...bytes.count {
            let values = try self.decodeAll([bytes[..<split], bytes[split...]])
            #expect(values == expected, "split at byte \(split)")
        }
    }

    @Test func decodesRepliesFedOneByteAtATime() throws {
        let bytes = Self.streamBytes
        let values = try self.decodeAll(bytes.indices.map { bytes[$0...$0] })
        #expect(values == Self.stream.map(\.1))
    }

    @Test func decodesALargeBulkStringInPieces() throws {
        let value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let bytes = Array("$\(value.count)\r\n".utf8) + value + Array("\r\n:7\r\n".utf8)
        let chunks = stride(from: 0, to: bytes.count, by: 65536).map { bytes[$0..<min($0 + 65536, bytes.count)] }
        let values = try self.decodeAll(chunks)
        #expect(values == [.bulkString(value), .integer(7)])
    }

    @Test func incompleteReplyYieldsNothingYet() throws {
        let decoder = try HiredisReplyDecoder()
        try decoder.feed(ByteBuffer(string: "*2\r\n:1\r\n$3\r\nab"))
        #expect(try decoder.next() == nil)
        try decoder.feed(ByteBuffer(string: "c\r\n"))
        #expect(try decoder.next() == .array([.integer(1), .bulkString(Array("abc".utf8))]))
        #expect(try decoder.next() == nil)
    }

    @Test func garbageIsAProtocolError() throws {
        let decoder = try HiredisReplyDecoder()
        let error = #expect(throws: RedisClientError.self) {
            try decoder.feed(ByteBuffer(string: "?what\r\n"))
            _ = try decoder.next()
        }
        #expect(error?.code == .protocolError)
    }
}
