import Hummingbird
import NIOCore

/// Per-request state: the authenticated user (when auth is on) and the session that authenticated it.
package struct AppRequestContext: RequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The address of the TCP peer (the proxy, when behind one).
    package let peerAddress: SocketAddress?
    /// Set by `AuthMiddleware` on protected paths; `nil` when auth is off or the path is excluded.
    package var currentUser: User?
    /// The well-formed session ID that authenticated this request, if a session cookie did.
    package var sessionID: String?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress
    }

    /// Request bodies over 1 MiB are refused with 413 wherever a body is read.
    package var maxUploadSize: Int { 1 << 20 }
}
