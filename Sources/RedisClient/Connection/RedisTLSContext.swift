import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The TLS context of one client: built from ``RedisClientConfiguration/TLS`` on first use (its files are read on NIO's
/// thread pool, never on an event loop), then shared by every connection.
///
/// Sendable: the settings are a value and the built context (itself Sendable) sits behind a lock.
final class RedisTLSContext: Sendable {
    let settings: RedisClientConfiguration.TLS
    private let built = Mutex<NIOSSLContext?>(nil)

    init(settings: RedisClientConfiguration.TLS) {
        self.settings = settings
    }

    /// The context, built on the first call. A failure is not kept: the next connect attempt reads the files again.
    /// - Throws: ``RedisClientError`` with code `connectFailed` naming the file that could not be used.
    func sslContext() async throws -> NIOSSLContext {
        if let context = self.built.withLock({ $0 }) {
            return context
        }
        let settings = self.settings
        let context: NIOSSLContext
        do {
            context = try await NIOThreadPool.singleton.runIfActive { try Self.makeContext(settings) }
        } catch let error as RedisClientError {
            throw error
        } catch {
            throw RedisClientError(.connectFailed, message: "could not set up TLS", underlyingError: error)
        }
        return self.built.withLock { built in
            if let existing = built { return existing }
            built = context
            return context
        }
    }

    /// A TLS handler for a connection to `host`: SNI and verification use ``RedisClientConfiguration/TLS/serverName``, else
    /// the host when it is a name; for an IP address, the certificate must list that address.
    func makeHandler(context: NIOSSLContext, host: String?) throws -> NIOSSLClientHandler {
        var serverHostname = self.settings.serverName
        if serverHostname == nil, let host, (try? SocketAddress(ipAddress: host, port: 0)) == nil {
            serverHostname = host
        }
        return try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }

    /// Builds an `NIOSSLContext`, reading the certificate files. Blocks: call off event loops.
    /// - Throws: ``RedisClientError`` with code `connectFailed` naming the file that could not be used.
    static func makeContext(_ settings: RedisClientConfiguration.TLS) throws(RedisClientError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let path = settings.caCertificatePath {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(path)
            } catch {
                throw RedisClientError(.connectFailed, message: "TLS: could not read CA certificates from '\(path)'", underlyingError: error)
            }
            guard !certificates.isEmpty else {
                throw RedisClientError(.connectFailed, message: "TLS: '\(path)' holds no PEM certificate")
            }
            configuration.trustRoots = .certificates(certificates)
        }
        switch (settings.certificatePath, settings.privateKeyPath) {
        case (let certificatePath?, let keyPath?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) }
            } catch {
                throw RedisClientError(
                    .connectFailed,
                    message: "TLS: could not read the client certificate from '\(certificatePath)'",
                    underlyingError: error
                )
            }
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            } catch {
                throw RedisClientError(.connectFailed, message: "TLS: could not read the private key from '\(keyPath)'", underlyingError: error)
            }
        case (nil, nil):
            break
        default:
            throw RedisClientError(.connectFailed, message: "TLS: a client certificate needs both a certificate file and a private key file")
        }
        switch settings.verification.base {
        case .full: configuration.certificateVerification = .fullVerification
        case .none: configuration.certificateVerification = .none
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisClientError(.connectFailed, message: "TLS: the certificate and key cannot be used together", underlyingError: error)
        }
    }

    /// The TLS error in `error`'s chain of underlying errors, if any.
    static func tlsError(in error: any Error) -> (any Error)? {
        var current: (any Error)? = error
        while let error = current {
            if error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError {
                return error
            }
            current = (error as? RedisClientError)?.underlyingError
        }
        return nil
    }

    /// A one-line explanation of a TLS failure while connecting to `endpoint`; `afterHandshake` when it came after the
    /// TLS handshake had completed on the client's side (with TLS 1.3 a server's refusal of the client's certificate
    /// arrives then).
    static func explain(_ tlsError: any Error, endpoint: RedisClientConfiguration.Endpoint, afterHandshake: Bool) -> String {
        let text = "\(tlsError)"
        if let extra = tlsError as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return "TLS verification failed for Redis at \(endpoint): the server's certificate does not match the expected name (\(text))"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") {
            return "TLS verification failed for Redis at \(endpoint): the server's certificate is not trusted by the configured CAs"
        }
        if text.contains("CERTIFICATE_REQUIRED") {
            return "Redis at \(endpoint) refused the TLS connection: it requires a client certificate"
        }
        if text.contains("BAD_CERTIFICATE") || text.contains("UNKNOWN_CA") || text.contains("CERTIFICATE_UNKNOWN") {
            return "Redis at \(endpoint) refused the TLS connection: it does not accept the client certificate"
        }
        if afterHandshake {
            return "Redis at \(endpoint) ended the TLS session during the handshake"
        }
        return "the TLS handshake with Redis at \(endpoint) failed"
    }
}
