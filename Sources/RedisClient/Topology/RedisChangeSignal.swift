import Synchronization

/// A counter that tasks can wait on: ``bump()`` wakes every task waiting for a value above the one it saw.
///
/// The reconnect loops wait on one to learn, without polling, that their target changed (a new master, a pool being
/// stopped) or that a refresh was asked for. Sendable: the counter and the waiters sit behind a lock.
final class RedisChangeSignal: Sendable {
    private struct State {
        var value: UInt64 = 0
        var nextWaiterID = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex<State>(State())

    init() {}

    /// The current value.
    var value: UInt64 {
        self.state.withLock { $0.value }
    }

    /// Increments the value and wakes every waiter.
    func bump() {
        let waiters = self.state.withLock { state in
            state.value += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume()
        }
    }

    /// Returns once the value is above `seen`, or when the task is cancelled.
    func wait(after seen: UInt64) async {
        let id = self.state.withLock { state -> Int? in
            guard state.value <= seen else { return nil }
            defer { state.nextWaiterID += 1 }
            return state.nextWaiterID
        }
        guard let id else { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = self.state.withLock { state -> Bool in
                    guard state.value <= seen, !Task.isCancelled else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                if !waiting {
                    continuation.resume()
                }
            }
        } onCancel: {
            self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns once the value is above `seen`, after `timeout`, or when the task is cancelled, whichever comes first.
    /// - Returns: Whether the value is above `seen`.
    @discardableResult
    func wait(after seen: UInt64, timeout: Duration) async -> Bool {
        if timeout > .zero {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.wait(after: seen) }
                group.addTask { try? await Task.sleep(for: timeout) }
                await group.next()
                group.cancelAll()
            }
        }
        return self.value > seen
    }
}
