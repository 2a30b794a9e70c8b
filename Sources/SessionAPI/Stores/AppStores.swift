import Logging
import RedisClient
import ServiceLifecycle

/// The stores behind the API, chosen once from the configuration, plus the services they need running.
package struct AppStores: Sendable {
    package let users: any UserStore
    /// `nil` when `AUTH_TYPE` is not a session mode.
    package let sessions: (any SessionStore)?
    /// Failed logins, in Redis when there is one (shared by every process), else in memory.
    package let throttle: any LoginThrottle
    package let audit: AuditTrail
    package let services: [any Service]

    package init(
        users: any UserStore,
        sessions: (any SessionStore)?,
        throttle: any LoginThrottle = MemoryLoginThrottle(limits: ThrottleLimits(perAccount: 10, perAddress: 100, windowSeconds: 900)),
        audit: AuditTrail = .logOnly,
        services: [any Service] = []
    ) {
        self.users = users
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        self.services = services
    }

    /// Opens the stores `configuration` names: `USER_STORE` for users, `AUTH_TYPE` for sessions. Nothing here
    /// needs Redis to be up: the one Redis client the stores share is returned in `services`, to be run by the
    /// application (or by `withStores`), and connects by itself.
    /// - Throws: `StoreError` when a data file is unreadable, `ConfigurationError` when a store needs a Redis
    ///   and none is configured (`AppConfiguration` refuses that already; this is never a silent fallback).
    /// With `metrics`, the Redis client reports each command's latency, its errors and its reconnects there.
    /// `nearCache: false` leaves the near-cache out whatever `NEAR_CACHE` says (one-shot commands).
    package static func open(
        _ configuration: AppConfiguration,
        logger: Logger,
        metrics: AppMetrics? = nil,
        nearCache useNearCache: Bool = true
    ) async throws -> AppStores {
        var redisClient: RedisClient?
        func redis(for variable: String) throws -> RedisClient {
            if let redisClient { return redisClient }
            guard let redisConfiguration = configuration.redis else {
                throw ConfigurationError(variable: variable, reason: "needs REDIS_URL")
            }
            var redisLogger = logger
            redisLogger[metadataKey: "redis"] = .string("\(redisConfiguration)")
            let client = RedisClient(configuration: redisConfiguration, logger: redisLogger, observer: metrics.map(Self.redisObserver))
            redisClient = client
            return client
        }
        let keys = RedisKeys(prefix: configuration.redisPrefix)

        // The near-cache (issue 14): in session_redis_auth, where every request reads Redis; its listener is a
        // connection of its own, run as a service after the client.
        var nearCache: RedisNearCache?
        var listener: RedisInvalidationListener?
        if configuration.authType == .sessionRedisAuth, useNearCache {
            if configuration.nearCache {
                let cache = RedisNearCache(
                    keys: keys,
                    capacity: configuration.nearCacheEntries,
                    timeToLiveSeconds: configuration.nearCacheSeconds,
                    cachesUsers: configuration.userStore == .redis,
                    metrics: metrics
                )
                listener = cache.listener(client: try redis(for: "AUTH_TYPE"))
                nearCache = cache
                logger.info(
                    "near-cache on",
                    metadata: [
                        "entries": "\(configuration.nearCacheEntries)", "ttl_seconds": "\(configuration.nearCacheSeconds)",
                        "caches": "\(cache.users == nil ? "sessions" : "sessions, users")",
                    ]
                )
            } else {
                logger.info("near-cache off", metadata: ["reason": "NEAR_CACHE=off"])
            }
        }

        let users: any UserStore
        switch configuration.userStore {
        case .json:
            users = try await JSONFileUserStore(directory: configuration.dataDirectory)
        case .redis:
            users = RedisUserStore(client: try redis(for: "USER_STORE"), keys: keys, logger: logger, cache: nearCache?.users)
        }

        let expiry = SessionExpiry(duration: configuration.sessionDuration)
        var waitClient: RedisClient?
        var replicaWaiter: RedisReplicaWaiter?
        let sessions: (any SessionStore)?
        switch configuration.authType {
        case nil, .noAuthentication, .basicAuth:
            sessions = nil
        case .sessionAuth:
            sessions = MemorySessionStore(expiry: SessionExpiry(duration: 0), maximumPerUser: configuration.sessionMaximumPerUser)
        case .sessionExpAuth:
            sessions = MemorySessionStore(expiry: expiry, maximumPerUser: configuration.sessionMaximumPerUser)
        case .sessionDBAuth:
            sessions = try await JSONFileSessionStore(
                directory: configuration.dataDirectory,
                expiry: expiry,
                maximumPerUser: configuration.sessionMaximumPerUser
            )
        case .sessionRedisAuth:
            let client = try redis(for: "AUTH_TYPE")
            // `WAIT` blocks its connection: the waited writes get a client of their own (see RedisReplicaWaiter).
            if let wait = configuration.redisReplicaWait {
                var waitLogger = logger
                waitLogger[metadataKey: "redis"] = .string("\(client.configuration) (waited writes)")
                let ownClient = RedisClient(configuration: client.configuration, logger: waitLogger)
                waitClient = ownClient
                replicaWaiter = RedisReplicaWaiter(client: ownClient, wait: wait, logger: logger)
            }
            sessions = RedisSessionStore(
                client: client,
                keys: keys,
                duration: configuration.sessionDuration,
                idleTimeout: configuration.sessionIdleTimeout,
                maximumPerUser: configuration.sessionMaximumPerUser,
                replicaWaiter: replicaWaiter,
                cache: nearCache?.sessions
            )
        }
        // Throttling and the audit stream use the Redis the stores use, if any; they never add one of their own.
        let limits = ThrottleLimits(
            perAccount: configuration.loginFailuresPerAccount,
            perAddress: configuration.loginFailuresPerAddress,
            windowSeconds: configuration.loginFailureWindowSeconds
        )
        let throttle: any LoginThrottle =
            redisClient.map { RedisLoginThrottle(client: $0, keys: keys, limits: limits) } ?? MemoryLoginThrottle(limits: limits)
        // The clients first, so that they are shut down last; the migration of the first key layout with them.
        var services: [any Service] = []
        if let redisClient {
            services =
                [redisClient] + (waitClient.map { [$0] } ?? []) + (listener.map { [$0] } ?? [])
                + [RedisLayoutMigration(client: redisClient, keys: keys, logger: logger)]
        }
        return AppStores(
            users: users,
            sessions: sessions,
            throttle: throttle,
            audit: AuditTrail(redis: redisClient, keys: keys),
            services: services
        )
    }

    /// The Redis client's hooks, turned into `metrics`.
    static func redisObserver(_ metrics: AppMetrics) -> RedisClientObserver {
        RedisClientObserver(
            commandFinished: { command, duration, error in
                let code = error.map { Self.snakeCase(($0 as? RedisClientError)?.code.description ?? "other") }
                metrics.recordRedisCommand(command, duration: duration, error: code)
            },
            reconnected: { _ in metrics.recordRedisReconnect() }
        )
    }

    /// `notConnected` as `not_connected`, as Prometheus label values are written.
    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                result.append("_")
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }

    /// Opens the stores, runs their services (the Redis client) around `body`, then stops them.
    /// For commands and tests; the server runs the services as part of the application instead.
    package static func withStores<T: Sendable>(
        _ configuration: AppConfiguration,
        logger: Logger,
        _ body: @escaping @Sendable (AppStores) async throws -> T
    ) async throws -> T {
        let stores = try await AppStores.open(configuration, logger: logger, nearCache: false)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            for service in stores.services {
                group.addTask {
                    try await service.run()
                    return nil
                }
            }
            defer { group.cancelAll() }
            return try await body(stores)
        }
    }
}
