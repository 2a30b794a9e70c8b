import NIOCore
import NIOTLS

/// Sits right after the TLS handler and completes ``handshakeFuture`` when the TLS handshake is done, or fails it with
/// the TLS error, a close, or a timeout; so a connect never sends a Redis command before TLS is up, and reports a
/// certificate that does not verify as such.
///
/// Confined to its channel's event loop, like every handler.
final class RedisTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let promise: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var completed = false

    /// Completes when the TLS handshake succeeds; fails with the TLS error (or a ``RedisClientError``).
    var handshakeFuture: EventLoopFuture<Void> { self.promise.futureResult }

    /// - Parameters:
    ///   - eventLoop: The channel's event loop.
    ///   - timeout: How long the handshake may take; after it the channel is closed.
    init(eventLoop: any EventLoop, timeout: TimeAmount) {
        self.promise = eventLoop.makePromise()
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            self.fail(RedisClientError(.timeout, message: "the TLS handshake did not complete within the connect timeout"))
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.fail(RedisClientError(.connectionClosed, message: "the TLS handler was removed"))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            self.complete { $0.succeed() }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(RedisClientError(.connectionClosed, message: "the connection closed during the TLS handshake"))
        context.fireChannelInactive()
    }

    private func fail(_ error: any Error) {
        self.complete { $0.fail(error) }
    }

    private func complete(_ body: (EventLoopPromise<Void>) -> Void) {
        guard !self.completed else { return }
        self.completed = true
        self.timer?.cancel()
        self.timer = nil
        body(self.promise)
    }
}
