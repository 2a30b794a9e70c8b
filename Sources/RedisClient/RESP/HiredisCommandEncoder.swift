import CHiredis
import NIOCore

/// Encodes commands into the RESP wire format with hiredis' `redisFormatCommandArgv`.
///
/// Every argument is passed with its length, so arguments are binary-safe. The encoder keeps one scratch buffer that
/// it reuses between commands; it is owned by one channel handler and used only on its event loop.
struct HiredisCommandEncoder {
    /// All arguments of the command being encoded, back to back.
    private var scratch: [UInt8] = []

    init() {
        self.scratch.reserveCapacity(256)
    }

    /// Appends the RESP encoding of `arguments` (a command name and its arguments) to `buffer`.
    /// - Throws: ``RedisClientError/Code/protocolError`` for an empty command or when hiredis cannot encode it.
    mutating func encode(_ arguments: [RedisArgument], into buffer: inout ByteBuffer) throws(RedisClientError) {
        let count = arguments.count
        guard count > 0, count <= Int(Int32.max) else {
            throw RedisClientError(.protocolError, message: "a command needs between 1 and \(Int32.max) arguments, got \(count)")
        }
        self.scratch.removeAll(keepingCapacity: true)
        for argument in arguments {
            argument.append(to: &self.scratch)
        }
        // A trailing byte keeps the base address non-nil even when every argument is empty.
        self.scratch.append(0)

        let written = self.scratch.withUnsafeBufferPointer { bytes -> Int in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv -> Int in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths -> Int in
                    guard let base = bytes.baseAddress else { return -1 }
                    let raw = UnsafeRawPointer(base)
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        let length = argument.byteCount
                        argv[index] = (raw + offset).assumingMemoryBound(to: CChar.self)
                        lengths[index] = length
                        offset += length
                    }
                    var target: UnsafeMutablePointer<CChar>?
                    let length = redisFormatCommandArgv(&target, Int32(count), argv.baseAddress, lengths.baseAddress)
                    guard length >= 0, let target else { return -1 }
                    defer { redisFreeCommand(target) }
                    return buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(length)))
                }
            }
        }
        guard written >= 0 else {
            throw RedisClientError(.protocolError, message: "hiredis could not encode a command with \(count) arguments")
        }
    }
}
