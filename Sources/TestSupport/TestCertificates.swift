import Foundation

/// Certificates for TLS tests, made with the `openssl` command line in a fresh temporary directory: a CA, a server
/// certificate for `127.0.0.1` and `localhost` signed by it, one that names only `redis.test` (no address: for name
/// checks, since a certificate that lists the dialled IP address verifies whatever name is expected), a client
/// certificate signed by it, and a second, unrelated CA (which must not be trusted for the server's certificate).
package struct TestCertificates: Sendable {
    /// The directory holding every file; delete it with ``removeDirectory()``.
    package let directory: URL
    /// The CA that signed the server and client certificates.
    package var caCertificatePath: String { self.path("ca.crt") }
    /// A CA that signed nothing here.
    package var otherCACertificatePath: String { self.path("other-ca.crt") }
    /// The server's certificate: subject alternative names `IP:127.0.0.1` and `DNS:localhost`.
    package var serverCertificatePath: String { self.path("server.crt") }
    package var serverKeyPath: String { self.path("server.key") }
    /// A server certificate whose only subject alternative name is `DNS:redis.test`.
    package var namedServerCertificatePath: String { self.path("named-server.crt") }
    package var namedServerKeyPath: String { self.path("named-server.key") }
    /// A client certificate for mutual TLS.
    package var clientCertificatePath: String { self.path("client.crt") }
    package var clientKeyPath: String { self.path("client.key") }

    /// Makes the certificates (EC P-256 keys, valid for 2 days). Takes well under a second.
    /// - Throws: ``RedisServerProcessError`` when `openssl` is missing or fails.
    package static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        for name in ["ca", "other-ca"] {
            try await RedisServerProcess.runTool(
                "openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=session-api test \(name)", "-keyout", certificates.path("\(name).key"), "-out", certificates.path("\(name).crt"),
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                ]
            )
        }
        try await certificates.issue(
            "server",
            commonName: "localhost",
            extensions: "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
        )
        try await certificates.issue(
            "named-server",
            commonName: "redis.test",
            extensions: "subjectAltName=DNS:redis.test\nextendedKeyUsage=serverAuth\n"
        )
        try await certificates.issue("client", commonName: "session-api test client", extensions: "extendedKeyUsage=clientAuth\n")
        return certificates
    }

    /// Deletes the directory and every file in it.
    package func removeDirectory() {
        try? FileManager.default.removeItem(at: self.directory)
    }

    private func issue(_ name: String, commonName: String, extensions: String) async throws {
        let extensionsPath = self.path("\(name).ext")
        try Data(extensions.utf8).write(to: URL(fileURLWithPath: extensionsPath))
        try await RedisServerProcess.runTool(
            "openssl",
            [
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=\(commonName)",
                "-keyout", self.path("\(name).key"), "-out", self.path("\(name).csr"),
            ]
        )
        try await RedisServerProcess.runTool(
            "openssl",
            [
                "x509", "-req", "-in", self.path("\(name).csr"), "-CA", self.caCertificatePath, "-CAkey", self.path("ca.key"),
                "-CAcreateserial", "-days", "2", "-extfile", extensionsPath, "-out", self.path("\(name).crt"),
            ]
        )
    }

    private func path(_ name: String) -> String {
        self.directory.appendingPathComponent(name).path
    }
}
