import Logging
import NIOCore
import ServiceLifecycle

/// Keeps one connection subscribed to Redis' key invalidations for a set of key prefixes, and tells a handler of
/// every change, so that a process can cache what it read and still drop it the moment anyone changes it.
///
/// The connection uses Redis' client-side caching in broadcasting mode (`CLIENT TRACKING on REDIRECT <its own id>
/// BCAST PREFIX ...`, then `SUBSCRIBE __redis__:invalidate`, the RESP2 way): Redis announces every write, delete,
/// expiry or eviction of a key under the prefixes, whoever made it, without tracking what each client read. The
/// data connections need no tracking of their own, so the pool, its reconnects and pipelining stay as they are.
///
/// Safety comes first: ``RedisInvalidation/stopped`` is told as soon as the connection closes, a `PING` heartbeat
/// is not answered within the command timeout, or the Sentinels name another master; ``RedisInvalidation/started``
/// only once a new subscription is confirmed. A `FLUSHALL` or `FLUSHDB` arrives as ``RedisInvalidation/flushed``.
///
/// In a cluster there is one such connection per primary (each announces the keys of its own slots): `started`
/// is told once all are subscribed, `stopped` as soon as any of them is lost, or the slot map changes (a failover,
/// a resharding), after which all subscribe again to the new primaries.
///
/// The handler runs on a connection's event loop (or the listener's task, for `started` and `stopped`); it must
/// be quick and must not block.
public final class RedisInvalidationListener: Sendable, Service {
    /// The channel Redis publishes RESP2 invalidations on.
    static let channel = "__redis__:invalidate"

    private let client: RedisClient
    private let target: Target
    private let prefixes: [String]
    private let heartbeat: Duration
    private let handler: @Sendable (RedisInvalidation) -> Void

    /// - Parameters:
    ///   - client: The client whose server (or Sentinel master) to follow, with its credentials, TLS and timeouts.
    ///   - prefixes: The key prefixes to hear about; they must not be prefixes of one another (Redis refuses that).
    ///   - heartbeat: How often the connection is checked with `PING`.
    ///   - handler: Told of every ``RedisInvalidation``.
    public init(
        client: RedisClient,
        prefixes: [String],
        heartbeat: Duration = .seconds(1),
        handler: @escaping @Sendable (RedisInvalidation) -> Void
    ) {
        self.client = client
        self.target = client.invalidationTarget
        self.prefixes = prefixes
        self.heartbeat = heartbeat
        self.handler = handler
    }

