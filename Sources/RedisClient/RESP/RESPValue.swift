/// One reply from Redis (RESP2), converted from hiredis' `redisReply` into Swift values.
public enum RESPValue: Sendable, Hashable {
    /// A simple string reply, such as `OK`.
    case simpleString(String)
    /// A bulk string reply: binary-safe bytes.
    case bulkString([UInt8])
    /// An integer reply.
    case integer(Int64)
    /// An array reply; elements may be nested arrays.
    case array([RESPValue])
    /// The nil reply (a missing key, a nil bulk string or a nil array).
    case null
    /// An error reply, such as `NOSCRIPT No matching script`.
    case error(String)
}
