import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import RedisClient

/// Drives a `RedisChannelHandler` through `NIOAsyncTestingChannel`: checks the bytes written and feeds reply bytes in.
@Suite struct RedisChannelHandlerTests {
    /// A handler in a testing channel, with the connection that sends through it.
    struct Harness {
        let channel: NIOAsyncTestingChannel
        let connection: RedisConnection
        let handler: NIOLoopBound<RedisChannelHandler>

        init(commandTimeout: TimeAmount = .seconds(1)) async throws {
            let channel = NIOAsyncTestingChannel()
            (self.connection, self.handler) = try await channel.testingEventLoop.executeInContext {
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let handler = try RedisChannelHandler(eventLoop: channel.eventLoop, logger: logger)
                try channel.pipeline.syncOperations.addHandler(handler)
                return (
                    RedisConnection(channel: channel, handler: handler, commandTimeout: commandTimeout),
                    NIOLoopBound(handler, eventLoop: channel.eventLoop)
                )
            }
            self.channel = channel
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 6379))
        }

        /// Runs the loop until the handler has written something, and returns it as text.
        func nextWrite() async throws -> String {
            for _ in 0..<10_000 {
                await self.channel.testingEventLoop.run()
                if let buffer = try await self.channel.readOutbound(as: ByteBuffer.self) {
                    return String(buffer: buffer)
                }
                await Task.yield()
            }
            throw HarnessError.nothingWritten
        }

        func reply(_ text: String) async throws {
            try await self.channel.writeInbound(ByteBuffer(string: text))
        }
    }

    final class Continuations: Sendable {
        let promises = Mutex<[RedisChannelHandler.Promise]>([])
    }

    enum HarnessError: Error {
        case nothingWritten
    }

    /// The `RedisClientError` `operation` throws, or `nil` if it returns (or throws something else).
    static func errorOf(_ operation: () async throws -> RESPValue) async -> RedisClientError? {
        do {
            _ = try await operation()
            return nil
        } catch {
            return error as? RedisClientError
        }
    }

    @Test func writesTheCommandAndReturnsItsReply() async throws {
        let harness = try await Harness()
        async let reply = harness.connection.send(["GET", "key"])
        #expect(try await harness.nextWrite() == "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
        try await harness.reply("$5\r\nvalue\r\n")
        #expect(try await reply == .bulkString(Array("value".utf8)))
    }

    @Test func commandsEncodedInOneLoopPassAreWrittenWithOneFlush() async throws {
        let harness = try await Harness()
        let continuations = Continuations()
        try await withThrowingTaskGroup(of: RESPValue.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await RedisConnection.withPromise { promise in
                        continuations.promises.withLock { $0.append(promise) }
                    }
                }
            }
            while continuations.promises.withLock({ $0.count }) < 3 {
                await Task.yield()
            }
            let promises = continuations.promises.withLock { $0 }
            let handler = harness.handler
            try await harness.channel.testingEventLoop.executeInContext {
                for (index, promise) in promises.enumerated() {
                    handler.value.write(command: ["INCR", RedisArgument("k\(index)")], timeout: .seconds(1), promise: promise)
                }
            }
            let written = try await harness.nextWrite()
            #expect(written == "*2\r\n$4\r\nINCR\r\n$2\r\nk0\r\n*2\r\n$4\r\nINCR\r\n$2\r\nk1\r\n*2\r\n$4\r\nINCR\r\n$2\r\nk2\r\n")
            #expect(try await harness.channel.readOutbound(as: ByteBuffer.self) == nil)
            try await harness.reply(":1\r\n:2\r\n:3\r\n")
            var replies: [RESPValue] = []
            for try await reply in group {
                replies.append(reply)
            }
            #expect(Set(replies) == [.integer(1), .integer(2), .integer(3)])
        }
    }

    @Test func repliesSplitAcrossReadsAreMatchedInOrder() async throws {
        let harness = try await Harness()
        async let first = harness.connection.send(["SET", "a", "1"])
        _ = try await harness.nextWrite()
        async let second = harness.connection.send(["GET", "a"])
        _ = try await harness.nextWrite()
        async let third = harness.connection.send(["LRANGE", "l", 0, -1])
        _ = try await harness.nextWrite()
        try await harness.reply("+OK\r\n$1")
        try await harness.reply("\r\n1\r\n*2\r\n$1\r\nx\r")
        try await harness.reply("\n$-1\r\n")
        #expect(try await first == .simpleString("OK"))
        #expect(try await second == .bulkString(Array("1".utf8)))
        #expect(try await third == .array([.bulkString(Array("x".utf8)), .null]))
    }

    @Test func pipelineIsOneWriteAndOneArrayOfReplies() async throws {
        let harness = try await Harness()
        async let replies = harness.connection.pipeline([["SET", "k", "v"], ["LPUSH", "k", "x"], ["GET", "k"]])
        let written = try await harness.nextWrite()
        #expect(written == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        try await harness.reply("+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\nv\r\n")
        #expect(
            try await replies == [
                .simpleString("OK"), .error("WRONGTYPE Operation against a key holding the wrong kind of value"), .bulkString(Array("v".utf8)),
            ]
        )
    }

    @Test func aLateReplyTimesOutAndResetsTheConnection() async throws {
        let harness = try await Harness(commandTimeout: .milliseconds(500))
        async let late = Self.errorOf { try await harness.connection.send(["BLPOP", "q", 0]) }
        _ = try await harness.nextWrite()
        await harness.channel.testingEventLoop.advanceTime(by: .milliseconds(100))
        async let behind = Self.errorOf { try await harness.connection.send(["PING"]) }
        _ = try await harness.nextWrite()
        await harness.channel.testingEventLoop.advanceTime(by: .milliseconds(399))
        #expect(harness.channel.isActive)
        await harness.channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        let timeout = await late
        #expect(timeout?.code == .timeout)
        let reset = await behind
        #expect(reset?.code == .connectionClosed)
        #expect(harness.channel.isActive == false)
        // A command on the closed connection fails at once, without being written.
        let rejected = await #expect(throws: RedisClientError.self) { try await harness.connection.send(["PING"]) }
        #expect(rejected?.code == .notConnected)
    }

    @Test func closingTheChannelFailsPendingCommands() async throws {
        let harness = try await Harness()
        async let pending = Self.errorOf { try await harness.connection.send(["GET", "k"]) }
        _ = try await harness.nextWrite()
        try await harness.channel.close()
        let error = await pending
        #expect(error?.code == .connectionClosed)
    }

    @Test func garbageFromTheServerClosesTheConnection() async throws {
        let harness = try await Harness()
        async let pending = Self.errorOf { try await harness.connection.send(["GET", "k"]) }
        _ = try await harness.nextWrite()
        try await harness.reply("!not resp\r\n")
        let error = await pending
        #expect(error?.code == .protocolError)
        #expect(harness.channel.isActive == false)
    }

    @Test func anUnsolicitedReplyClosesTheConnection() async throws {
        let harness = try await Harness()
        try await harness.reply(":1\r\n")
        #expect(harness.channel.isActive == false)
    }
}
