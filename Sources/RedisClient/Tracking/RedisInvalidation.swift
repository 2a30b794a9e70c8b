/// What a ``RedisInvalidationListener`` tells the cache it keeps right.
///
/// A cache starts bypassed; it may fill only between a ``started`` and the next ``stopped``.
public enum RedisInvalidation: Sendable, Hashable {
    /// Subscribed (again): from now on every change to a tracked key is announced. Whatever was cached before may
    /// be stale (changes were missed while not subscribed): drop it, then fill anew.
    case started
    /// These keys changed: written, deleted, expired or evicted (by any client, this process's own included).
    case keys([String])
    /// Every key may have changed (`FLUSHALL`, `FLUSHDB`): drop everything; invalidations still flow.
    case flushed
    /// Invalidations stopped flowing (the connection was lost, a heartbeat was late, the Sentinels named another
    /// master, the client is stopping): drop everything and bypass the cache until the next ``started``.
    case stopped
}
