import Logging
import NIOPosix
import RedisClient

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Measures `GET` throughput of ``RedisClient`` on one connection with many commands in flight.
///
/// Usage: `redis-client-bench --port P [--host H] [--requests N] [--in-flight C] [--key K] [--warmup N]`.
/// `C` tasks each send `GET key` in a loop until `N` requests are done, so `C` commands are in flight at any time on
/// the one connection. Prints a summary and a final `RESULT requests_per_second=…` line for scripts.
@main
struct RedisClientBenchmark {
    struct Options {
        var host = "127.0.0.1"
        var port = 6379
        var requests = 1_000_000
        var inFlight = 256
        var key = "key:__rand_int__"
        var warmup = 100_000

        init(arguments: [String]) throws {
            var iterator = arguments.makeIterator()
            while let flag = iterator.next() {
                guard let value = iterator.next() else {
                    throw UsageError("missing value after \(flag)")
                }
                switch flag {
                case "--host": self.host = value
                case "--port": self.port = try Self.positive(value, flag)
                case "--requests": self.requests = try Self.positive(value, flag)
                case "--in-flight": self.inFlight = try Self.positive(value, flag)
                case "--key": self.key = value
                case "--warmup": self.warmup = try Self.positive(value, flag, allowZero: true)
                default: throw UsageError("unknown option \(flag)")
                }
            }
        }

        private static func positive(_ text: String, _ flag: String, allowZero: Bool = false) throws -> Int {
            guard let value = Int(text), value > 0 || (allowZero && value == 0) else {
                throw UsageError("\(flag) needs a positive integer, got '\(text)'")
            }
            return value
        }
    }

    struct UsageError: Error, CustomStringConvertible {
        let description: String

        init(_ description: String) {
            self.description = description
        }
    }

    static func main() async throws {
        let options: Options
        do {
            options = try Options(arguments: Array(CommandLine.arguments.dropFirst()))
        } catch {
            print("redis-client-bench: \(error)")
            print("usage: redis-client-bench --port P [--host H] [--requests N] [--in-flight C] [--key K] [--warmup N]")
            throw error
        }

        var logger = Logger(label: "redis-client-bench")
        logger.logLevel = .warning
        let configuration = RedisClientConfiguration(
            endpoint: .tcp(host: options.host, port: options.port),
            connectionCount: 1,
            connectTimeout: .seconds(2),
            commandTimeout: .seconds(10)
        )

        try await RedisClient.withClient(configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger) { client in
            guard try await client.get(options.key) != nil else {
                throw UsageError("key '\(options.key)' does not exist; SET it first so every GET returns a value")
            }
            if options.warmup > 0 {
                _ = try await Self.run(client, key: options.key, requests: options.warmup, inFlight: options.inFlight)
            }
            let cpuBefore = Self.processCPUTime()
            let elapsed = try await Self.run(client, key: options.key, requests: options.requests, inFlight: options.inFlight)
            let cpu = Self.processCPUTime() - cpuBefore
            let seconds = elapsed / .seconds(1)
            let rate = Double(options.requests) / seconds
            let cpuPerRequest = cpu / .nanoseconds(1) / Double(options.requests)
            print(
                "redis-client-bench: \(options.requests) GET \(options.key) on 1 connection, \(options.inFlight) in flight: "
                    + "\(Self.formatted(seconds, digits: 3)) s, \(Int(rate)) requests/s, "
                    + "client CPU \(Int(cpuPerRequest)) ns/request (all threads)"
            )
            print("RESULT requests_per_second=\(Int(rate))")
        }
    }

    /// User plus system CPU time of this process so far (every thread).
    static func processCPUTime() -> Duration {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        let user = Duration.seconds(usage.ru_utime.tv_sec) + .microseconds(usage.ru_utime.tv_usec)
        let system = Duration.seconds(usage.ru_stime.tv_sec) + .microseconds(usage.ru_stime.tv_usec)
        return user + system
    }

    /// `value` rounded to `digits` decimals, as text (no Foundation).
    static func formatted(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits {
            scale *= 10
        }
        return "\((value * scale).rounded() / scale)"
    }

    /// Sends `requests` GETs from `inFlight` concurrent tasks; returns the wall-clock time.
    static func run(_ client: RedisClient, key: String, requests: Int, inFlight: Int) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingDiscardingTaskGroup { group in
            for worker in 0..<inFlight {
                let share = requests / inFlight + (worker < requests % inFlight ? 1 : 0)
                group.addTask {
                    for _ in 0..<share {
                        guard try await client.get(key) != nil else {
                            throw UsageError("GET \(key) returned nil")
                        }
                    }
                }
            }
        }
        return clock.now - start
    }
}
