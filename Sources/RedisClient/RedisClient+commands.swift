import Logging

// Typed helpers for common commands, the public API of RedisClient as a library. Each one sends a single command
// through `send(_:)` and converts the reply; any Redis error reply is thrown as `RedisClientError` with code
// `commandError`. The application itself uses a few of them and otherwise Lua scripts (`evalsha`); the rest are
// kept on purpose, as what a Redis client should offer, and each is exercised by RedisClientTests against a real
// redis-server (so none is dead code, even where SessionAPI does not call it).

extension RedisClient {
    // MARK: Connection

    /// Sends `PING`.
    /// - Returns: The server's answer, `PONG`.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func ping() async throws -> String {
        let reply = try await self.send(["PING"])
        guard let text = reply.string else { throw Self.unexpected(reply, for: "PING") }
        return text
    }

    // MARK: Strings

    /// Sends `GET key`.
    /// - Parameter key: The key.
    /// - Returns: The value's bytes, or `nil` when the key does not exist.
    /// - Throws: ``RedisClientError`` (`commandError` with `WRONGTYPE ...` when the key holds a non-string).
    public func get(_ key: String) async throws -> [UInt8]? {
        try Self.optionalBytes(await self.send(["GET", RedisArgument(key)]), for: "GET")
    }

    /// Sends `GET key` and decodes the value as UTF-8 (invalid sequences are repaired).
    /// - Parameter key: The key.
    /// - Returns: The value, or `nil` when the key does not exist.
    /// - Throws: ``RedisClientError``.
    public func getString(_ key: String) async throws -> String? {
        try await self.get(key).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Sends `SET key value [EX seconds] [NX]`.
    /// - Parameters:
    ///   - key: The key.
    ///   - value: The value; binary-safe.
    ///   - expiresInSeconds: When set, the key expires after this many seconds (`EX`); must be positive.
    ///   - onlyIfNotExists: When `true`, the key is set only if it does not exist yet (`NX`).
    /// - Returns: `true` if the key was set, `false` if `NX` prevented it.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func set(
        _ key: String,
        value: some RedisArgumentConvertible,
        expiresInSeconds: Int? = nil,
        onlyIfNotExists: Bool = false
    ) async throws -> Bool {
        var command: [RedisArgument] = ["SET", RedisArgument(key), value.redisArgument]
        if let expiresInSeconds {
            command.append("EX")
            command.append(RedisArgument(expiresInSeconds))
        }
        if onlyIfNotExists {
            command.append("NX")
        }
        let reply = try await self.send(command)
        switch reply {
        case .simpleString: return true
        case .null: return false
        default: throw Self.unexpected(reply, for: "SET")
        }
    }

    /// Sends `INCR key`.
    /// - Parameter key: The key; a missing key counts from 0.
    /// - Returns: The value after the increment.
    /// - Throws: ``RedisClientError`` (`commandError` when the value is not an integer).
    @discardableResult
    public func incr(_ key: String) async throws -> Int64 {
        let reply = try await self.send(["INCR", RedisArgument(key)])
        guard case .integer(let value) = reply else { throw Self.unexpected(reply, for: "INCR") }
        return value
    }

    // MARK: Keys

    /// Sends `DEL key [key ...]`.
    /// - Parameter keys: The keys; an empty list deletes nothing and sends nothing.
    /// - Returns: How many keys existed and were deleted.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func del(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await self.integerCommand("DEL", key: nil, keys.map { RedisArgument($0) })
    }

    /// Sends `DEL key [key ...]`; the variadic form of ``del(_:)-([String])``.
    /// - Parameter keys: The keys.
    /// - Returns: How many keys were deleted.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func del(_ keys: String...) async throws -> Int {
        try await self.del(keys)
    }

    /// Sends `EXISTS key [key ...]`.
    /// - Parameter keys: The keys.
    /// - Returns: How many of the keys exist (a key named twice counts twice).
    /// - Throws: ``RedisClientError``.
    public func exists(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try await self.integerCommand("EXISTS", key: nil, keys.map { RedisArgument($0) })
    }

    /// Sends `EXISTS key [key ...]`; the variadic form of ``exists(_:)-([String])``.
    /// - Parameter keys: The keys.
    /// - Returns: How many of the keys exist.
    /// - Throws: ``RedisClientError``.
    public func exists(_ keys: String...) async throws -> Int {
        try await self.exists(keys)
    }

    /// Sends `EXPIRE key seconds`.
    /// - Parameters:
    ///   - key: The key.
    ///   - seconds: The time to live; 0 or less deletes the key.
    /// - Returns: `true` if the key exists and the timeout was set.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func expire(_ key: String, seconds: Int) async throws -> Bool {
        try await self.integerCommand("EXPIRE", key: key, [RedisArgument(seconds)]) == 1
    }

    /// Sends `TTL key`.
    /// - Parameter key: The key.
    /// - Returns: The remaining time to live in seconds; -1 when the key has no expiry, -2 when it does not exist.
    /// - Throws: ``RedisClientError``.
    public func ttl(_ key: String) async throws -> Int {
        try await self.integerCommand("TTL", key: key, [])
    }

    /// Sends `PTTL key`.
    /// - Parameter key: The key.
    /// - Returns: The remaining time to live in milliseconds; -1 when the key has no expiry, -2 when it does not exist.
    /// - Throws: ``RedisClientError``.
    public func pttl(_ key: String) async throws -> Int {
        try await self.integerCommand("PTTL", key: key, [])
    }

    // MARK: Hashes

    /// Sends `HGET key field`.
    /// - Parameters:
    ///   - key: The hash's key.
    ///   - field: The field.
    /// - Returns: The field's value, or `nil` when the field or the key does not exist.
    /// - Throws: ``RedisClientError``.
    public func hget(_ key: String, field: String) async throws -> [UInt8]? {
        try Self.optionalBytes(await self.send(["HGET", RedisArgument(key), RedisArgument(field)]), for: "HGET")
    }

    /// Sends `HMGET key field [field ...]`.
    /// - Parameters:
    ///   - key: The hash's key.
    ///   - fields: The fields; must not be empty.
    /// - Returns: One value per field, in order; `nil` for a missing field.
    /// - Throws: ``RedisClientError``.
    public func hmget(_ key: String, fields: [String]) async throws -> [[UInt8]?] {
        let reply = try await self.send(["HMGET", RedisArgument(key)] + fields.map { RedisArgument($0) })
        guard case .array(let values) = reply, values.count == fields.count else { throw Self.unexpected(reply, for: "HMGET") }
        return try values.map { try Self.optionalBytes($0, for: "HMGET") }
    }

    /// Sends `HGETALL key`.
    /// - Parameter key: The hash's key.
    /// - Returns: Every field (decoded as UTF-8) with its value; empty when the key does not exist.
    /// - Throws: ``RedisClientError``.
    public func hgetall(_ key: String) async throws -> [String: [UInt8]] {
        let reply = try await self.send(["HGETALL", RedisArgument(key)])
        guard case .array(let values) = reply, values.count % 2 == 0 else { throw Self.unexpected(reply, for: "HGETALL") }
        var fields: [String: [UInt8]] = [:]
        fields.reserveCapacity(values.count / 2)
        for index in stride(from: 0, to: values.count, by: 2) {
            guard let field = values[index].string, let value = values[index + 1].bytes else {
                throw Self.unexpected(reply, for: "HGETALL")
            }
            fields[field] = value
        }
        return fields
    }

    /// Sends `HSET key field value [field value ...]`.
    /// - Parameters:
    ///   - key: The hash's key.
    ///   - fields: The fields to set with their values; must not be empty. Use `[String: RedisArgument]` to mix
    ///     strings and bytes.
    /// - Returns: How many fields were added (fields that existed and were overwritten are not counted).
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func hset(_ key: String, fields: [String: some RedisArgumentConvertible]) async throws -> Int {
        var arguments: [RedisArgument] = []
        arguments.reserveCapacity(fields.count * 2)
        for (field, value) in fields {
            arguments.append(RedisArgument(field))
            arguments.append(value.redisArgument)
        }
        return try await self.integerCommand("HSET", key: key, arguments)
    }

    /// Sends `HDEL key field [field ...]`.
    /// - Parameters:
    ///   - key: The hash's key.
    ///   - fields: The fields to remove; must not be empty.
    /// - Returns: How many fields were removed.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func hdel(_ key: String, fields: [String]) async throws -> Int {
        try await self.integerCommand("HDEL", key: key, fields.map { RedisArgument($0) })
    }

    // MARK: Sets

    /// Sends `SADD key member [member ...]`.
    /// - Parameters:
    ///   - key: The set's key.
    ///   - members: The members to add; must not be empty.
    /// - Returns: How many members were added (not counting those already present).
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func sadd(_ key: String, members: [some RedisArgumentConvertible]) async throws -> Int {
        try await self.integerCommand("SADD", key: key, members.map(\.redisArgument))
    }

    /// Sends `SREM key member [member ...]`.
    /// - Parameters:
    ///   - key: The set's key.
    ///   - members: The members to remove; must not be empty.
    /// - Returns: How many members were removed.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func srem(_ key: String, members: [some RedisArgumentConvertible]) async throws -> Int {
        try await self.integerCommand("SREM", key: key, members.map(\.redisArgument))
    }

    /// Sends `SCARD key`.
    /// - Parameter key: The set's key.
    /// - Returns: The number of members; 0 when the key does not exist.
    /// - Throws: ``RedisClientError``.
    public func scard(_ key: String) async throws -> Int {
        try await self.integerCommand("SCARD", key: key, [])
    }

    /// Sends `SMEMBERS key`. For large sets prefer ``sscan(_:cursor:match:count:)``, which does not block Redis.
    /// - Parameter key: The set's key.
    /// - Returns: All members, in no particular order.
    /// - Throws: ``RedisClientError``.
    public func smembers(_ key: String) async throws -> [[UInt8]] {
        let reply = try await self.send(["SMEMBERS", RedisArgument(key)])
        guard case .array(let values) = reply else { throw Self.unexpected(reply, for: "SMEMBERS") }
        return try values.map { value in
            guard let bytes = value.bytes else { throw Self.unexpected(reply, for: "SMEMBERS") }
            return bytes
        }
    }

    /// Sends `SSCAN key cursor [MATCH pattern] [COUNT count]`: one page of a set.
    ///
    /// Start with cursor `"0"` and call again with the returned cursor until it is `"0"`. A member may be returned more than once.
    /// - Parameters:
    ///   - key: The set's key.
    ///   - cursor: `"0"` for the first page, then the cursor the previous page returned.
    ///   - match: A glob-style pattern members must match, or `nil`.
    ///   - count: A hint for how many members to return per page, or `nil` for Redis' default (10).
    /// - Returns: The cursor for the next page (`"0"` when done) and this page's members.
    /// - Throws: ``RedisClientError``.
    public func sscan(
        _ key: String,
        cursor: String = "0",
        match: String? = nil,
        count: Int? = nil
    ) async throws -> (cursor: String, members: [[UInt8]]) {
        var command: [RedisArgument] = ["SSCAN", RedisArgument(key), RedisArgument(cursor)]
        if let match {
            command += ["MATCH", RedisArgument(match)]
        }
        if let count {
            command += ["COUNT", RedisArgument(count)]
        }
        let reply = try await self.send(command)
        guard case .array(let parts) = reply, parts.count == 2, let next = parts[0].string, case .array(let values) = parts[1] else {
            throw Self.unexpected(reply, for: "SSCAN")
        }
        let members = try values.map { value in
            guard let bytes = value.bytes else { throw Self.unexpected(reply, for: "SSCAN") }
            return bytes
        }
        return (next, members)
    }

    // MARK: Sorted sets

    /// Sends `ZADD key score member [score member ...]`.
    /// - Parameters:
    ///   - key: The sorted set's key.
    ///   - members: The members with their scores; must not be empty. Existing members get the new score.
    /// - Returns: How many members were added (not counting those whose score was updated).
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func zadd<Member: RedisArgumentConvertible>(_ key: String, members: [(score: Double, member: Member)]) async throws -> Int {
        var arguments: [RedisArgument] = []
        arguments.reserveCapacity(members.count * 2)
        for (score, member) in members {
            arguments.append(RedisArgument(score))
            arguments.append(member.redisArgument)
        }
        return try await self.integerCommand("ZADD", key: key, arguments)
    }

    /// Sends `ZREM key member [member ...]`.
    /// - Parameters:
    ///   - key: The sorted set's key.
    ///   - members: The members to remove; must not be empty.
    /// - Returns: How many members were removed.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func zrem(_ key: String, members: [some RedisArgumentConvertible]) async throws -> Int {
        try await self.integerCommand("ZREM", key: key, members.map(\.redisArgument))
    }

    /// Sends `ZRANGE key start stop WITHSCORES`: members by rank, lowest score first.
    /// - Parameters:
    ///   - key: The sorted set's key.
    ///   - start: The first rank (0-based; negative counts from the end).
    ///   - stop: The last rank, inclusive (-1 for the last member).
    /// - Returns: The members with their scores, in order.
    /// - Throws: ``RedisClientError``.
    public func zrangeWithScores(_ key: String, start: Int, stop: Int) async throws -> [(member: [UInt8], score: Double)] {
        let reply = try await self.send(["ZRANGE", RedisArgument(key), RedisArgument(start), RedisArgument(stop), "WITHSCORES"])
        guard case .array(let values) = reply, values.count % 2 == 0 else { throw Self.unexpected(reply, for: "ZRANGE") }
        var result: [(member: [UInt8], score: Double)] = []
        result.reserveCapacity(values.count / 2)
        for index in stride(from: 0, to: values.count, by: 2) {
            guard let member = values[index].bytes, let scoreText = values[index + 1].string, let score = Double(scoreText) else {
                throw Self.unexpected(reply, for: "ZRANGE")
            }
            result.append((member, score))
        }
        return result
    }

    /// Sends `ZREMRANGEBYSCORE key min max`: removes members whose score is between `min` and `max`, inclusive.
    /// - Parameters:
    ///   - key: The sorted set's key.
    ///   - min: The lowest score to remove; `-.infinity` for no lower bound.
    ///   - max: The highest score to remove; `.infinity` for no upper bound.
    /// - Returns: How many members were removed.
    /// - Throws: ``RedisClientError``.
    @discardableResult
    public func zremrangebyscore(_ key: String, min: Double, max: Double) async throws -> Int {
        try await self.integerCommand("ZREMRANGEBYSCORE", key: key, [RedisArgument(min), RedisArgument(max)])
    }

    // MARK: Scripts

    /// Runs a Lua script with `EVALSHA`; if Redis does not know the script (`NOSCRIPT`, after `SCRIPT FLUSH` or a
    /// restart), sends it once with `EVAL`, which runs it and caches it again.
    /// - Parameters:
    ///   - script: The script.
    ///   - keys: The keys the script touches (`KEYS[1]`, ...).
    ///   - arguments: The other arguments (`ARGV[1]`, ...).
    /// - Returns: The script's reply, converted as Redis does (Lua tables become arrays, `false` becomes nil).
    /// - Throws: ``RedisClientError`` with code `commandError` when the script fails or returns an error reply.
    @discardableResult
    public func evalsha(_ script: RedisScript, keys: [String] = [], arguments: [RedisArgument] = []) async throws -> RESPValue {
        let tail = Self.scriptTail(keys: keys, arguments: arguments)
        let reply = try await self.sendRaw(["EVALSHA", RedisArgument(script.sha1)] + tail)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            self.logger.debug("Redis does not know a script; sending it with EVAL", metadata: ["redis.script": "\(script.sha1)"])
            return try await self.send(["EVAL", RedisArgument(script.source)] + tail)
        }
        if case .error(let message) = reply {
            throw RedisClientError(.commandError, message: message)
        }
        return reply
    }

    // MARK: Replication

    /// Sends a command followed by `WAIT replicas timeout` on the same connection, and returns the command's reply
    /// with the number of replicas that acknowledged it (and every earlier write of that connection).
    ///
    /// Redis replicates asynchronously: a write the master acknowledged is lost if the master dies before a replica
    /// got it and a replica is promoted. `WAIT` narrows that window to writes whose count came back short (it does
    /// not make replication synchronous: a failover may still promote a replica that missed the write). It costs one
    /// replica round trip per call, or `timeout` when fewer replicas answer.
    /// - Parameters:
    ///   - command: The write, a command name followed by its arguments.
    ///   - replicas: How many replicas must acknowledge before `WAIT` returns early.
    ///   - timeout: How long `WAIT` may block (it blocks this connection's later replies too); must be positive
    ///     (`WAIT ... 0` would block forever).
    /// - Returns: The command's reply, and how many replicas acknowledged.
    /// - Throws: ``RedisClientError``: `commandError` when the command fails (nothing is then waited for); as
    ///   ``send(_:)-([RedisArgument])`` otherwise.
    public func send(
        _ command: [RedisArgument],
        waitingForReplicas replicas: Int,
        timeout: Duration
    ) async throws -> (reply: RESPValue, acknowledgedReplicas: Int) {
        let replies = try await self.pipelineRaw([command, Self.waitCommand(replicas: replicas, timeout: timeout)], extraTimeout: timeout)
        return try Self.replyAndAcknowledgements(replies, for: "\(command.first?.description ?? "")")
    }

    /// ``evalsha(_:keys:arguments:)`` followed by `WAIT replicas timeout` on the same connection; see
    /// ``send(_:waitingForReplicas:timeout:)``.
    /// - Parameters:
    ///   - script: The script.
    ///   - keys: The keys the script touches.
    ///   - arguments: The other arguments.
    ///   - replicas: How many replicas must acknowledge before `WAIT` returns early.
    ///   - timeout: How long `WAIT` may block; must be positive.
    /// - Returns: The script's reply, and how many replicas acknowledged.
    /// - Throws: ``RedisClientError`` with code `commandError` when the script fails.
    @discardableResult
    public func evalsha(
        _ script: RedisScript,
        keys: [String] = [],
        arguments: [RedisArgument] = [],
        waitingForReplicas replicas: Int,
        timeout: Duration
    ) async throws -> (reply: RESPValue, acknowledgedReplicas: Int) {
        let tail = Self.scriptTail(keys: keys, arguments: arguments)
        let wait = Self.waitCommand(replicas: replicas, timeout: timeout)
        var replies = try await self.pipelineRaw([["EVALSHA", RedisArgument(script.sha1)] + tail, wait], extraTimeout: timeout)
        if let message = replies.first?.errorMessage, message.hasPrefix("NOSCRIPT") {
            self.logger.debug("Redis does not know a script; sending it with EVAL", metadata: ["redis.script": "\(script.sha1)"])
            replies = try await self.pipelineRaw([["EVAL", RedisArgument(script.source)] + tail, wait], extraTimeout: timeout)
        }
        return try Self.replyAndAcknowledgements(replies, for: "EVALSHA")
    }

    private static func waitCommand(replicas: Int, timeout: Duration) -> [RedisArgument] {
        let milliseconds = max(1, Int(timeout / .milliseconds(1)))
        return ["WAIT", RedisArgument(max(0, replicas)), RedisArgument(milliseconds)]
    }

    private static func replyAndAcknowledgements(_ replies: [RESPValue], for name: String) throws -> (reply: RESPValue, acknowledgedReplicas: Int) {
        guard replies.count == 2 else {
            throw RedisClientError(.unexpectedReply, message: "a command with WAIT got \(replies.count) replies")
        }
        if case .error(let message) = replies[0] {
            throw RedisClientError(.commandError, message: message)
        }
        if case .error(let message) = replies[1] {
            throw RedisClientError(.commandError, message: message)
        }
        guard case .integer(let acknowledged) = replies[1] else {
            throw Self.unexpected(replies[1], for: "WAIT after \(name)")
        }
        return (replies[0], Int(acknowledged))
    }

    static func scriptTail(keys: [String], arguments: [RedisArgument]) -> [RedisArgument] {
        var tail: [RedisArgument] = [RedisArgument(keys.count)]
        tail.reserveCapacity(1 + keys.count + arguments.count)
        tail.append(contentsOf: keys.map { RedisArgument($0) })
        tail.append(contentsOf: arguments)
        return tail
    }

    // MARK: Helpers

    private func integerCommand(_ name: String, key: String?, _ arguments: [RedisArgument]) async throws -> Int {
        var command: [RedisArgument] = [RedisArgument(name)]
        command.reserveCapacity(2 + arguments.count)
        if let key {
            command.append(RedisArgument(key))
        }
        command.append(contentsOf: arguments)
        let reply = try await self.send(command)
        guard case .integer(let value) = reply else { throw Self.unexpected(reply, for: name) }
        return Int(value)
    }

    private static func optionalBytes(_ reply: RESPValue, for command: String) throws -> [UInt8]? {
        switch reply {
        case .bulkString(let bytes): bytes
        case .null: nil
        default: throw Self.unexpected(reply, for: command)
        }
    }

    static func unexpected(_ reply: RESPValue, for command: String) -> RedisClientError {
        let kind =
            switch reply {
            case .simpleString: "a simple string"
            case .bulkString: "a bulk string"
            case .integer: "an integer"
            case .array(let elements): "an array of \(elements.count)"
            case .null: "nil"
            case .error: "an error"
            }
        return RedisClientError(.unexpectedReply, message: "unexpected reply to \(command): \(kind)")
    }
}
