import Synchronization

/// How many failed logins are allowed in a sliding window, per account and per client address.
package struct ThrottleLimits: Sendable, Equatable {
    /// Failures of one account (normalised email) in the window; 0: no limit.
    package var perAccount: Int
    /// Failures from one client address in the window; 0: no limit.
    package var perAddress: Int
    package var windowSeconds: Int

    package init(perAccount: Int, perAddress: Int, windowSeconds: Int) {
        self.perAccount = perAccount
        self.perAddress = perAddress
        self.windowSeconds = windowSeconds
    }
}

/// Counts failed logins, per account and per client address, in a sliding window, and says when a login
/// must wait: shared by every process through Redis (`RedisLoginThrottle`), or per process (`MemoryLoginThrottle`)
/// in the modes without Redis. Asked before any password hashing, so a guessing run costs the server nothing.
package protocol LoginThrottle: Sendable {
    /// Seconds until a login for `account` from `address` may be tried; `nil` when it may be now.
    func retryAfter(account: String, address: String?) async throws -> Int?
    /// A login for `account` from `address` failed (unknown email or wrong password).
    func recordFailure(account: String, address: String?) async throws
    /// A login for `account` succeeded: its failures are forgotten (the address's are not).
    func recordSuccess(account: String) async throws
}

/// Failed logins in this process's memory, bounded: at most `limit` timestamps a key, and stale keys are
/// dropped when there are many.
package final class MemoryLoginThrottle: LoginThrottle {
    private let limits: ThrottleLimits
    private let now: @Sendable () -> Double
    /// Failure times (epoch seconds) by `a:<account>` and `i:<address>`.
    private let failures = Mutex<[String: [Double]]>([:])
    private static let maximumKeys = 100_000

    package init(limits: ThrottleLimits, now: @escaping @Sendable () -> Double = { Double(Timestamp.now()) }) {
        self.limits = limits
        self.now = now
    }

    package func retryAfter(account: String, address: String?) async throws -> Int? {
        let now = self.now()
        return self.failures.withLock { failures in
            var wait: Double = 0
            for (key, limit) in self.keys(account: account, address: address) where limit > 0 {
                let recent = (failures[key] ?? []).filter { $0 > now - Double(self.limits.windowSeconds) }
                failures[key] = recent.isEmpty ? nil : recent
                if recent.count >= limit, let oldest = recent.first {
                    wait = max(wait, oldest + Double(self.limits.windowSeconds) - now)
                }
            }
            return wait > 0 ? max(1, Int(wait.rounded(.up))) : nil
        }
    }

    package func recordFailure(account: String, address: String?) async throws {
        let now = self.now()
        self.failures.withLock { failures in
            if failures.count > Self.maximumKeys {
                failures = failures.filter { ($0.value.last ?? 0) > now - Double(self.limits.windowSeconds) }
            }
            for (key, limit) in self.keys(account: account, address: address) where limit > 0 {
                var times = (failures[key] ?? []).filter { $0 > now - Double(self.limits.windowSeconds) }
                times.append(now)
                failures[key] = Array(times.suffix(limit))
            }
        }
    }

    package func recordSuccess(account: String) async throws {
        self.failures.withLock { $0["a:" + account] = nil }
    }

    private func keys(account: String, address: String?) -> [(String, Int)] {
        var keys = [("a:" + account, self.limits.perAccount)]
        if let address { keys.append(("i:" + address, self.limits.perAddress)) }
        return keys
    }
}
