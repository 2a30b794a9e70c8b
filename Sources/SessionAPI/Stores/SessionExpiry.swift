/// The original's expiry rule: a session created at `t` is invalid once `t + duration < now`;
/// a duration `<= 0` means sessions never expire.
package struct SessionExpiry: Sendable {
    package let duration: Int
    /// Seconds since the epoch; replaceable so that tests can move time.
    package let now: @Sendable () -> Int

    package init(duration: Int, now: @escaping @Sendable () -> Int = { Timestamp.now() }) {
        self.duration = duration
        self.now = now
    }

    package func isExpired(createdAt: Int) -> Bool {
        self.duration > 0 && createdAt + self.duration < self.now()
    }

    /// When a session created at `createdAt` stops being valid; `nil` when it never does.
    package func expiresAt(createdAt: Int) -> Int? {
        self.duration > 0 ? createdAt + self.duration : nil
    }
}
