import Logging
import NIOCore

/// The last handler of a Redis connection's pipeline: encodes commands, coalesces flushes, decodes replies and
/// matches them in order to their callers, and enforces command deadlines.
///
/// Confined to its channel's event loop: every method must be called on that loop (``RedisConnection`` reaches it
/// through `NIOLoopBound`). All decisions are taken by ``StateMachine``; this class only performs I/O.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    #if DEBUG
    /// Resumed with the reply, or with a ``RedisClientError``. Checked in debug builds (the tests): a promise resumed
    /// twice, or never, is reported.
    typealias Promise = CheckedContinuation<RESPValue, any Error>
    #else
    /// Resumed with the reply, or with a ``RedisClientError``. Unchecked in release builds: the state machine hands each
    /// pending promise out exactly once (it is removed from the queue as it is returned in an action), and skipping
    /// the check measured ~10% more GET/s in the benchmark.
    typealias Promise = UnsafeContinuation<RESPValue, any Error>
    #endif

    /// Receives the pub/sub messages of a subscriber connection, on the event loop.
    typealias PushHandler = @Sendable (RESPValue) -> Void

    private var stateMachine: StateMachine<ChannelHandlerContext, Promise>
    private let pushHandler: PushHandler?
    private let decoder: HiredisReplyDecoder
    private var encoder = HiredisCommandEncoder()
    /// Commands encoded during this event-loop pass, written with one flush.
    private var outbound: ByteBuffer
    private var timer: Scheduled<Void>?
    /// The time the first command of this loop pass was written; cleared by the pass's flush.
    private var passStart: NIODeadline?
    private let eventLoop: any EventLoop
    private let logger: Logger

    private static let outboundCapacity = 16 * 1024
    private static let maximumRetainedOutboundCapacity = 1024 * 1024

    /// - Parameter pushHandler: For a subscriber connection: receives each published message (`["message", channel,
    ///   payload]`).
    /// - Throws: ``RedisClientError`` when hiredis cannot allocate its reply reader.
    init(eventLoop: any EventLoop, logger: Logger, pushHandler: PushHandler? = nil) throws(RedisClientError) {
        self.stateMachine = StateMachine(acceptsPushes: pushHandler != nil)
        self.pushHandler = pushHandler
        self.decoder = try HiredisReplyDecoder()
        self.eventLoop = eventLoop
        self.logger = logger
        self.outbound = ByteBufferAllocator().buffer(capacity: Self.outboundCapacity)
    }

    // MARK: Commands (call on the event loop)

    /// A command or a pipeline to send, with its reply promise.
    enum Write: Sendable {
        case command([RedisArgument], timeout: TimeAmount, promise: Promise)
        case pipeline([[RedisArgument]], timeout: TimeAmount, promise: Promise)
    }

    /// An empty array with capacity, for ``RedisConnection`` to swap its inbox into.
    private var spareWrites: [Write] = []

    func takeSpareWrites() -> [Write] {
        var spare: [Write] = []
        swap(&spare, &self.spareWrites)
        return spare
    }

    func returnSpareWrites(_ writes: [Write]) {
        self.spareWrites = writes
    }

    /// Sends a command or a pipeline.
    func write(_ write: Write) {
        switch write {
        case .command(let command, let timeout, let promise):
            self.write(command: command, timeout: timeout, promise: promise)
        case .pipeline(let commands, let timeout, let promise):
            self.write(pipeline: commands, timeout: timeout, promise: promise)
        }
    }

    /// Sends one command; `promise` is resumed with its reply, or with a ``RedisClientError``.
    /// - Parameters:
    ///   - command: The command name and its arguments.
    ///   - timeout: How long the reply may take before the connection is reset.
    ///   - promise: Resumed exactly once.
    func write(command: [RedisArgument], timeout: TimeAmount, promise: Promise) {
        let mark = self.outbound.writerIndex
        do {
            try self.encoder.encode(command, into: &self.outbound)
        } catch {
            self.outbound.moveWriterIndex(to: mark)
            promise.resume(throwing: error)
            return
        }
        self.commandEncoded(promise: promise, pipelineCount: nil, timeout: timeout, rollbackTo: mark)
    }

    /// Sends several commands in one write; `promise` is resumed with `.array` of their replies, in order.
    /// - Parameters:
    ///   - commands: The commands; must not be empty.
    ///   - timeout: How long all replies may take before the connection is reset.
    ///   - promise: Resumed exactly once.
    func write(pipeline commands: [[RedisArgument]], timeout: TimeAmount, promise: Promise) {
        guard !commands.isEmpty else {
            promise.resume(returning: .array([]))
            return
        }
        let mark = self.outbound.writerIndex
        do {
            for command in commands {
                try self.encoder.encode(command, into: &self.outbound)
            }
        } catch {
            self.outbound.moveWriterIndex(to: mark)
            promise.resume(throwing: error)
            return
        }
        self.commandEncoded(promise: promise, pipelineCount: commands.count, timeout: timeout, rollbackTo: mark)
    }

    /// Closes the connection, failing every pending command with `error`.
    func close(because error: RedisClientError) {
        self.run(self.stateMachine.closeRequested(because: error))
    }

    private func commandEncoded(promise: Promise, pipelineCount: Int?, timeout: TimeAmount, rollbackTo mark: Int) {
        // One clock read per loop pass: commands written in the same pass share it (their deadlines are at most one
        // pass early, never late).
        let now = self.passStart ?? self.eventLoop.now
        let deadline = now + timeout
        switch self.stateMachine.commandEncoded(promise: promise, pipelineCount: pipelineCount, deadline: deadline) {
        case .write(let scheduleFlush, let armTimer):
            if scheduleFlush {
                self.passStart = now
                self.eventLoop.assumeIsolated().execute {
                    self.flushTriggered()
                }
            }
            if let armTimer {
                self.armTimer(at: armTimer)
            }
        case .fail(let promise, let error):
            self.outbound.moveWriterIndex(to: mark)
            promise.resume(throwing: error)
        }
    }

    private func flushTriggered() {
        self.passStart = nil
        switch self.stateMachine.flushTriggered() {
        case .flush(let context):
            context.writeAndFlush(Self.wrapOutboundOut(self.outbound), promise: nil)
            if self.outbound.capacity > Self.maximumRetainedOutboundCapacity {
                self.outbound = context.channel.allocator.buffer(capacity: Self.outboundCapacity)
            } else {
                // Reuses the storage when the write completed synchronously; otherwise allocates a fresh one.
                self.outbound.clear()
            }
        case .none:
            break
        }
    }

    // MARK: Timeouts

    private func armTimer(at deadline: NIODeadline) {
        self.timer?.cancel()
        self.timer = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timerFired()
        }
    }

    private func timerFired() {
        self.timer = nil
        switch self.stateMachine.timerFired(now: self.eventLoop.now) {
        case .none:
            break
        case .armTimer(let deadline):
            self.armTimer(at: deadline)
        case .failAllAndClose(let context, let failures):
            self.logger.warning("Redis command timed out; resetting the connection", metadata: ["redis.pending": "\(failures.count)"])
            self.failAllAndClose(context: context, failures: failures)
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            self.stateMachine.channelActive(context: context)
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.stateMachine.channelActive(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let failures = self.stateMachine.channelInactive()
        self.timer?.cancel()
        self.timer = nil
        self.outbound.clear()
        for failure in failures {
            failure.promise.resume(throwing: failure.error)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        do {
            try self.decoder.feed(buffer)
            while let value = try self.decoder.next() {
                switch self.stateMachine.replyReceived(value) {
                case .succeed(let promise, let value):
                    promise.resume(returning: value)
                case .push(let value):
                    self.pushHandler?(value)
                case .none:
                    break
                case .failAllAndClose(let context, let failures):
                    self.logger.warning("Redis sent a reply no command was waiting for; closing the connection")
                    self.failAllAndClose(context: context, failures: failures)
                    return
                }
            }
        } catch {
            self.logger.warning("Undecodable reply from Redis; closing the connection", metadata: ["redis.error": "\(error.message)"])
            self.run(self.stateMachine.closeRequested(because: error))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("Redis connection error", metadata: ["redis.error": "\(error)"])
        let error = RedisClientError(.connectionClosed, message: "the connection to Redis failed", underlyingError: error)
        self.run(self.stateMachine.closeRequested(because: error))
    }

    // MARK: Actions

    private func run(_ action: StateMachine<ChannelHandlerContext, Promise>.CloseAction) {
        switch action {
        case .none:
            break
        case .failAllAndClose(let context, let failures):
            self.failAllAndClose(context: context, failures: failures)
        }
    }

    private func failAllAndClose(context: ChannelHandlerContext, failures: [StateMachine<ChannelHandlerContext, Promise>.Failure]) {
        self.timer?.cancel()
        self.timer = nil
        self.outbound.clear()
        for failure in failures {
            failure.promise.resume(throwing: failure.error)
        }
        context.close(promise: nil)
    }
}
