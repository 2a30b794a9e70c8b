/// A value that can be sent as a command argument: `String`, `Substring`, `[UInt8]`, `Int`, `Int64`, `Double` or ``RedisArgument``.
public protocol RedisArgumentConvertible: Sendable {
    /// The argument sent to Redis.
    var redisArgument: RedisArgument { get }
}

extension RedisArgument: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { self }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}

extension Substring: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}

extension Int: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}

extension Int64: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}

extension Double: RedisArgumentConvertible {
    public var redisArgument: RedisArgument { RedisArgument(self) }
}
