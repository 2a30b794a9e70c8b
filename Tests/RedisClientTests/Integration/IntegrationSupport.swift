import Logging
import NIOCore
import NIOPosix
import RedisClient
import Synchronization
import TestSupport
import Testing

/// Shared set-up for the suites that run against a real `redis-server` started by `RedisServerProcess`.
enum Integration {
    static var logger: Logger {
        var logger = Logger(label: "redis-client-tests")
        logger.logLevel = .error
        return logger
    }

    /// A configuration for `server` with a short reconnect backoff, so failure tests stay fast.
    ///
    /// The timeouts are generous because every suite runs in parallel on shared event loops in a debug build; the
    /// tests that measure timeouts set their own.
    static func configuration(
        for server: RedisServerProcess,
        _ customize: (inout RedisClientConfiguration) -> Void = { _ in }
    ) -> RedisClientConfiguration {
        var configuration = RedisClientConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: server.port),
            connectTimeout: .seconds(2),
            commandTimeout: .seconds(2),
            reconnectBackoff: .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        )
        customize(&configuration)
        return configuration
    }

    /// Runs `body` with a client connected to `server`.
    ///
    /// The client runs on its own two event loops (not NIO's shared singleton), so a test's timings are not skewed by
    /// another test's traffic queued on the same loops.
    @discardableResult
    static func withClient<Result>(
        _ server: RedisServerProcess,
        isolation: isolated (any Actor)? = #isolation,
        _ customize: (inout RedisClientConfiguration) -> Void = { _ in },
        _ body: (RedisClient) async throws -> Result
    ) async throws -> Result {
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let result: Result
        do {
            result = try await RedisClient.withClient(
                Self.configuration(for: server, customize),
                eventLoopGroup: eventLoopGroup,
                logger: Self.logger
            ) { client in
                try await body(client)
            }
        } catch {
            try await eventLoopGroup.shutdownGracefully()
            throw error
        }
        try await eventLoopGroup.shutdownGracefully()
        return result
    }

    /// Retries `operation` until it succeeds, at most `limit`; returns its result or rethrows its last error.
    static func eventually<Result>(
        within limit: Duration = .seconds(10),
        isolation: isolated (any Actor)? = #isolation,
        _ operation: () async throws -> Result
    ) async throws -> Result {
        let deadline = ContinuousClock.now + limit
        while true {
            do {
                return try await operation()
            } catch {
                if ContinuousClock.now >= deadline {
                    throw error
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    /// The first event of `events` that `matches`, waiting at most `limit`; `nil` if none came.
    static func firstEvent(
        in events: AsyncStream<RedisTopologyEvent>,
        within limit: Duration = .seconds(10),
        where matches: @escaping @Sendable (RedisTopologyEvent) -> Bool
    ) async -> RedisTopologyEvent? {
        await withTaskGroup(of: RedisTopologyEvent?.self) { group in
            group.addTask {
                for await event in events where matches(event) {
                    return event
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// The `RedisClientError` that `operation` throws, or `nil` when it succeeds; records an issue for other errors.
    static func errorOf<T>(
        isolation: isolated (any Actor)? = #isolation,
        _ operation: () async throws -> T
    ) async -> RedisClientError? {
        do {
            _ = try await operation()
            return nil
        } catch let error as RedisClientError {
            return error
        } catch {
            Issue.record("expected a RedisClientError, got \(error)")
            return nil
        }
    }
}

/// A flag and counters shared between traffic tasks and the test body.
final class TrafficStats: Sendable {
    let stop = Atomic<Bool>(false)
    let successes = Atomic<Int>(0)
    let failures = Mutex<[RedisClientError.Code: Int]>([:])
    let otherErrors = Mutex<[String]>([])

    func record(_ error: any Error) {
        if let error = error as? RedisClientError {
            self.failures.withLock { $0[error.code, default: 0] += 1 }
        } else {
            self.otherErrors.withLock { $0.append("\(error)") }
        }
    }

    var failureCount: Int {
        self.failures.withLock { $0.values.reduce(0, +) }
    }
}
