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
        var timeout: Scheduled<Void>?
    }

    private enum State {
        case starting(waiters: [Int: Waiter], nextWaiterID: Int)
        case connected(RedisConnection)
        case disconnected(RedisClientError)
        case shutdown
    }

    let index: Int
    let eventLoop: any EventLoop
    private let state = Mutex<State>(.starting(waiters: [:], nextWaiterID: 0))

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
        let id = self.state.withLock { state -> Int? in
            guard case .starting(let waiters, let nextWaiterID) = state else { return nil }
            state = .starting(waiters: waiters, nextWaiterID: nextWaiterID + 1)
            return nextWaiterID
        }
        guard let id else {
            // The first attempt finished meanwhile.
            switch self.lookup() {
            case .connected(let connection): return connection
            case .starting, .unavailable(_): throw self.notConnectedError()
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let registered = self.state.withLock { state -> Bool in
                    guard case .starting(var waiters, let nextWaiterID) = state else { return false }
                    waiters[id] = Waiter(continuation: continuation, timeout: nil)
                    state = .starting(waiters: waiters, nextWaiterID: nextWaiterID)
                    return true
                }
                guard registered else {
                    switch self.lookup() {
                    case .connected(let connection): continuation.resume(returning: connection)
                    case .starting, .unavailable(_): continuation.resume(throwing: self.notConnectedError())
                    }
                    return
                }
                let timeoutTask = self.eventLoop.scheduleTask(in: timeout) { () -> Void in
                    let error = RedisClientError(.notConnected, message: "the first connection to Redis was not up within the connect timeout")
                    self.removeWaiter(id)?.resume(throwing: error)
                }
                let stillWaiting = self.state.withLock { state -> Bool in
                    guard case .starting(var waiters, let nextWaiterID) = state, waiters[id] != nil else { return false }
                    waiters[id]?.timeout = timeoutTask
                    state = .starting(waiters: waiters, nextWaiterID: nextWaiterID)
                    return true
                }
                if !stillWaiting {
                    timeoutTask.cancel()
                }
            }
        } onCancel: {
            self.removeWaiter(id)?.resume(throwing: CancellationError())
        }
    }

    // MARK: Transitions driven by RedisClient.run()

    /// A connection is up and has completed its handshake; waiting commands get it.
    func connectionEstablished(_ connection: RedisConnection) {
        let waiters = self.state.withLock { state -> [Waiter] in
            switch state {
            case .starting(let waiters, _):
                state = .connected(connection)
                return Array(waiters.values)
            case .disconnected, .connected:
                state = .connected(connection)
                return []
            case .shutdown:
                return []
            }
        }
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(returning: connection)
        }
    }

    /// A connect attempt failed, or the connection closed: commands fail at once until the next connection is up.
    func connectionUnavailable(_ error: RedisClientError) {
        let waiters = self.state.withLock { state -> [Waiter] in
            switch state {
            case .starting(let waiters, _):
                state = .disconnected(error)
                return Array(waiters.values)
            case .connected, .disconnected:
                state = .disconnected(error)
                return []
            case .shutdown:
                return []
            }
        }
        let notConnected = RedisClientError(.notConnected, message: "not connected to Redis: \(error.message)", underlyingError: error)
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(throwing: notConnected)
        }
    }

    /// The client stopped: commands fail with `shutdown` from now on. Returns the connection that was up, if any.
    func shutDown() -> RedisConnection? {
        let (waiters, connection) = self.state.withLock { state -> ([Waiter], RedisConnection?) in
            defer { state = .shutdown }
            switch state {
            case .starting(let waiters, _): return (Array(waiters.values), nil)
            case .connected(let connection): return ([], connection)
            case .disconnected, .shutdown: return ([], nil)
            }
        }
        for waiter in waiters {
            waiter.timeout?.cancel()
            waiter.continuation.resume(throwing: Self.shutdownError)
        }
        return connection
    }

    // MARK: Helpers

    private func removeWaiter(_ id: Int) -> CheckedContinuation<RedisConnection, any Error>? {
        let waiter = self.state.withLock { state -> Waiter? in
            guard case .starting(var waiters, let nextWaiterID) = state, let waiter = waiters.removeValue(forKey: id) else { return nil }
            state = .starting(waiters: waiters, nextWaiterID: nextWaiterID)
            return waiter
        }
        waiter?.timeout?.cancel()
        return waiter?.continuation
    }

    private func notConnectedError() -> RedisClientError {
        switch self.lookup() {
        case .unavailable(let error) where error.code == .shutdown:
            return error
        case .unavailable(let error):
            return RedisClientError(.notConnected, message: "not connected to Redis: \(error.message)", underlyingError: error)
        case .connected, .starting:
            return RedisClientError(.notConnected, message: "not connected to Redis")
        }
    }

    static let shutdownError = RedisClientError(.shutdown, message: "the Redis client is not running")
}
