import Logging
import NIOCore
import Synchronization

/// Knows which server is the master in Sentinel mode: asks the Sentinels in turn, checks the answer with `ROLE`, and
/// asks again whenever the master looks gone (a lost connection, `READONLY`, `MASTERDOWN`) or a Sentinel announces
/// `+switch-master` on the subscriber connection it keeps.
///
/// ``run()`` runs inside ``RedisClient/run()``; the pool's reconnect loops read ``current()`` and wait on ``changes``.
/// Sendable: configuration values, a lock-protected resolution and change signals.
final class RedisSentinelMonitor: Sendable {
    /// What the last resolution found.
    enum Resolution: Sendable, Equatable {
        /// Not asked yet.
        case pending
        /// A master that answered `ROLE` as master.
        case master(RedisClientConfiguration.Endpoint)
        /// No Sentinel named a reachable master.
        case unavailable(RedisClientError)

        static func == (lhs: Self, rhs: Self) -> Bool {
            switch (lhs, rhs) {
            case (.pending, .pending), (.unavailable, .unavailable): true
            case (.master(let left), .master(let right)): left == right
            default: false
            }
        }
    }

    private struct State {
        var resolution: Resolution = .pending
        /// The Sentinel to ask first: the last one whose answer was a master.
        var preferredSentinel = 0
    }

    let sentinel: RedisClientConfiguration.Sentinel
    private let configuration: RedisClientConfiguration
    private let tls: RedisTLSContext?
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let events: RedisTopologyEvents
    private let state = Mutex<State>(State())
    /// Bumped whenever ``current()`` would answer differently (a new master, or none).
    let changes = RedisChangeSignal()
    /// Bumped to ask for a new resolution.
    private let refreshRequests = RedisChangeSignal()

    init(
        sentinel: RedisClientConfiguration.Sentinel,
        configuration: RedisClientConfiguration,
        tls: RedisTLSContext?,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        events: RedisTopologyEvents
    ) {
        self.sentinel = sentinel
        self.configuration = configuration
        self.tls = tls
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.events = events
    }

    // MARK: Reading (pool loops)

    /// The master to connect to, with the value of ``changes`` it belongs to. Waits for the first resolution.
    /// - Throws: ``RedisClientError`` with code `notConnected` when no Sentinel named a reachable master; `shutdown`
    ///   when the task is cancelled before the first resolution.
    func current() async throws -> (endpoint: RedisClientConfiguration.Endpoint, generation: UInt64) {
        while true {
            let generation = self.changes.value
            switch self.state.withLock({ $0.resolution }) {
            case .master(let endpoint):
                return (endpoint, generation)
            case .unavailable(let error):
                throw error
            case .pending:
                await self.changes.wait(after: generation)
                if Task.isCancelled {
                    throw RedisClientError(.shutdown, message: "the Redis client is shutting down")
                }
            }
        }
    }

    /// The master found by the last resolution, if it found one.
    var knownMaster: RedisClientConfiguration.Endpoint? {
        if case .master(let endpoint) = self.state.withLock({ $0.resolution }) {
            return endpoint
        }
        return nil
    }

    /// The master looks gone (its connection was lost, it answered `READONLY`/`MASTERDOWN`, or it is not a master):
    /// ask the Sentinels again, soon.
    func masterLooksGone(_ reason: String) {
        self.logger.debug("Redis master looks gone; asking the Sentinels", metadata: ["redis.reason": "\(reason)"])
        self.refreshRequests.bump()
    }

    // MARK: Running

