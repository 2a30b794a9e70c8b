import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SessionAPI
import Testing

/// `TRUSTED_PROXIES` and `X-Forwarded-For`: believed only from a trusted peer, and never further than the
/// nearest address that is not itself a trusted proxy.
@Suite struct ClientAddressTests {
    @Test func networksMatchTheirAddresses() throws {
        let v4 = try #require(IPNetwork("10.1.0.0/16"))
        #expect(v4.contains("10.1.255.7"))
        #expect(!v4.contains("10.2.0.1"))
        #expect(!v4.contains("::1"))
        let host = try #require(IPNetwork("127.0.0.1"))
        #expect(host.contains("127.0.0.1"))
        #expect(!host.contains("127.0.0.2"))
        let v6 = try #require(IPNetwork("fd00::/8"))
        #expect(v6.contains("fd12:3456::1"))
        #expect(!v6.contains("fe80::1"))
        #expect(try #require(IPNetwork("0.0.0.0/0")).contains("203.0.113.9"))
        for bad in ["", "10.0.0.0/33", "::/129", "host.example", "10.0.0.0/x", "1.2.3"] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
    }

    @Test func configurationParsesTheList() throws {
        let configuration = try AppConfiguration(environment: ["TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1"])
        #expect(configuration.trustedProxies.count == 3)
        #expect(throws: ConfigurationError.self) { try AppConfiguration(environment: ["TRUSTED_PROXIES": "127.0.0.1,nope"]) }
    }

    /// The address a request from the test client (peer 127.0.0.1 over a real socket) is given.
    static func clientIP(trusting proxies: [String], forwardedFor: [String]) async throws -> String {
        let router = Router(context: AppRequestContext.self)
        let resolver = ClientAddress(trustedProxies: proxies.compactMap { IPNetwork($0) })
        router.get("/ip") { request, context in resolver.address(of: request, context: context) ?? "none" }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            var headers = HTTPFields()
            for value in forwardedFor { headers.append(HTTPField(name: HTTPField.Name("X-Forwarded-For")!, value: value)) }
            return String(buffer: try await client.execute(uri: "/ip", method: .get, headers: headers).body)
        }
    }

    @Test func forwardedForIsIgnoredFromAnUntrustedPeer() async throws {
        #expect(try await Self.clientIP(trusting: [], forwardedFor: ["203.0.113.9"]) == "127.0.0.1")
        #expect(try await Self.clientIP(trusting: ["10.0.0.0/8"], forwardedFor: ["203.0.113.9"]) == "127.0.0.1")
    }

    @Test func forwardedForIsBelievedFromATrustedPeer() async throws {
        #expect(try await Self.clientIP(trusting: ["127.0.0.1"], forwardedFor: ["203.0.113.9"]) == "203.0.113.9")
        // The nearest untrusted hop wins: a client cannot pick its address by sending its own header.
        #expect(try await Self.clientIP(trusting: ["127.0.0.1"], forwardedFor: ["198.51.100.1, 203.0.113.9"]) == "203.0.113.9")
        #expect(try await Self.clientIP(trusting: ["127.0.0.1", "10.0.0.0/8"], forwardedFor: ["203.0.113.9", "10.0.0.2"]) == "203.0.113.9")
        // No header, or garbage in it: the peer itself.
        #expect(try await Self.clientIP(trusting: ["127.0.0.1"], forwardedFor: []) == "127.0.0.1")
        #expect(try await Self.clientIP(trusting: ["127.0.0.1"], forwardedFor: ["not-an-ip"]) == "127.0.0.1")
    }
}
