import Logging
import RedisClient
import ServiceLifecycle

/// Moves the keys of the first Redis layout, which had no hash tags (`<prefix>user:<id>`,
/// `<prefix>user-sessions:<id>`), to the current one (`<prefix>user:{<id>}`, `<prefix>user-sessions:{<id>}`), once
/// per deployment, in the background, then marks it done in `<prefix>layout`.
///
/// A `Service` run with the Redis client: it waits for Redis (retrying every few seconds, never failing the
/// server), `SCAN`s for the old keys and renames each one in a script (a session index made since the upgrade
/// gets the old one's entries). Session hashes, email claims and the `users` set kept their names. Nothing to do
/// in a Redis Cluster, where the first layout could not run. Old processes that still run write the old layout:
/// stop them before starting new ones, or afterwards `DEL <prefix>layout` and restart one process.
package struct RedisLayoutMigration: Service {
    private let client: RedisClient
    private let keys: RedisKeys
    private let logger: Logger

    package init(client: RedisClient, keys: RedisKeys, logger: Logger) {
        self.client = client
        self.keys = keys
        self.logger = logger
    }

    /// The value of `<prefix>layout` once the keys are moved.
    static let currentLayout = "2"

    /// Migrates (until it succeeds, or the service is shut down), then waits for the shutdown: a service that
    /// returns early would stop the server.
    package func run() async throws {
        if self.client.configuration.topology.cluster == nil {
            await cancelWhenGracefulShutdown {
                var failures = 0
                while !Task.isCancelled {
                    do {
                        try await self.migrate()
                        return
                    } catch {
                        failures += 1
                        if failures == 1 || failures % 20 == 0 {
                            self.logger.notice(
                                "Redis key layout: not checked yet, will retry",
                                metadata: ["error": "\(error)", "attempts": "\(failures)"]
                            )
                        }
                        try? await Task.sleep(for: .seconds(min(failures, 5)))
                    }
                }
            }
        }
        try? await gracefulShutdown()
    }

    /// Moves every key of the first layout; does nothing when `<prefix>layout` says it is done.
    package func migrate() async throws {
        if try await self.client.getString(self.keys.layout) == Self.currentLayout { return }
        var moved = 0
        var conflicts = 0
        // Session indexes first: a user whose hash is moved answers `/users/me` at once, and its session list
        // must already be there then.
        for (name, current) in [("user-sessions:", self.keys.userSessions(userID:)), ("user:", self.keys.user(id:))] {
            let start = self.keys.prefix + name
            var cursor = "0"
            repeat {
                let page = try await self.client.send([
                    "SCAN", RedisArgument(cursor), "MATCH", RedisArgument(RedisKeys.globEscaped(start) + "*"), "COUNT", "1000",
                ])
                let parts = page.array ?? []
                guard parts.count == 2, let next = parts[0].string else {
                    throw RedisClientError(.unexpectedReply, message: "unexpected reply to SCAN")
                }
                cursor = next
                for key in (parts[1].array ?? []).compactMap(\.string) {
                    let id = key.dropFirst(start.count)
                    guard !id.isEmpty, !id.hasPrefix("{") else { continue }
                    let reply = try await self.client.evalsha(Self.moveScript, keys: [key, current(String(id))])
                    if reply.int64 == 1 { moved += 1 } else if reply.int64 == -1 { conflicts += 1 }
                }
            } while cursor != "0"
        }
        _ = try await self.client.set(self.keys.layout, value: Self.currentLayout)
        if moved > 0 || conflicts > 0 {
            self.logger.notice(
                "Redis key layout: moved the keys of the first layout to hash-tagged keys",
                metadata: ["moved": "\(moved)", "left (both names exist, not sorted sets)": "\(conflicts)"]
            )
        }
    }

    /// KEYS: old name, new name (one server: the first layout never ran in a cluster). Renames; when both exist
    /// and are sorted sets (a session index), merges the old entries in and keeps the index alive as long as its
    /// longest session. 1: moved, 0: nothing to move, -1: both exist, left alone.
    static let moveScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('RENAME', KEYS[1], KEYS[2]) return 1 end
        if redis.call('TYPE', KEYS[1]).ok ~= 'zset' or redis.call('TYPE', KEYS[2]).ok ~= 'zset' then return -1 end
        redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MAX')
        redis.call('DEL', KEYS[1])
        local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
        if last[2] == 'inf' then redis.call('PERSIST', KEYS[2]) else redis.call('EXPIREAT', KEYS[2], math.floor(tonumber(last[2])) + 1) end
        return 1
        """
    )
}