    /// Resolves the master and keeps the subscriber connection until the task is cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followSwitchMasterAnnouncements() }
            await self.resolveWhenAsked()
        }
    }

    /// Resolves at once, then again on every request (at most once per initial backoff), and after a failure with backoff.
    private func resolveWhenAsked() async {
        var failures = 0
        let minimumSpacing = max(self.configuration.reconnectBackoff.initial, .milliseconds(10))
        while !Task.isCancelled {
            let requests = self.refreshRequests.value
            let resolution: Resolution
            do {
                resolution = .master(try await self.resolve())
                failures = 0
            } catch {
                resolution = .unavailable(
                    error as? RedisClientError ?? RedisClientError(.notConnected, message: "no Redis master found", underlyingError: error)
                )
                failures += 1
            }
            if Task.isCancelled { break }
            self.publish(resolution)
            if failures == 0 {
                await self.refreshRequests.wait(after: requests)
            } else {
                await self.refreshRequests.wait(after: requests, timeout: self.configuration.reconnectBackoff.delay(afterFailures: failures))
            }
            try? await Task.sleep(for: minimumSpacing)
        }
    }

    private func publish(_ resolution: Resolution) {
        let previous = self.state.withLock { state in
            defer { state.resolution = resolution }
            return state.resolution
        }
        switch resolution {
        case .unavailable(let error):
            // Keep the latest reason, but only a change of state wakes the pool.
            if previous != resolution {
                self.logger.warning("No Redis master found through the Sentinels", metadata: ["redis.error": "\(error.message)"])
                self.changes.bump()
            }
        case .master(let endpoint):
            guard previous != resolution else { return }
            if case .master(let old) = previous {
                self.logger.notice("Redis master changed", metadata: ["redis.master": "\(endpoint)", "redis.previous": "\(old)"])
            } else {
                self.logger.info("Redis master found through the Sentinels", metadata: ["redis.master": "\(endpoint)"])
            }
            self.events.emit(.masterChanged, endpoint: endpoint)
            self.changes.bump()
        case .pending:
            break
        }
    }

    /// Asks each Sentinel in turn, the preferred one first, for the master's address, and checks it with `ROLE`.
    /// - Throws: ``RedisClientError`` with code `notConnected` listing what each Sentinel said.
    func resolve() async throws -> RedisClientConfiguration.Endpoint {
        let sentinels = self.sentinel.endpoints
        guard !sentinels.isEmpty else {
            throw RedisClientError(.invalidConfiguration, message: "Sentinel: the list of Sentinels is empty")
        }
        let first = self.state.withLock { $0.preferredSentinel } % sentinels.count
        var problems: [String] = []
        for offset in 0..<sentinels.count {
            let index = (first + offset) % sentinels.count
            do {
                let master = try await self.askForMaster(sentinels[index])
                try await self.checkIsMaster(master)
                self.state.withLock { $0.preferredSentinel = index }
                return master
            } catch {
                problems.append("\(sentinels[index]): \((error as? RedisClientError)?.message ?? "\(error)")")
            }
        }
        throw RedisClientError(
            .notConnected,
            message: "no Sentinel named a reachable master '\(self.sentinel.masterName)' (\(problems.joined(separator: "; ")))"
        )
    }

    /// `SENTINEL get-master-addr-by-name` on one Sentinel.
    private func askForMaster(_ sentinelEndpoint: RedisClientConfiguration.Endpoint) async throws -> RedisClientConfiguration.Endpoint {
        let connection = try await self.connectToSentinel(sentinelEndpoint)
        defer { connection.close(because: RedisClientError(.connectionClosed, message: "the Sentinel query is done")) }
        let reply = try await connection.send(["SENTINEL", "get-master-addr-by-name", RedisArgument(self.sentinel.masterName)])
        if case .error(let message) = reply {
            throw RedisClientError(.commandError, message: message)
        }
        guard case .array(let parts) = reply, parts.count == 2, let host = parts[0].string, let portText = parts[1].string,
            let port = Int(portText)
        else {
            if reply.isNull {
                throw RedisClientError(.unexpectedReply, message: "it does not monitor a master named '\(self.sentinel.masterName)'")
            }
            throw RedisClient.unexpected(reply, for: "SENTINEL get-master-addr-by-name")
        }
        return .tcp(host: host, port: port)
    }

    /// Connects to `master` as a data connection would, with `ROLE` instead of `PING`, and closes again.
    private func checkIsMaster(_ master: RedisClientConfiguration.Endpoint) async throws {
        let connection = try await RedisConnection.connect(
            to: master,
            handshake: RedisConnection.Handshake(configuration: self.configuration, requiresMaster: true),
            tls: self.tls,
            connectTimeout: TimeAmount(self.configuration.connectTimeout),
            commandTimeout: TimeAmount(self.configuration.commandTimeout),
            eventLoop: self.eventLoopGroup.next(),
            logger: self.logger
        )
        connection.close(because: RedisClientError(.connectionClosed, message: "the master check is done"))
    }

    private func connectToSentinel(
        _ endpoint: RedisClientConfiguration.Endpoint,
        pushHandler: RedisChannelHandler.PushHandler? = nil
    ) async throws -> RedisConnection {
        try await RedisConnection.connect(
            to: endpoint,
            handshake: RedisConnection.Handshake(username: self.sentinel.username, password: self.sentinel.password),
            tls: self.tls,
            connectTimeout: TimeAmount(self.configuration.connectTimeout),
            commandTimeout: TimeAmount(self.configuration.commandTimeout),
            eventLoop: self.eventLoopGroup.next(),
            logger: self.logger,
            pushHandler: pushHandler
        )
    }

    // MARK: +switch-master

    /// Keeps one connection to a Sentinel (the next one after a failure) subscribed to `+switch-master`; a message
    /// for this master, and every new subscription (a switch may have been missed meanwhile), asks for a resolution.
    private func followSwitchMasterAnnouncements() async {
        let sentinels = self.sentinel.endpoints
        guard !sentinels.isEmpty else { return }
        var index = 0
        var failures = 0
        while !Task.isCancelled {
            let endpoint = sentinels[index % sentinels.count]
            do {
                let (messages, continuation) = AsyncStream.makeStream(of: RESPValue.self)
                let connection = try await self.connectToSentinel(endpoint) { continuation.yield($0) }
                connection.closeFuture.whenComplete { _ in continuation.finish() }
                let reply = try await connection.send(["SUBSCRIBE", "+switch-master"])
                guard reply.array?.first?.string == "subscribe" else {
                    connection.close(because: RedisClientError(.unexpectedReply, message: "unexpected reply to SUBSCRIBE"))
                    throw RedisClientError(.unexpectedReply, message: "unexpected reply to SUBSCRIBE: \(reply)")
                }
                failures = 0
                self.logger.debug("Subscribed to +switch-master", metadata: ["redis.sentinel": "\(endpoint)"])
                self.refreshRequests.bump()
                await withTaskCancellationHandler {
                    for await message in messages {
                        self.switchMasterReceived(message)
                    }
                } onCancel: {
                    connection.close(because: RedisClientError(.connectionClosed, message: "the Redis client is shutting down"))
                }
            } catch {
                failures += 1
                self.logger.debug("No +switch-master subscription", metadata: ["redis.sentinel": "\(endpoint)", "redis.error": "\(error)"])
            }
            index += 1
            try? await Task.sleep(for: max(self.configuration.reconnectBackoff.delay(afterFailures: failures), .milliseconds(10)))
        }
    }

    /// `["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]`.
    private func switchMasterReceived(_ message: RESPValue) {
        guard case .array(let parts) = message, parts.count == 3, let payload = parts[2].string else { return }
        let words = payload.split(separator: " ")
        guard words.first.map(String.init) == self.sentinel.masterName else { return }
        self.logger.info("A Sentinel announced a new Redis master", metadata: ["redis.switch": "\(payload)"])
        self.refreshRequests.bump()
    }
}
