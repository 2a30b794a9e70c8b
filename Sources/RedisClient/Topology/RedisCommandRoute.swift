/// Where a command goes in a Redis Cluster: the slot of its keys, any node, or every primary.
///
/// Keys are found from a table of the commands' key positions (as `COMMAND INFO` describes them). A command not in
/// the table goes to any node; if it has keys, the node's `MOVED` reply sends it on to the right one.
enum RedisCommandRoute: Equatable {
    /// The slot every key of the command hashes to.
    case slot(Int)
    /// No keys: any primary will do.
    case anyNode
    /// A command that changes every node's state (`SCRIPT LOAD`, `FLUSHALL`, ...): sent to every primary.
    case allPrimaries

    /// The route of `command`.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/crossSlot`` when its keys hash to different
    ///   slots: such a command would fail on any node, and sending it to one at random is never right.
    static func of(_ command: [RedisArgument]) throws(RedisClientError) -> Self {
        try Self.of(commands: CollectionOfOne(command))
    }

    /// The one route of several commands that must run on one node (a transaction, a command and its `WAIT`).
    /// - Throws: ``RedisClientError`` with code `crossSlot` when their keys hash to different slots.
    static func of(commands: some Collection<[RedisArgument]>) throws(RedisClientError) -> Self {
        var slot: Int?
        var broadcast = false
        for command in commands {
            guard let name = command.first.map(Self.upperName) else { continue }
            if Self.broadcastCommands.contains(name) {
                broadcast = true
                continue
            }
            for key in Self.keys(of: command, name: name) {
                let keySlot = RedisHashSlot.of(key)
                if let slot, slot != keySlot {
                    throw RedisClientError(
                        .crossSlot,
                        message:
                            "CROSSSLOT: the keys of \(commands.count == 1 ? name : "these commands") hash to different slots (\(slot) and \(keySlot)); in a Redis Cluster they must share one, as keys with the same {hash tag} do"
                    )
                }
                slot = keySlot
            }
        }
        if let slot {
            return .slot(slot)
        }
        return broadcast && commands.count == 1 ? .allPrimaries : .anyNode
    }

    /// The keys of `command` (whose name, in capitals, is `name`).
    static func keys(of command: [RedisArgument], name: String) -> ArraySlice<RedisArgument> {
        let count = command.count
        guard let spec = Self.keySpecs[name] else { return [] }
        switch spec {
        case .first:
            return count > 1 ? command[1...1] : []
        case .second:
            return count > 2 ? command[2...2] : []
        case .firstTwo:
            return count > 2 ? command[1...2] : (count > 1 ? command[1...1] : [])
        case .allFromFirst:
            return count > 1 ? command[1...] : []
        case .allButLast:
            return count > 2 ? command[1..<(count - 1)] : []
        case .everyOtherFromFirst:
            // MSET key value [key value ...]: only the keys.
            return ArraySlice(stride(from: 1, to: count, by: 2).map { command[$0] })
        case .numberOfKeysAt(let position, let withDestination):
            // EVAL script numkeys key... / ZUNIONSTORE destination numkeys key...
            guard count > position, let text = String(validating: command[position].bytes, as: UTF8.self), let number = Int(text), number >= 0
            else { return [] }
            let first = position + 1
            let end = min(count, first + number)
            guard withDestination else { return command[first..<end] }
            return ArraySlice([command[1]] + command[first..<end])
        }
    }

    private static func upperName(_ argument: RedisArgument) -> String {
        argument.description.uppercased()
    }

    private enum KeySpec {
        /// `COMMAND key ...`
        case first
        /// `COMMAND subcommand key ...` (`OBJECT ENCODING key`, `MEMORY USAGE key`, `XGROUP CREATE key ...`)
        case second
        /// `COMMAND key key ...` (`RENAME`, `LMOVE`, `SMOVE`, `COPY`)
        case firstTwo
        /// `COMMAND key [key ...]`
        case allFromFirst
        /// `COMMAND key [key ...] timeout` (`BLPOP`)
        case allButLast
        /// `COMMAND key value [key value ...]` (`MSET`)
        case everyOtherFromFirst
        /// `COMMAND x numkeys key [key ...]`, with `x` a key too when `withDestination`.
        case numberOfKeysAt(Int, withDestination: Bool)
    }

    private static let broadcastCommands: Set<String> = ["SCRIPT", "FLUSHALL", "FLUSHDB", "FUNCTION"]

    private static let keySpecs: [String: KeySpec] = {
        var specs: [String: KeySpec] = [:]
        let first = """
            GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX INCR DECR INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE \
            SUBSTR EXPIRE PEXPIRE EXPIREAT PEXPIREAT EXPIRETIME PEXPIRETIME PERSIST TTL PTTL TYPE DUMP RESTORE \
            HGET HSET HSETNX HMSET HMGET HGETALL HDEL HEXISTS HINCRBY HINCRBYFLOAT HKEYS HVALS HLEN HSTRLEN HSCAN HRANDFIELD \
            SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SPOP SRANDMEMBER SSCAN \
            ZADD ZREM ZCARD ZSCORE ZMSCORE ZINCRBY ZRANK ZREVRANK ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX \
            ZREVRANGEBYLEX ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZCOUNT ZLEXCOUNT ZSCAN ZPOPMIN ZPOPMAX ZRANDMEMBER \
            LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LRANGE LINDEX LSET LREM LTRIM LINSERT LPOS \
            SETBIT GETBIT BITCOUNT BITPOS BITFIELD BITFIELD_RO PFADD \
            XADD XLEN XRANGE XREVRANGE XDEL XTRIM XACK XCLAIM XAUTOCLAIM XPENDING XSETID \
            GEOADD GEOPOS GEODIST GEOHASH GEOSEARCH GEORADIUS GEORADIUSBYMEMBER SORT SORT_RO
            """
        for name in first.split(separator: " ") { specs[String(name)] = .first }
        for name in ["OBJECT", "MEMORY", "XGROUP", "XINFO"] { specs[name] = .second }
        for name in ["RENAME", "RENAMENX", "SMOVE", "LMOVE", "BLMOVE", "RPOPLPUSH", "BRPOPLPUSH", "COPY", "GEOSEARCHSTORE", "ZRANGESTORE"] {
            specs[name] = .firstTwo
        }
        for name in ["DEL", "UNLINK", "EXISTS", "MGET", "TOUCH", "WATCH", "PFCOUNT", "PFMERGE", "SINTER", "SUNION", "SDIFF"] {
            specs[name] = .allFromFirst
        }
        for name in ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"] { specs[name] = .allFromFirst }
        for name in ["BLPOP", "BRPOP", "BZPOPMIN", "BZPOPMAX"] { specs[name] = .allButLast }
        for name in ["MSET", "MSETNX"] { specs[name] = .everyOtherFromFirst }
        for name in ["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", "ZUNION", "ZINTER", "ZDIFF", "SINTERCARD", "ZINTERCARD"] {
            specs[name] = .numberOfKeysAt(2, withDestination: false)
        }
        for name in ["LMPOP", "ZMPOP"] { specs[name] = .numberOfKeysAt(1, withDestination: false) }
        for name in ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"] { specs[name] = .numberOfKeysAt(2, withDestination: true) }
        return specs
    }()
}
