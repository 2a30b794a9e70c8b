import Hummingbird
import HummingbirdAuth
import Logging
import NIOCore

/// Per-request state: who the request authenticated as (when auth is on), and the client's address.
package struct AppRequestContext: AuthRequestContext, ClientAddressContext {
    package var coreContext: CoreRequestContextStorage
    /// The address of the TCP peer (the proxy, when behind one).
    package let peerAddress: SocketAddress?
    /// Set by `AuthenticationMiddleware` on protected paths; `nil` when auth is off or the path is excluded.
    /// Handlers that need it run under `AuthenticatedContext`, where it is not optional.
    package var identity: AuthenticatedUser?
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