    /// Subscribes, and subscribes again after every loss (with the client's reconnect backoff), until the task is
    /// cancelled or a graceful shutdown is triggered; tells ``RedisInvalidation/stopped`` last.
    public func run() async {
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await self.subscribeAndWatch()
                    failures = 0
                } catch {
                    failures += 1
                    // Once per outage, not once per attempt.
                    let level: Logger.Level = failures == 1 ? .warning : .debug
                    self.client.logger.log(
                        level: level,
                        "Redis key invalidations are not flowing; the near-cache is bypassed until they do",
                        metadata: ["redis.error": "\((error as? RedisClientError)?.message ?? "\(error)")"]
                    )
                }
                try? await Task.sleep(for: max(self.client.backoff(afterFailures: failures), .milliseconds(10)))
            }
        }
        self.handler(.stopped)
    }

    /// Where the subscriptions go.
    enum Target: Sendable {
        case fixed(RedisClientConfiguration.Endpoint)
        case sentinel(RedisSentinelMonitor)
        case cluster(RedisClusterRouter)
    }

    /// One subscription per server of the target: connects and sets up tracking on each, tells `started`, then
    /// returns when any connection closes (after closing the others). Throws when not every subscription was made.
    private func subscribeAndWatch() async throws {
        let configuration = self.client.configuration
        let endpoints: [RedisClientConfiguration.Endpoint]
        // What, when it changes, makes the subscriptions wrong: a new master, a new slot map.
        let change: (signal: RedisChangeSignal, seen: UInt64)?
        switch self.target {
        case .fixed(let endpoint):
            (endpoints, change) = ([endpoint], nil)
        case .sentinel(let monitor):
            let (master, generation) = try await monitor.current()
            (endpoints, change) = ([master], (monitor.changes, generation))
        case .cluster(let router):
            let (primaries, generation) = try await router.primaries()
            (endpoints, change) = (primaries, (router.mapChanges, generation))
        }
        let handler = self.handler
        let tls = configuration.tls.map { RedisTLSContext(settings: $0) }
        var connections: [RedisConnection] = []
        func closeAll(_ reason: String) {
            for connection in connections {
                connection.close(because: RedisClientError(.connectionClosed, message: reason))
            }
        }
        do {
            for endpoint in endpoints {
                let connection = try await RedisConnection.connect(
                    to: endpoint,
                    handshake: RedisConnection.Handshake(configuration: configuration, requiresMaster: change != nil),
                    tls: tls,
                    connectTimeout: TimeAmount(configuration.connectTimeout),
                    commandTimeout: TimeAmount(configuration.commandTimeout),
                    eventLoop: self.client.eventLoopGroup.next(),
                    logger: self.client.logger,
                    pushHandler: { message in
                        if let invalidation = Self.invalidation(in: message) { handler(invalidation) }
                    }
                )
                // Told on the event loop as the channel closes, before any later subscription can tell `started`.
                connection.closeFuture.whenComplete { _ in handler(.stopped) }
                connections.append(connection)
                try await self.setUpTracking(on: connection)
            }
        } catch {
            closeAll("setting up key tracking failed")
            throw error
        }
        let subscribed = connections
        try Task.checkCancellation()
        await withTaskCancellationHandler {
            handler(.started)
            self.client.logger.info(
                "Subscribed to Redis key invalidations; the near-cache is in use",
                metadata: ["redis.endpoints": "\(endpoints.map(\.description).joined(separator: ","))"]
            )
            await withDiscardingTaskGroup { group in
                let (closed, closedContinuation) = AsyncStream.makeStream(of: Void.self)
                for connection in subscribed {
                    connection.closeFuture.whenComplete { _ in closedContinuation.yield() }
                    group.addTask { await self.beatUntilLate(connection) }
                }
                if let change {
                    group.addTask {
                        await change.signal.wait(after: change.seen)
                        closedContinuation.yield()
                    }
                }
                // The first loss (or change) ends them all.
                for await _ in closed { break }
                for connection in subscribed {
                    connection.close(because: RedisClientError(.connectionClosed, message: "key tracking is being set up again"))
                }
                group.cancelAll()
            }
        } onCancel: {
            for connection in subscribed {
                connection.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
            }
        }
    }

    /// `CLIENT ID`, `CLIENT TRACKING on REDIRECT <id> BCAST PREFIX ...`, `SUBSCRIBE`: closes the connection and
    /// throws unless each is accepted.
    private func setUpTracking(on connection: RedisConnection) async throws {
        do {
            guard let id = try await connection.send(["CLIENT", "ID"]).int64 else {
                throw RedisClientError(.unexpectedReply, message: "CLIENT ID did not return a number")
            }
            var tracking: [RedisArgument] = ["CLIENT", "TRACKING", "on", "REDIRECT", RedisArgument(Int(id)), "BCAST"]
            for prefix in self.prefixes {
                tracking += ["PREFIX", RedisArgument(prefix)]
            }
            if case .error(let message) = try await connection.send(tracking) {
                throw RedisClientError(.commandError, message: "CLIENT TRACKING was refused: \(message)")
            }
            let reply = try await connection.send(["SUBSCRIBE", RedisArgument(Self.channel)])
            guard reply.array?.first?.string == "subscribe" else {
                throw RedisClientError(.unexpectedReply, message: "unexpected reply to SUBSCRIBE: \(reply)")
            }
        } catch {
            connection.close(because: RedisClientError(.connectionClosed, message: "setting up key tracking failed"))
            throw error
        }
    }

    /// Sends `PING` every heartbeat; returns (after closing the connection) when one fails or is late.
    private func beatUntilLate(_ connection: RedisConnection) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: self.heartbeat)
                _ = try await connection.send(["PING"])
            } catch {
                if !Task.isCancelled {
                    connection.close(because: RedisClientError(.timeout, message: "the invalidation connection's heartbeat was late"))
                }
                return
            }
        }
    }

    /// `["message", "__redis__:invalidate", [key, ...]]`, or with a nil payload for a flush.
    static func invalidation(in message: RESPValue) -> RedisInvalidation? {
        guard case .array(let parts) = message, parts.count == 3, parts[0].string == "message", parts[1].string == Self.channel else {
            return nil
        }
        switch parts[2] {
        case .null:
            return .flushed
        case .array(let keys):
            return .keys(keys.compactMap(\.string))
        default:
            return nil
        }
    }
}
