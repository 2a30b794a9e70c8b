import RedisClient
import Synchronization
import TestSupport
import Testing

/// The invalidation listener against a real redis-server: every change under its prefixes is announced, a flush
/// as such, and a lost server as `stopped` before anything else, then `started` once it is back.
@Suite struct RedisInvalidationListenerTests {
    /// What the listener told, in order.
    final class Recorder: Sendable {
        let events = Mutex<[RedisInvalidation]>([])

        func record(_ event: RedisInvalidation) {
            self.events.withLock { $0.append(event) }
        }

        var all: [RedisInvalidation] { self.events.withLock { $0 } }

        func count(of event: RedisInvalidation) -> Int { self.all.filter { $0 == event }.count }

        /// Every announced key, in order.
        var keys: [String] {
            self.all.flatMap { event -> [String] in
                if case .keys(let keys) = event { return keys }
                return []
            }
        }
    }

    /// Runs `body` while a listener on `prefixes` records into a recorder, after its first `started`.
    static func withListener(
        _ server: RedisServerProcess,
        prefixes: [String],
        _ body: @escaping @Sendable (RedisClient, Recorder) async throws -> Void
    ) async throws {
        // A short command timeout: the heartbeat's PING is late after it.
        let shortTimeout: (inout RedisClientConfiguration) -> Void = { $0.commandTimeout = .milliseconds(500) }
        try await Integration.withClient(server, shortTimeout) { client in
            let recorder = Recorder()
            let listener = RedisInvalidationListener(client: client, prefixes: prefixes, heartbeat: .milliseconds(200)) {
                recorder.record($0)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await listener.run() }
                defer { group.cancelAll() }
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) == 1 }
                try await body(client, recorder)
            }
        }
    }

    @Test func announcesWritesDeletesAndExpiriesUnderItsPrefixesOnly() async throws {
        try await withRedisServer { server in
            try await Self.withListener(server, prefixes: ["t:session:", "t:user:{"]) { client, recorder in
                try await client.set("t:session:a", value: "1")
                try await client.set("t:other", value: "1")
                _ = try await client.send(["HSET", "t:user:{7}", "name", "x"])
                _ = try await client.del("t:session:a")
                _ = try await client.send(["SET", "t:session:b", "1", "PX", "50"])
                try await RedisClientFailureTests.waitUntil { recorder.keys.filter { $0 == "t:session:b" }.count >= 2 }
                let keys = recorder.keys
                #expect(keys.filter { $0 == "t:session:a" }.count == 2, "\(keys)")
                #expect(keys.contains("t:user:{7}"))
                #expect(!keys.contains("t:other"))
            }
        }
    }

    @Test func aFlushIsAnnouncedAsSuch() async throws {
        try await withRedisServer { server in
            try await Self.withListener(server, prefixes: ["t:"]) { client, recorder in
                _ = try await client.send(["FLUSHALL"])
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .flushed) == 1 }
            }
        }
    }

    /// Killed: `stopped` at once (before any reply could be cached from a server it no longer hears); restarted:
    /// `started` again, and announcements flow from the new process.
    @Test func aKilledServerStopsItThenARestartedOneStartsItAgain() async throws {
        try await withRedisServer { server in
            try await Self.withListener(server, prefixes: ["t:"]) { client, recorder in
                try await server.kill()
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .stopped) >= 1 }
                #expect(recorder.all.last == .stopped)
                try await server.restart()
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) == 2 }
                let afterRestart = recorder.all.count
                _ = try await Integration.eventually { try await client.set("t:x", value: "1") }
                try await RedisClientFailureTests.waitUntil { recorder.all.dropFirst(afterRestart).contains(.keys(["t:x"])) }
            }
        }
    }

    /// Frozen (SIGSTOP): the heartbeat is late, so it stops within about the heartbeat plus the command timeout,
    /// though the connection stays open; resumed, it starts again.
    @Test func aFrozenServerStopsItThroughTheHeartbeat() async throws {
        try await withRedisServer { server in
            try await Self.withListener(server, prefixes: ["t:"]) { _, recorder in
                try server.pause()
                let paused = ContinuousClock.now
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .stopped) >= 1 }
                #expect(ContinuousClock.now - paused < .milliseconds(700) + RedisClientFailureTests.schedulingMargin)
                try server.resume()
                try await RedisClientFailureTests.waitUntil { recorder.count(of: .started) >= 2 }
            }
        }
    }
}
