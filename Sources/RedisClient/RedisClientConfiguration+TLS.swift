extension RedisClientConfiguration {
    /// TLS for the connections to Redis (and to the Sentinels, when ``RedisClientConfiguration/topology`` is a Sentinel one).
    ///
    /// The default verifies fully: the server's certificate must chain to a trusted CA (the system's trust store, or the
    /// certificates in ``caCertificatePath``) and name the host connected to (a DNS name, or an IP address in the
    /// certificate's subject alternative names), or ``serverName`` when it is set. A certificate that does not verify
    /// fails the connect with ``RedisClientError/Code/connectFailed``; there is never a fall-back to plain text.
    ///
    /// In a URL (see ``RedisClientConfiguration/init(url:)``):
    /// `rediss://[user:password@]host[:port][/db][?ca=PATH&cert=PATH&key=PATH&sni=NAME&verify=full|none]`.
    ///
    /// The files are read when the client first connects (on NIO's thread pool, never on an event loop) and kept for the
    /// life of the client; ``RedisClientConfiguration/validate()`` reads them once at start-up to report a bad path early.
    public struct TLS: Sendable, Hashable {
        /// How the server's certificate is checked.
        public struct Verification: Sendable, Hashable, CustomStringConvertible {
            enum Base: Sendable, Hashable {
                case full
                case none
            }

            let base: Base

            /// The certificate must chain to a trusted CA and match the server's name (the default).
            public static var full: Self { .init(base: .full) }
            /// No check at all: the connection is encrypted but anyone in the path can impersonate the server.
            /// For development against self-signed certificates only; the client logs a warning on every connect.
            public static var none: Self { .init(base: .none) }

            public var description: String {
                switch self.base {
                case .full: "full"
                case .none: "none"
                }
            }
        }

        /// A PEM file with the CA certificates to trust instead of the system's trust store; `nil` for the system's.
        public var caCertificatePath: String?
        /// A PEM file with the client's certificate (and any intermediates), for servers that require client
        /// certificates (`tls-auth-clients yes`); needs ``privateKeyPath``.
        public var certificatePath: String?
        /// A PEM file with the private key of ``certificatePath``.
        public var privateKeyPath: String?
        /// The name sent in SNI and that the certificate must match, instead of the host connected to. Use it when Redis is
        /// reached by an IP address or an alias its certificate does not name. (As RFC 6125 allows, a certificate that
        /// lists the IP address dialled in its subject alternative names also verifies.)
        public var serverName: String?
        /// How the server's certificate is checked; ``Verification/full`` by default.
        public var verification: Verification

        /// Creates TLS settings.
        /// - Parameters:
        ///   - caCertificatePath: A PEM file of CA certificates to trust; `nil` (the default) for the system's trust store.
        ///   - certificatePath: The client certificate (PEM) for mutual TLS, or `nil`.
        ///   - privateKeyPath: The client certificate's private key (PEM), or `nil`.
        ///   - serverName: The expected server name (SNI and verification), or `nil` for the host connected to.
        ///   - verification: ``Verification/full`` (the default) or ``Verification/none``.
        public init(
            caCertificatePath: String? = nil,
            certificatePath: String? = nil,
            privateKeyPath: String? = nil,
            serverName: String? = nil,
            verification: Verification = .full
        ) {
            self.caCertificatePath = caCertificatePath
            self.certificatePath = certificatePath
            self.privateKeyPath = privateKeyPath
            self.serverName = serverName
            self.verification = verification
        }

        /// The settings as URL query parameters (`ca=...&cert=...`), empty when all are defaults.
        var queryDescription: String {
            var parameters: [String] = []
            if let caCertificatePath { parameters.append("ca=\(caCertificatePath)") }
            if let certificatePath { parameters.append("cert=\(certificatePath)") }
            if let privateKeyPath { parameters.append("key=\(privateKeyPath)") }
            if let serverName { parameters.append("sni=\(serverName)") }
            if self.verification != .full { parameters.append("verify=\(self.verification)") }
            return parameters.joined(separator: "&")
        }
    }
}
