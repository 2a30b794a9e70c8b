import Logging
import NIOCore
import NIOPosix
import RedisClient
import Synchronization
import TestSupport
import Testing

/// `RedisClientObserver`: what the client reports for metrics.
@Suite struct RedisClientObserverTests {
    /// What an observer was told.
    final class Record: Sendable {
        struct Command: Sendable {
            let name: String
            let duration: Duration
            let error: RedisClientError.Code?
        }

        private let commands = Mutex<[Command]>([])
        private let reconnects = Atomic<Int>(0)

        var observer: RedisClientObserver {
            RedisClientObserver(
                commandFinished: { name, duration, error in
                    let command = Command(name: name, duration: duration, error: (error as? RedisClientError)?.code)
                    self.commands.withLock { $0.append(command) }
                },
                reconnected: { _ in self.reconnects.add(1, ordering: .relaxed) }
            )
        }

        var all: [Command] { self.commands.withLock { $0 } }
        var reconnectCount: Int { self.reconnects.load(ordering: .relaxed) }
    }

    @Test func commandsPipelinesErrorsAndReconnects() async throws {
        try await withRedisServer { server in
            let record = Record()
            let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let client = RedisClient(
                configuration: Integration.configuration(for: server),
                eventLoopGroup: eventLoopGroup,
                logger: Integration.logger,
                observer: record.observer
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await client.run() }
                // Cancelled however the body ends, so that a failed expectation cannot leave run() holding the group.
                defer { group.cancelAll() }
                _ = try await client.set("key", value: "value")
                _ = try await client.getString("key")
                _ = try await client.pipeline([["GET", "key"], ["GET", "key"]])
                _ = await Integration.errorOf { try await client.send(["HGET", "key", "field"]) }  // WRONGTYPE
                let commands = record.all
                #expect(commands.map(\.name) == ["SET", "GET", "PIPELINE", "HGET"])
                #expect(commands.map(\.error) == [nil, nil, nil, .commandError])
                #expect(commands.allSatisfy { $0.duration > .zero })
                #expect(record.reconnectCount == 0)

                // A lost connection, then a reconnect (polled: the backoff is at most 200 ms here).
                try await server.restart()
                let reconnected = try await Integration.eventually {
                    _ = try await client.ping()
                    return record.reconnectCount
                }
                #expect(reconnected == 1)
            }
            try await eventLoopGroup.shutdownGracefully()
        }
    }
}
