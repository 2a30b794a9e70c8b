import CHiredis
import NIOCore

/// Parses RESP2 replies with hiredis' reply reader and converts each one to a ``RESPValue``.
///
/// Owns one `redisReader`, created in `init` and freed in `deinit`. Each `redisReply` hiredis builds is converted to a
/// ``RESPValue`` and freed before ``next()`` returns, so no C memory escapes this type. Not thread-safe: one channel handler
/// owns a decoder and uses it only on its event loop.
final class HiredisReplyDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    /// - Throws: ``RedisClientError/Code/protocolError`` when hiredis cannot allocate a reader (out of memory):
    ///   that connection fails to open and is retried, the process goes on.
    init() throws(RedisClientError) {
        guard let reader = redisReaderCreate() else {
            throw RedisClientError(.protocolError, message: "hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(self.reader)
    }

    /// Hands received bytes to the reader; call ``next()`` until it returns `nil` to take the complete replies.
    /// - Throws: ``RedisClientError/Code/protocolError`` when hiredis rejects the input.
    func feed(_ buffer: ByteBuffer) throws(RedisClientError) {
        let status = buffer.withUnsafeReadableBytes { bytes -> Int32 in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return REDIS_OK }
            return redisReaderFeed(self.reader, base.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard status == REDIS_OK else {
            throw self.readerError()
        }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    /// - Throws: ``RedisClientError/Code/protocolError`` when the bytes are not valid RESP; the reader is unusable afterwards.
    func next() throws(RedisClientError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(self.reader, &reply) == REDIS_OK else {
            throw self.readerError()
        }
        guard let reply else {
            return nil
        }
        defer { freeReplyObject(reply) }
        return try Self.value(of: reply.assumingMemoryBound(to: redisReply.self))
    }

    private func readerError() -> RedisClientError {
        let text = withUnsafeBytes(of: self.reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisClientError(.protocolError, message: "invalid reply from Redis: \(text)")
    }

    private static func value(of reply: UnsafePointer<redisReply>) throws(RedisClientError) -> RESPValue {
        let reply = reply.pointee
        switch reply.type {
        case REDIS_REPLY_STRING:
            return .bulkString(Self.bytes(reply))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: Self.bytes(reply), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: Self.bytes(reply), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                guard let element = reply.element?[index] else {
                    throw RedisClientError(.protocolError, message: "hiredis returned an array reply with a missing element")
                }
                elements.append(try Self.value(of: element))
            }
            return .array(elements)
        default:
            throw RedisClientError(.protocolError, message: "hiredis returned an unknown reply type \(reply.type)")
        }
    }

    private static func bytes(_ reply: redisReply) -> [UInt8] {
        guard let string = reply.str, reply.len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: string, count: reply.len))
    }
}
