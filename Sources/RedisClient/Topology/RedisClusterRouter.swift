import Logging
import NIOCore
import Synchronization

/// Redis Cluster mode: keeps the slot map and one pipelined connection (a one-slot ``RedisConnectionPool``, or
/// ``RedisClientConfiguration/connectionCount`` of them) per primary, and sends each command to the primary of its
/// keys' slot, following `MOVED` and `ASK` and retrying `TRYAGAIN` and `CLUSTERDOWN` within the command's deadline.
///
/// ``run()`` runs inside ``RedisClient/run()``: it refreshes the map (at start-up, after `MOVED`, when a node's
/// connection is lost, and every 100 ms while a slot's primary is unreachable) and runs the nodes' reconnect loops.
/// Sendable: configuration values, a lock-protected map and node table, and change signals.
final class RedisClusterRouter: Sendable {
    private struct State {
        /// `nil` until the first refresh succeeds.
        var map: RedisClusterSlotMap?
        /// Why the last refresh failed, while there is no map yet.
        var mapError: RedisClientError?
        var nodes: [RedisClientConfiguration.Endpoint: RedisConnectionPool] = [:]
        var nextEventLoop = 0
        var finished = false
    }

    private let configuration: RedisClientConfiguration
    private let seeds: [RedisClientConfiguration.Endpoint]
    private let tls: RedisTLSContext?
    private let eventLoops: [any EventLoop]
    private let logger: Logger
    private let events: RedisTopologyEvents
    private let state = Mutex<State>(State())
    private let refreshRequests = RedisChangeSignal()
    /// Bumped after every refresh attempt, for commands waiting for the first map.
    private let refreshes = RedisChangeSignal()
    /// Bumped whenever the slot map changes (what ``primaries()`` answers), for the invalidation listener.
    let mapChanges = RedisChangeSignal()
    /// Node pools created since, for ``run()`` to start their reconnect loops.
    private let newNodes: AsyncStream<RedisConnectionPool>
    private let newNodesContinuation: AsyncStream<RedisConnectionPool>.Continuation
    /// How long a command waits for the first map.
    private let firstMapWait: Duration
    /// How often the map is read while a slot has no reachable primary (a failover is under way).
    static let degradedRefreshInterval = Duration.milliseconds(100)
    /// At most this many redirects per command.
    static let maximumRedirects = 16

    init(
        configuration: RedisClientConfiguration,
        seeds: [RedisClientConfiguration.Endpoint],
        tls: RedisTLSContext?,
        eventLoops: [any EventLoop],
        logger: Logger,
        events: RedisTopologyEvents
    ) {
        self.configuration = configuration
        self.seeds = seeds
        self.tls = tls
        self.eventLoops = eventLoops
        self.logger = logger
        self.events = events
        (self.newNodes, self.newNodesContinuation) = AsyncStream.makeStream(of: RedisConnectionPool.self)
        self.firstMapWait = configuration.connectTimeout * (configuration.tls == nil ? 2 : 3)
    }

    /// The primaries of the current slot map, with the value of ``mapChanges`` they belong to; waits for the first
    /// map (at most as long as a command would).
    /// - Throws: ``RedisClientError`` with code `notConnected` when there is no map yet.
    func primaries() async throws -> (endpoints: [RedisClientConfiguration.Endpoint], generation: UInt64) {
        let seen = self.refreshes.value
        let generation = self.mapChanges.value
        if let primaries = self.state.withLock({ $0.map?.primaries }) { return (primaries, generation) }
        await self.refreshes.wait(after: seen, timeout: self.firstMapWait)
        guard let primaries = self.state.withLock({ $0.map?.primaries }) else {
            throw RedisClientError(.notConnected, message: "no Redis Cluster slot map yet")
        }
        return (primaries, self.mapChanges.value)
    }

    // MARK: Running

