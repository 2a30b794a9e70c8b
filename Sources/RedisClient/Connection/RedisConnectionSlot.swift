import NIOCore
import Synchronization

/// One place in the client's pool: an event loop, and the connection to Redis on it while one is up.
///
/// ``RedisClient/run()`` drives each slot's connect/reconnect loop; commands read the slot to find a connection.
/// Commands issued before the slot's first connect attempt has finished wait for it (bounded); once a connection is
/// known to be down they fail at once.
final class RedisConnectionSlot: Sendable {
    /// What a command finds when it looks at the slot.
    enum Lookup {
        case connected(RedisConnection)
        /// The first connect attempt has not finished: wait with ``waitForFirstConnection(timeout:)``.
        case starting
        /// Down, for this reason.
        case unavailable(RedisClientError)
    }

    private struct Waiter {
        var continuation: CheckedContinuation<RedisConnection, any Error>
        var deadline: NIODeadline
    }

    /// Commands waiting for the first connect attempt, and the one timer that fails those whose wait is over.
    ///
    /// One timer per slot rather than one per waiter: thousands of commands may be issued at start-up, and
    /// scheduling and cancelling a timer for each would cost more than the commands themselves.
    private struct Starting {
        var waiters: [Int: Waiter] = [:]
        var nextWaiterID = 0
        var timer: Scheduled<Void>?
        var timerDeadline: NIODeadline?
    }

    private enum State {
        case starting(Starting)
        case connected(RedisConnection)
        case disconnected(RedisClientError)
        case shutdown
    }

    let index: Int
    let eventLoop: any EventLoop
    private let state = Mutex<State>(.starting(Starting()))

    init(index: Int, eventLoop: any EventLoop) {
        self.index = index
        self.eventLoop = eventLoop
    }

    /// The slot's current connection, or why there is none.
    func lookup() -> Lookup {
        self.state.withLock { state in
            switch state {
            case .connected(let connection): .connected(connection)
            case .starting: .starting
            case .disconnected(let error): .unavailable(error)
            case .shutdown: .unavailable(Self.shutdownError)
            }
        }
    }

    /// Waits until the first connect attempt finishes, at most `timeout`.
    /// - Throws: ``RedisClientError`` with code `notConnected` when the attempt failed or took too long, `shutdown` when
    ///   the client stopped, or `CancellationError` when the task is cancelled.
    func waitForFirstConnection(timeout: TimeAmount) async throws -> RedisConnection {
        let deadline = NIODeadline.now() + timeout
        let id = self.state.withLock { state -> Int? in
            guard case .starting(var starting) = state else { return nil }
            let id = starting.nextWaiterID
            starting.nextWaiterID += 1
            state = .starting(starting)
            return id
        }
        guard let id else {
            // The first attempt finished meanwhile.
            return try self.connectionOrNotConnectedError()
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let registered = self.state.withLock { state -> Bool in
                    guard case .starting(var starting) = state else { return false }
                    starting.waiters[id] = Waiter(continuation: continuation, deadline: deadline)
                    if starting.timerDeadline.map({ deadline < $0 }) ?? true {
                        starting.timer?.cancel()
                        starting.timer = self.scheduleWaiterTimer(at: deadline)
                        starting.timerDeadline = deadline
                    }
                    state = .starting(starting)
                    return true
                }
                if !registered {
                    continuation.resume(with: Result { try self.connectionOrNotConnectedError() })
                }
            }
        } onCancel: {
            let waiter = self.state.withLock { state -> Waiter? in
                guard case .starting(var starting) = state, let waiter = starting.waiters.removeValue(forKey: id) else { return nil }
                state = .starting(starting)
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func scheduleWaiterTimer(at deadline: NIODeadline) -> Scheduled<Void> {
        self.eventLoop.scheduleTask(deadline: deadline) { () -> Void in
            self.waiterTimerFired()
        }
    }

    /// Fails the waiters whose wait is over and re-arms the timer for the others.
    private func waiterTimerFired() {
        let now = NIODeadline.now()
        let expired = self.state.withLock { state -> [Waiter] in
            guard case .starting(var starting) = state else { return [] }
            var expired: [Waiter] = []
            var earliest: NIODeadline?
            for (id, waiter) in starting.waiters {
                if waiter.deadline <= now {
                    expired.append(waiter)
                    starting.waiters[id] = nil
                } else {
                    earliest = min(earliest ?? waiter.deadline, waiter.deadline)
                }
            }
            starting.timer = earliest.map { self.scheduleWaiterTimer(at: $0) }
            starting.timerDeadline = earliest
            state = .starting(starting)
            return expired
        }
        let error = RedisClientError(.notConnected, message: "the first connection to Redis was not up within the connect timeout")
        for waiter in expired {
            waiter.continuation.resume(throwing: error)
        }
    }

    // MARK: Transitions driven by RedisClient.run()

    /// A connection is up and has completed its handshake; waiting commands get it.
    func connectionEstablished(_ connection: RedisConnection) {
        let waiters = self.state.withLock { state -> [Waiter] in
            switch state {
            case .starting(let starting):
                starting.timer?.cancel()
                state = .connected(connection)
                return Array(starting.waiters.values)
            case .disconnected, .connected:
                state = .connected(connection)
                return []
            case .shutdown:
                return []
            }
        }
        for waiter in waiters {
            waiter.continuation.resume(returning: connection)
        }
    }

    /// A connect attempt failed, or the connection closed: commands fail at once until the next connection is up.
    func connectionUnavailable(_ error: RedisClientError) {
        let waiters = self.state.withLock { state -> [Waiter] in
            switch state {
            case .starting(let starting):
                starting.timer?.cancel()
                state = .disconnected(error)
                return Array(starting.waiters.values)
            case .connected, .disconnected:
                state = .disconnected(error)
                return []
            case .shutdown:
                return []
            }
        }
        let notConnected = RedisClientError(.notConnected, message: "not connected to Redis: \(error.message)", underlyingError: error)
        for waiter in waiters {
            waiter.continuation.resume(throwing: notConnected)
        }
    }

    /// The client stopped: commands fail with `shutdown` from now on. Returns the connection that was up, if any.
    func shutDown() -> RedisConnection? {
        let (waiters, connection) = self.state.withLock { state -> ([Waiter], RedisConnection?) in
            defer { state = .shutdown }
            switch state {
            case .starting(let starting):
                starting.timer?.cancel()
                return (Array(starting.waiters.values), nil)
            case .connected(let connection): return ([], connection)
            case .disconnected, .shutdown: return ([], nil)
            }
        }
        for waiter in waiters {
            waiter.continuation.resume(throwing: Self.shutdownError)
        }
        return connection
    }

    // MARK: Helpers

    private func connectionOrNotConnectedError() throws -> RedisConnection {
        switch self.lookup() {
        case .connected(let connection):
            return connection
        case .unavailable(let error) where error.code == .shutdown:
            throw error
        case .unavailable(let error):
            throw RedisClientError(.notConnected, message: "not connected to Redis: \(error.message)", underlyingError: error)
        case .starting:
            throw RedisClientError(.notConnected, message: "not connected to Redis")
        }
    }

    static let shutdownError = RedisClientError(.shutdown, message: "the Redis client is not running")
}
