import NIOCore
import Synchronization

/// One connection to Redis: a channel whose pipeline ends in a ``RedisChannelHandler``.
///
/// Commands may be sent from any task. Off the event loop they are put in an inbox, and the first one of a batch
/// schedules a single drain on the event loop: thousands of concurrent callers cost one task hop per loop pass, not one
/// each. On the loop, the handler encodes them, flushes once per loop pass and matches replies in order.
/// Sendable: it holds the channel, a loop-bound handler reference and a lock-protected inbox.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>
    /// Writes sent from other threads, waiting for the event loop to drain them.
    private let inbox = Mutex<[RedisChannelHandler.Write]>([])
    /// The reply limit for commands sent without an explicit timeout.
    let commandTimeout: TimeAmount

    var eventLoop: any EventLoop { self.channel.eventLoop }

    /// Wraps a channel whose pipeline already holds `handler`. Call on the channel's event loop.
    init(channel: any Channel, handler: RedisChannelHandler, commandTimeout: TimeAmount) {
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
        self.commandTimeout = commandTimeout
    }

    /// Sends one command and waits for its reply. A Redis error reply is returned as ``RESPValue/error(_:)``.
    /// - Throws: ``RedisClientError`` (`timeout`, `connectionClosed`, `notConnected`, `protocolError`).
    func send(_ command: [RedisArgument], timeout: TimeAmount? = nil) async throws -> RESPValue {
        let timeout = timeout ?? self.commandTimeout
        return try await Self.withPromise { promise in
            self.submit(.command(command, timeout: timeout, promise: promise))
        }
    }

    /// Sends several commands in one write and waits for all their replies, in order. Error replies are returned as
    /// ``RESPValue/error(_:)`` elements.
    /// - Throws: ``RedisClientError`` (`timeout`, `connectionClosed`, `notConnected`, `protocolError`).
    func pipeline(_ commands: [[RedisArgument]], timeout: TimeAmount? = nil) async throws -> [RESPValue] {
        let timeout = timeout ?? self.commandTimeout
        let reply = try await Self.withPromise { promise in
            self.submit(.pipeline(commands, timeout: timeout, promise: promise))
        }
        guard case .array(let replies) = reply, replies.count == commands.count else {
            throw RedisClientError(.unexpectedReply, message: "a pipeline of \(commands.count) commands got a mismatched reply")
        }
        return replies
    }

    /// Suspends until the ``RedisChannelHandler/Promise`` given to `body` is resumed (checked in debug builds only).
    static func withPromise(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisChannelHandler.Promise) -> Void
    ) async throws -> RESPValue {
        #if DEBUG
        try await withCheckedThrowingContinuation(isolation: isolation, body)
        #else
        try await withUnsafeThrowingContinuation(isolation: isolation, body)
        #endif
    }

    /// Hands `write` to the handler: directly on the event loop, else through the inbox.
    private func submit(_ write: RedisChannelHandler.Write) {
        if self.eventLoop.inEventLoop {
            self.handler.value.write(write)
            return
        }
        let isFirst = self.inbox.withLock { inbox in
            inbox.append(write)
            return inbox.count == 1
        }
        if isFirst {
            self.eventLoop.execute {
                self.drainInbox()
            }
        }
    }

    /// Writes everything in the inbox. Runs on the event loop; swaps the inbox with the handler's spare array, so a
    /// steady stream of commands allocates no arrays.
    private func drainInbox() {
        let handler = self.handler.value
        var batch = handler.takeSpareWrites()
        self.inbox.withLock { swap(&$0, &batch) }
        for write in batch {
            handler.write(write)
        }
        batch.removeAll(keepingCapacity: true)
        handler.returnSpareWrites(batch)
    }

    /// Closes the connection; pending commands fail with `error`. Returns at once; see ``closeFuture``.
    func close(because error: RedisClientError) {
        if self.eventLoop.inEventLoop {
            self.handler.value.close(because: error)
        } else {
            self.eventLoop.execute {
                self.handler.value.close(because: error)
            }
        }
    }

    /// Completes when the channel has closed.
    var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }
}
