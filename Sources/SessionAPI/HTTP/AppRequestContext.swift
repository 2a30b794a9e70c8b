import Hummingbird
import Logging
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
    /// The client's address (see `ClientAddress`), set by `RequestLogMiddleware`. Log lines that matter
    /// carry it as `client_ip` (not set on the logger itself: that re-renders its metadata every request).
    package var clientIP: String?

    /// Metadata for a log line about this request: `extra` plus the client's address.
    package func logMetadata(_ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        if let clientIP = self.clientIP { metadata["client_ip"] = .string(clientIP) }
        return metadata
    }

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.peerAddress = source.channel.remoteAddress
    }

    /// Request bodies over 1 MiB are refused with 413 wherever a body is read.
    package var maxUploadSize: Int { 1 << 20 }
}