    /// Reads the map and keeps it and the nodes' connections up until the task is cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.refreshWhenAsked() }
            for await pool in self.newNodes {
                group.addTask { await pool.run() }
            }
        }
        let pools = self.state.withLock { state in
            state.finished = true
            defer { state.nodes = [:] }
            return Array(state.nodes.values)
        }
        for pool in pools {
            pool.stop()
        }
        self.refreshes.bump()
    }

    /// Asks for a new map soon.
    func requestRefresh() {
        self.refreshRequests.bump()
    }

    private func refreshWhenAsked() async {
        var failures = 0
        while !Task.isCancelled {
            let requested = self.refreshRequests.value
            do {
                try await self.refresh()
                failures = 0
            } catch {
                failures += 1
                let error =
                    error as? RedisClientError ?? RedisClientError(.notConnected, message: "could not read the cluster map", underlyingError: error)
                let hasMap = self.state.withLock { state in
                    if state.map == nil { state.mapError = error }
                    return state.map != nil
                }
                self.logger.log(
                    level: failures == 1 ? .warning : .debug,
                    "Could not read the Redis Cluster slot map",
                    metadata: ["redis.error": "\(error.message)", "redis.hasMap": "\(hasMap)"]
                )
            }
            self.refreshes.bump()
            if Task.isCancelled { break }
            if failures > 0 {
                await self.refreshRequests.wait(after: requested, timeout: self.configuration.reconnectBackoff.delay(afterFailures: failures))
            } else if self.isDegraded {
                await self.refreshRequests.wait(after: requested, timeout: Self.degradedRefreshInterval)
            } else {
                await self.refreshRequests.wait(after: requested)
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Whether a slot has no primary, or a primary's connection is down.
    private var isDegraded: Bool {
        self.state.withLock { state in
            guard let map = state.map, map.unassignedSlotCount == 0 else { return true }
            return map.primaries.contains { endpoint in
                guard let pool = state.nodes[endpoint] else { return true }
                return !pool.slots.allSatisfy {
                    if case .connected = $0.lookup() { return true }
                    return false
                }
            }
        }
    }

    /// Reads `CLUSTER SLOTS` from a node: a connected one first, else the seeds and the other known nodes in turn.
    private func refresh() async throws {
        var problems: [String] = []
        let (connected, known) = self.state.withLock { state -> ([RedisConnectionPool], [RedisClientConfiguration.Endpoint]) in
            let pools = state.nodes.values.filter { pool in
                if case .connected = pool.slots[0].lookup() { return true }
                return false
            }
            return (pools.shuffled(), Array(state.nodes.keys))
        }
        for pool in connected {
            guard case .connected(let connection) = pool.slots[0].lookup(), case .fixed(let endpoint) = pool.target else { continue }
            do {
                try self.install(try await Self.readMap(from: connection, endpoint: endpoint))
                return
            } catch {
                problems.append("\(endpoint): \(error)")
            }
        }
        var candidates = self.seeds
        for endpoint in known where !candidates.contains(endpoint) {
            candidates.append(endpoint)
        }
        for endpoint in candidates {
            do {
                let connection = try await RedisConnection.connect(
                    to: endpoint,
                    handshake: RedisConnection.Handshake(username: self.configuration.username, password: self.configuration.password),
                    tls: self.tls,
                    connectTimeout: TimeAmount(self.configuration.connectTimeout),
                    commandTimeout: TimeAmount(self.configuration.commandTimeout),
                    eventLoop: self.eventLoops[0],
                    logger: self.logger
                )
                defer { connection.close(because: RedisClientError(.connectionClosed, message: "the cluster map was read")) }
                try self.install(try await Self.readMap(from: connection, endpoint: endpoint))
                return
            } catch {
                problems.append("\(endpoint): \((error as? RedisClientError)?.message ?? "\(error)")")
            }
        }
        throw RedisClientError(.notConnected, message: "no Redis Cluster node answered CLUSTER SLOTS (\(problems.joined(separator: "; ")))")
    }

    private static func readMap(from connection: RedisConnection, endpoint: RedisClientConfiguration.Endpoint) async throws -> RedisClusterSlotMap {
        let reply = try await connection.send(["CLUSTER", "SLOTS"])
        if case .error(let message) = reply {
            throw RedisClientError(.commandError, message: message)
        }
        let host: String =
            switch endpoint.base {
            case .tcp(let host, _): host
            case .unixSocket: "127.0.0.1"
            }
        let map = try RedisClusterSlotMap(clusterSlotsReply: reply, host: host)
        guard !map.primaries.isEmpty else {
            throw RedisClientError(.unexpectedReply, message: "CLUSTER SLOTS names no primary")
        }
        return map
    }

    /// Makes `map` current: creates pools for new primaries and stops those of nodes that are no longer primaries.
    private func install(_ map: RedisClusterSlotMap) throws(RedisClientError) {
        let (changed, removed) = self.state.withLock { state -> (Bool, [RedisConnectionPool]) in
            let changed = state.map != map
            state.map = map
            state.mapError = nil
            for endpoint in map.primaries {
                _ = self.pool(for: endpoint, in: &state)
            }
            var removed: [RedisConnectionPool] = []
            for (endpoint, pool) in state.nodes where !map.primaries.contains(endpoint) {
                removed.append(pool)
                state.nodes[endpoint] = nil
            }
            return (changed, removed)
        }
        for pool in removed {
            pool.stop()
        }
        if changed {
            self.logger.info(
                "Redis Cluster slot map",
                metadata: [
                    "redis.primaries": "\(map.primaries.map(\.description).joined(separator: ","))", "redis.unassigned": "\(map.unassignedSlotCount)",
                ]
            )
            self.mapChanges.bump()
            self.events.emit(.clusterMapChanged, endpoint: nil)
        }
    }

    /// The pool of `endpoint`, created (and handed to ``run()``) if there is none. Call with the lock held.
    private func pool(for endpoint: RedisClientConfiguration.Endpoint, in state: inout State) -> RedisConnectionPool {
        if let pool = state.nodes[endpoint] {
            return pool
        }
        let eventLoop = self.eventLoops[state.nextEventLoop % self.eventLoops.count]
        state.nextEventLoop += 1
        let pool = RedisConnectionPool(
            target: .fixed(endpoint),
            configuration: self.configuration,
            eventLoops: [eventLoop],
            connectionCount: self.configuration.connectionCount ?? 1,
            tls: self.tls,
            logger: self.logger,
            events: self.events,
            connectionLost: { [weak self] _ in self?.requestRefresh() }
        )
        state.nodes[endpoint] = pool
        self.newNodesContinuation.yield(pool)
        return pool
    }

    // MARK: Routing

    /// Where a batch goes on its next attempt.
    private enum Target {
        case route(RedisCommandRoute)
        case node(RedisClientConfiguration.Endpoint)
    }

    /// The pool for `target`, waiting for the first map if there is none yet.
    /// - Throws: ``RedisClientError``: `notConnected` when the slot has no primary or there is no map, `shutdown`
    ///   when the client stopped.
    private func pool(for target: Target) async throws -> RedisConnectionPool {
        let seen = self.refreshes.value
        if let pool = try self.lookUpPool(for: target) {
            return pool
        }
        await self.refreshes.wait(after: seen, timeout: self.firstMapWait)
        if let pool = try self.lookUpPool(for: target) {
            return pool
        }
        let reason = self.state.withLock { $0.mapError?.message } ?? "the first attempt did not finish within the connect timeout"
        throw RedisClientError(.notConnected, message: "no Redis Cluster slot map yet: \(reason)")
    }

    /// The pool for `target`; `nil` when there is no map yet.
    private func lookUpPool(for target: Target) throws(RedisClientError) -> RedisConnectionPool? {
        try self.state.withLock { state throws(RedisClientError) -> RedisConnectionPool? in
            if state.finished {
                throw RedisConnectionSlot.shutdownError
            }
            switch target {
            case .node(let endpoint):
                return self.pool(for: endpoint, in: &state)
            case .route(let route):
                guard let map = state.map else { return nil }
                switch route {
                case .slot(let slot):
                    guard let endpoint = map.primary(forSlot: slot) else {
                        throw RedisClientError(.notConnected, message: "no Redis Cluster primary serves slot \(slot) right now")
                    }
                    return self.pool(for: endpoint, in: &state)
                case .anyNode, .allPrimaries:
                    let connected = map.primaries.compactMap { state.nodes[$0] }.filter { pool in
                        if case .connected = pool.slots[0].lookup() { return true }
                        return false
                    }
                    guard
                        let endpoint = connected.randomElement().flatMap({ pool -> RedisClientConfiguration.Endpoint? in
                            if case .fixed(let endpoint) = pool.target { return endpoint }
                            return nil
                        }) ?? map.primaries.randomElement()
                    else {
                        throw RedisClientError(.notConnected, message: "the Redis Cluster slot map names no primary")
                    }
                    return self.pool(for: endpoint, in: &state)
                }
            }
        }
    }

    /// Runs `body` once for each primary of the current map, in turn, with a way to send commands to that node
    /// alone: for keyless commands that see one node's data (`SCAN`). Error replies come back as replies.
    func forEachPrimary(_ body: (_ send: ([RedisArgument]) async throws -> RESPValue) async throws -> Void) async throws {
        for pool in try await self.primaryPools() {
            try await body { command in try await pool.connection().send(command) }
        }
    }

    /// Every primary's pool, waiting for the first map if there is none yet.
    private func primaryPools() async throws -> [RedisConnectionPool] {
        _ = try await self.pool(for: .route(.anyNode))
        return try self.state.withLock { state throws(RedisClientError) -> [RedisConnectionPool] in
            guard let map = state.map else { throw RedisClientError(.notConnected, message: "no Redis Cluster slot map yet") }
            return map.primaries.map { self.pool(for: $0, in: &state) }
        }
    }

    private func endpoint(of pool: RedisConnectionPool) -> RedisClientConfiguration.Endpoint? {
        if case .fixed(let endpoint) = pool.target { return endpoint }
        return nil
    }

    private static func host(of endpoint: RedisClientConfiguration.Endpoint?) -> String {
        switch endpoint?.base {
        case .tcp(let host, _): host
        default: ""
        }
    }

    // MARK: Sending

    /// Sends `commands` in one write to the node their route names and returns their replies, following redirects.
    ///
    /// All replies are checked: a `MOVED`, `ASK`, `TRYAGAIN` or `CLUSTERDOWN` anywhere means the node ran none of
    /// the keyed commands (they all share one slot), so the whole batch is sent again: to the new owner (map updated,
    /// refresh asked for), with `ASKING` in front to the importing node, or after a short wait. Redirects are followed
    /// only before the deadline (the command timeout plus `extraTimeout`), at most ``maximumRedirects`` times; then
    /// the last replies are returned as they are.
    /// - Throws: ``RedisClientError`` as the pool's connections do (`notConnected` at once when the slot's primary is
    ///   down), or `shutdown`.
    func execute(_ commands: [[RedisArgument]], route: RedisCommandRoute, extraTimeout: Duration = .zero) async throws -> [RESPValue] {
        if case .allPrimaries = route {
            return try await self.broadcast(commands, extraTimeout: extraTimeout)
        }
        let clock = ContinuousClock()
        let deadline = clock.now + self.configuration.commandTimeout + extraTimeout
        var target = Target.route(route)
        var asking = false
        var retriedAfterShutdown = false
        var pause = Duration.milliseconds(5)
        var replies: [RESPValue] = []
        for _ in 0...Self.maximumRedirects {
            let pool = try await self.pool(for: target)
            let connection: RedisConnection
            do {
                connection = try await pool.connection()
            } catch let error as RedisClientError where error.code == .shutdown && !retriedAfterShutdown {
                // The node was dropped from the map between the look-up and now: route again, once.
                retriedAfterShutdown = true
                target = .route(route)
                continue
            }
            let batch = asking ? [["ASKING"]] + commands : commands
            let received = try await connection.pipeline(batch, timeout: connection.commandTimeout + TimeAmount(extraTimeout))
            replies = asking ? Array(received.dropFirst()) : received
            asking = false
            let host = Self.host(of: self.endpoint(of: pool))
            guard let redirect = replies.lazy.compactMap({ $0.errorMessage.flatMap { RedisClusterRedirect($0, host: host) } }).first,
                clock.now < deadline
            else {
                return replies
            }
            switch redirect {
            case .moved(let slot, let endpoint):
                let changed = self.state.withLock { state -> Bool in
                    _ = self.pool(for: endpoint, in: &state)
                    guard var map = state.map, map.primary(forSlot: slot) != endpoint else { return false }
                    map.assign(slot: slot, to: endpoint)
                    state.map = map
                    return true
                }
                if changed {
                    self.mapChanges.bump()
                    self.events.emit(.clusterMapChanged, endpoint: endpoint)
                }
                self.requestRefresh()
                target = .node(endpoint)
            case .ask(_, let endpoint):
                target = .node(endpoint)
                asking = true
            case .tryAgain, .clusterDown:
                if case .clusterDown = redirect {
                    self.requestRefresh()
                }
                let left = deadline - clock.now
                guard left > .zero else { return replies }
                try? await Task.sleep(for: min(pause, left))
                pause = min(pause * 2, .milliseconds(100))
                target = .route(route)
            }
        }
        return replies
    }

    /// Sends `commands` to every primary; returns the first primary's replies, or throws the first failure.
    private func broadcast(_ commands: [[RedisArgument]], extraTimeout: Duration) async throws -> [RESPValue] {
        let pools = try await self.primaryPools()
        return try await withThrowingTaskGroup(of: (Int, [RESPValue]).self) { group in
            for (index, pool) in pools.enumerated() {
                group.addTask {
                    let connection = try await pool.connection()
                    return (index, try await connection.pipeline(commands, timeout: connection.commandTimeout + TimeAmount(extraTimeout)))
                }
            }
            var results: [Int: [RESPValue]] = [:]
            for try await (index, replies) in group {
                results[index] = replies
            }
            let all = (0..<pools.count).compactMap { results[$0] }
            // An error reply from any node counts: a script that did not load everywhere is not loaded.
            return all.first { replies in replies.contains { $0.errorMessage != nil } } ?? all.first ?? []
        }
    }

    /// Sends independent commands (``RedisClient/pipeline(_:)``): grouped by node, one write per node, all nodes at
    /// once; a command that gets a redirect is sent again on its own through ``execute(_:route:extraTimeout:)``. A
    /// command whose own keys span slots is not sent: its reply is a `CROSSSLOT` error.
    func pipeline(_ commands: [[RedisArgument]]) async throws -> [RESPValue] {
        var replies = [RESPValue?](repeating: nil, count: commands.count)
        var routes: [RedisCommandRoute?] = []
        var groups: [ObjectIdentifier: (pool: RedisConnectionPool, indexes: [Int])] = [:]
        for (index, command) in commands.enumerated() {
            do {
                let route = try RedisCommandRoute.of(command)
                routes.append(route)
                let pool = try await self.pool(for: .route(route == .allPrimaries ? .anyNode : route))
                groups[ObjectIdentifier(pool), default: (pool, [])].indexes.append(index)
            } catch let error as RedisClientError where error.code == .crossSlot {
                routes.append(nil)
                replies[index] = .error(error.message)
            }
        }
        let sent = try await withThrowingTaskGroup(of: [(Int, RESPValue)].self) { group in
            for (pool, indexes) in groups.values {
                group.addTask {
                    let connection = try await pool.connection()
                    let received = try await connection.pipeline(indexes.map { commands[$0] })
                    return Array(zip(indexes, received))
                }
            }
            return try await group.reduce(into: [(Int, RESPValue)]()) { $0.append(contentsOf: $1) }
        }
        for (index, reply) in sent {
            replies[index] = reply
        }
        for index in replies.indices {
            guard let message = replies[index]?.errorMessage, RedisClusterRedirect(message, host: "") != nil, let route = routes[index] else {
                continue
            }
            replies[index] = try await self.execute([commands[index]], route: route).first
        }
        return replies.map { $0 ?? .null }
    }
}
