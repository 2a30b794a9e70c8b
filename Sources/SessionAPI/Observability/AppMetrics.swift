import CoreMetrics
import Prometheus
import Synchronization

/// The server's metrics, through swift-metrics' types onto one Prometheus registry of this application's own
/// (not swift-metrics' global `MetricsSystem`: each app, and each test, counts alone), rendered by ``render()``
/// for `GET /metrics`. Names and labels in the README ("Metrics").
///
/// Recording is cheap enough for every request: one lock to find the series of a label set (made once, then
/// cached) and the series' own atomic or lock.
package final class AppMetrics: Sendable {
    /// How a login ended, as `session_api_logins_total{outcome}` counts it.
    package enum LoginOutcome: String, Sendable, CaseIterable {
        case success
        case wrongPassword = "wrong_password"
        case unknownUser = "unknown_user"
        /// A refused request: no email or password, a form that cannot be read.
        case invalid
        /// Too many attempts (answered 429).
        case throttled
        /// A store or the password hashing could not answer (503).
        case unavailable
        case error
    }

    private struct RequestKey: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    private struct RequestSeries {
        let count: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
    }

    private struct RedisErrorKey: Hashable {
        let command: String
        let error: String
    }

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let requests = Mutex<[RequestKey: RequestSeries]>([:])
    private let redisCommands = Mutex<[String: CoreMetrics.Timer]>([:])
    private let redisErrors = Mutex<[RedisErrorKey: CoreMetrics.Counter]>([:])
    private let redisReconnects: CoreMetrics.Counter
    private let logins: [LoginOutcome: CoreMetrics.Counter]
    private let hashQueueDepth: CoreMetrics.Gauge
    /// Read at each scrape: the password hashes queued or running.
    private let hashQueue = Mutex<(@Sendable () -> Int)?>(nil)
    /// Read at each scrape: each near-cache's entries.
    private let nearCacheEntries = Mutex<(@Sendable () -> [(String, Int)])?>(nil)

    static let requestsName = "session_api_http_requests_total"
    static let requestDurationName = "session_api_http_request_duration_seconds"
    static let redisDurationName = "session_api_redis_command_duration_seconds"
    static let redisErrorsName = "session_api_redis_command_errors_total"
    static let redisReconnectsName = "session_api_redis_reconnects_total"
    static let loginsName = "session_api_logins_total"
    static let hashQueueName = "session_api_password_hash_queue_depth"
    static let nearCacheLookupsName = "session_api_near_cache_lookups_total"
    static let nearCacheInvalidationsName = "session_api_near_cache_invalidations_total"
    static let nearCacheEntriesName = "session_api_near_cache_entries"

    package init() {
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.durationHistogramBuckets[Self.requestDurationName] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        ]
        factory.durationHistogramBuckets[Self.redisDurationName] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        ]
        self.factory = factory
        self.redisReconnects = CoreMetrics.Counter(label: Self.redisReconnectsName, factory: factory)
        var logins: [LoginOutcome: CoreMetrics.Counter] = [:]
        for outcome in LoginOutcome.allCases {
            logins[outcome] = CoreMetrics.Counter(label: Self.loginsName, dimensions: [("outcome", outcome.rawValue)], factory: factory)
        }
        self.logins = logins
        self.hashQueueDepth = CoreMetrics.Gauge(label: Self.hashQueueName, factory: factory)
    }

    // MARK: - Recording

    /// One answered request: `route` is the route's pattern (`/api/v1/users/{id}`), never the path itself, so
    /// the label has a value per route, not per user.
    package func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let key = RequestKey(route: route, method: method, status: status)
        let series = self.requests.withLock { requests in
            if let series = requests[key] { return series }
            let series = RequestSeries(
                count: CoreMetrics.Counter(
                    label: Self.requestsName,
                    dimensions: [("route", route), ("method", method), ("status", String(status))],
                    factory: self.factory
                ),
                duration: CoreMetrics.Timer(
                    label: Self.requestDurationName,
                    dimensions: [("route", route), ("method", method)],
                    factory: self.factory
                )
            )
            requests[key] = series
            return series
        }
        series.count.increment()
        series.duration.recordNanoseconds(Self.nanoseconds(duration))
    }

    package func recordLogin(_ outcome: LoginOutcome) {
        self.logins[outcome]?.increment()
    }

    /// One Redis command (or pipeline), by name, and its error code (`timeout`, `notConnected`, ...) if it failed.
    package func recordRedisCommand(_ command: String, duration: Duration, error: String?) {
        let timer = self.redisCommands.withLock { timers in
            if let timer = timers[command] { return timer }
            let timer = CoreMetrics.Timer(label: Self.redisDurationName, dimensions: [("command", command)], factory: self.factory)
            timers[command] = timer
            return timer
        }
        timer.recordNanoseconds(Self.nanoseconds(duration))
        guard let error else { return }
        let key = RedisErrorKey(command: command, error: error)
        let counter = self.redisErrors.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: Self.redisErrorsName,
                dimensions: [("command", command), ("error", error)],
                factory: self.factory
            )
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    /// A Redis connection came back after it was lost.
    package func recordRedisReconnect() {
        self.redisReconnects.increment()
    }

    /// Tells the metrics how to read the password-hash queue's depth (read at each scrape).
    package func observeHashQueue(_ depth: @escaping @Sendable () -> Int) {
        self.hashQueue.withLock { $0 = depth }
    }

    /// Counters for one near-cache (`cache` is `sessions` or `users`), one series per lookup result and one per
    /// invalidation reason, made once: counting then costs one atomic add.
    package func nearCacheCounters(
        _ cache: String,
        results: [String],
        reasons: [String]
    ) -> (lookup: @Sendable (String) -> Void, invalidated: @Sendable (String) -> Void) {
        var lookups: [String: CoreMetrics.Counter] = [:]
        for result in results {
            lookups[result] = CoreMetrics.Counter(
                label: Self.nearCacheLookupsName,
                dimensions: [("cache", cache), ("result", result)],
                factory: self.factory
            )
        }
        var invalidations: [String: CoreMetrics.Counter] = [:]
        for reason in reasons {
            invalidations[reason] = CoreMetrics.Counter(
                label: Self.nearCacheInvalidationsName,
                dimensions: [("cache", cache), ("reason", reason)],
                factory: self.factory
            )
        }
        return ({ [lookups] in lookups[$0]?.increment() }, { [invalidations] in invalidations[$0]?.increment() })
    }

    /// Tells the metrics how to read the near-caches' sizes (read at each scrape).
    package func observeNearCache(_ entries: @escaping @Sendable () -> [(String, Int)]) {
        self.nearCacheEntries.withLock { $0 = entries }
    }

    // MARK: - Export

    /// Every metric in Prometheus' text format (version 0.0.4).
    package func render() -> [UInt8] {
        if let depth = self.hashQueue.withLock({ $0 }) { self.hashQueueDepth.record(depth()) }
        if let entries = self.nearCacheEntries.withLock({ $0 }) {
            for (cache, count) in entries() {
                CoreMetrics.Gauge(label: Self.nearCacheEntriesName, dimensions: [("cache", cache)], factory: self.factory).record(count)
            }
        }
        var output: [UInt8] = []
        self.registry.emit(into: &output)
        return output
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
