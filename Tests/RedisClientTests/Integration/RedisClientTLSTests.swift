import NIOCore
import NIOPosix
import NIOSSL
import RedisClient
import Synchronization
import TestSupport
import Testing

/// `rediss://` against a TLS-only `redis-server` (`--port 0 --tls-port P`) with certificates made by `openssl` in the test.
@Suite struct RedisClientTLSTests {
    @Test func commandsWorkOverTLSByIPAndByName() async throws {
        try await Self.withTLSServer(requireClientCertificates: false) { server, certificates in
            for host in ["127.0.0.1", "localhost"] {
                var configuration = try RedisClientConfiguration(url: "rediss://\(host):\(server.port)/2?ca=\(certificates.caCertificatePath)")
                configuration.connectTimeout = .seconds(2)
                try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
                    try await client.set("greeting", value: "hello over \(host)")
                    #expect(try await client.getString("greeting") == "hello over \(host)")
                    #expect(try await client.send(["CLIENT", "INFO"]).string?.contains("db=2") == true)
                    let replies = try await client.pipeline((0..<100).map { _ in ["INCR", RedisArgument("counter:\(host)")] })
                    #expect(replies.last == .integer(100))
                }
            }
        }
    }

    @Test func aCertificateFromAnotherCAIsAConnectErrorThatSaysVerificationFailed() async throws {
        try await Self.withTLSServer(requireClientCertificates: false) { server, certificates in
            let error = try await Self.firstCommandError(
                "rediss://127.0.0.1:\(server.port)?ca=\(certificates.otherCACertificatePath)"
            )
            let connectError = try #require(error.underlyingError as? RedisClientError, "\(error)")
            #expect(error.code == .notConnected)
            #expect(connectError.code == .connectFailed)
            #expect(connectError.message.contains("TLS verification failed"), "\(connectError)")
            #expect(connectError.message.contains("not trusted"), "\(connectError)")
            #expect(connectError.underlyingError is NIOSSLError, "\(String(describing: connectError.underlyingError))")
            #expect(error.message.contains("TLS verification failed"), "the command's error says why too: \(error)")
        }
    }

    @Test func aNameTheCertificateDoesNotCarryFailsVerification() async throws {
        // The certificate names only redis.test: dialling 127.0.0.1 needs sni=redis.test, and any other name fails.
        try await Self.withTLSServer(requireClientCertificates: false, namedCertificate: true) { server, certificates in
            for query in ["", "&sni=other.test"] {
                let error = try await Self.firstCommandError(
                    "rediss://127.0.0.1:\(server.port)?ca=\(certificates.caCertificatePath)\(query)"
                )
                let connectError = try #require(error.underlyingError as? RedisClientError, "\(error)")
                #expect(connectError.code == .connectFailed)
                #expect(connectError.message.contains("TLS verification failed"), "\(connectError)")
                #expect(connectError.message.contains("does not match"), "\(connectError)")
                #expect(connectError.underlyingError is NIOSSLExtraError, "\(String(describing: connectError.underlyingError))")
            }

            var configuration = try RedisClientConfiguration(
                url: "rediss://127.0.0.1:\(server.port)?ca=\(certificates.caCertificatePath)&sni=redis.test"
            )
            configuration.connectTimeout = .seconds(2)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { (client) async throws in
                #expect(try await client.ping() == "PONG")
            }
        }
    }

    @Test func mutualTLSWithoutAClientCertificateIsRefused() async throws {
        try await Self.withTLSServer(requireClientCertificates: true) { server, certificates in
            let error = try await Self.firstCommandError("rediss://127.0.0.1:\(server.port)?ca=\(certificates.caCertificatePath)")
            let connectError = try #require(error.underlyingError as? RedisClientError, "\(error)")
            #expect(connectError.code == .connectFailed)
            #expect(connectError.message.contains("requires a client certificate"), "\(connectError)")
            #expect(RedisClientTLSTests.isTLSError(connectError.underlyingError), "\(String(describing: connectError.underlyingError))")
        }
    }

    @Test func mutualTLSWithAClientCertificateWorks() async throws {
        try await Self.withTLSServer(requireClientCertificates: true) { server, certificates in
            // Programmatic configuration, the same settings as ?ca=&cert=&key=.
            var configuration = RedisClientConfiguration(
                endpoint: .tcp(host: "127.0.0.1", port: server.port),
                tls: .init(
                    caCertificatePath: certificates.caCertificatePath,
                    certificatePath: certificates.clientCertificatePath,
                    privateKeyPath: certificates.clientKeyPath
                )
            )
            configuration.connectTimeout = .seconds(2)
            try configuration.validate()
            try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
                try await client.set("k", value: "mutual")
                #expect(try await client.getString("k") == "mutual")
            }
        }
    }

    @Test func verifyNoneAcceptsAnyCertificate() async throws {
        try await Self.withTLSServer(requireClientCertificates: false) { server, certificates in
            var configuration = try RedisClientConfiguration(
                url: "rediss://127.0.0.1:\(server.port)?ca=\(certificates.otherCACertificatePath)&verify=none"
            )
            configuration.connectTimeout = .seconds(2)
            try await RedisClient.withClient(configuration, logger: Integration.logger) { (client) async throws in
                #expect(try await client.ping() == "PONG")
            }
        }
    }

    @Test func reconnectsOverTLSAfterARestart() async throws {
        try await Self.withTLSServer(requireClientCertificates: false) { server, certificates in
            var configuration = try RedisClientConfiguration(url: "rediss://127.0.0.1:\(server.port)?ca=\(certificates.caCertificatePath)")
            configuration.connectTimeout = .seconds(2)
            configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
            try await RedisClient.withClient(configuration, logger: Integration.logger) { (client) async throws in
                #expect(try await client.ping() == "PONG")
                try await server.kill()
                try await server.restart()
                #expect(try await Integration.eventually { try await client.ping() } == "PONG")
            }
        }
    }

    @Test func aPlaintextServerNeverSeesACommand() async throws {
        // A TCP listener that records what it receives and never answers: the client must send a TLS ClientHello and
        // then give up at the connect timeout, never a RESP command in clear.
        let recorder = ByteRecorder()
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RecordingHandler(recorder: recorder)) }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = try #require(listener.localAddress?.port)
        var configuration = try RedisClientConfiguration(url: "rediss://127.0.0.1:\(port)")
        configuration.connectTimeout = .seconds(1)
        let error = try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
            // On a loaded machine the first connect may come late: wait for the bytes, not for a time. The command then
            // fails: the listener never answers the TLS handshake.
            try await RedisSentinelFixture.poll("the listener to receive the client's first bytes", within: .seconds(20)) {
                !recorder.received.withLock { $0.isEmpty }
            }
            return await Integration.errorOf { try await client.ping() }
        }
        try await listener.close()
        #expect(error?.code == .notConnected)
        let bytes = recorder.received.withLock { $0 }
        #expect(bytes.first == 0x16, "a TLS handshake record comes first")
        #expect(!String(decoding: bytes, as: UTF8.self).contains("PING"))
    }

    @Test func unreadableCertificateFilesFailValidationWithTheirPath() {
        let configuration = RedisClientConfiguration(tls: .init(caCertificatePath: "/nonexistent/ca.pem"))
        let error = #expect(throws: RedisClientError.self) { try configuration.validate() }
        #expect(error?.message.contains("/nonexistent/ca.pem") == true, "\(String(describing: error))")
    }

    // MARK: Helpers

    /// A TLS-only server with fresh certificates; both are removed afterwards.
    private static func withTLSServer(
        requireClientCertificates: Bool,
        namedCertificate: Bool = false,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (RedisServerProcess, TestCertificates) async throws -> Void
    ) async throws {
        let certificates = try await TestCertificates.make()
        defer { certificates.removeDirectory() }
        let options = RedisServerProcess.TLSOptions(
            certificatePath: namedCertificate ? certificates.namedServerCertificatePath : certificates.serverCertificatePath,
            privateKeyPath: namedCertificate ? certificates.namedServerKeyPath : certificates.serverKeyPath,
            caCertificatePath: certificates.caCertificatePath,
            requireClientCertificates: requireClientCertificates
        )
        try await withRedisServer(tls: options) { server in
            try await body(server, certificates)
        }
    }

    /// The error of the first command of a client configured by `url`.
    private static func firstCommandError(_ url: String) async throws -> RedisClientError {
        var configuration = try RedisClientConfiguration(url: url)
        configuration.connectTimeout = .seconds(2)
        let error = try await RedisClient.withClient(configuration, logger: Integration.logger) { client in
            await Integration.errorOf { try await client.ping() }
        }
        return try #require(error)
    }

    private static func isTLSError(_ error: (any Error)?) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
    }
}

/// Bytes received by ``RecordingHandler``s.
private final class ByteRecorder: Sendable {
    let received = Mutex<[UInt8]>([])
}

private final class RecordingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let recorder: ByteRecorder

    init(recorder: ByteRecorder) {
        self.recorder = recorder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.recorder.received.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }
}
