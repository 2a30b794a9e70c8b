import RedisClient
import Testing

@Suite struct RedisClientConfigurationTests {
    @Test func hostOnlyUsesDefaults() throws {
        let configuration = try RedisClientConfiguration(url: "redis://cache.internal")
        #expect(configuration.endpoint == .tcp(host: "cache.internal", port: 6379))
        #expect(configuration.username == nil)
        #expect(configuration.password == nil)
        #expect(configuration.database == 0)
    }

    @Test func hostPortAndDatabase() throws {
        let configuration = try RedisClientConfiguration(url: "redis://127.0.0.1:6380/3")
        #expect(configuration.endpoint == .tcp(host: "127.0.0.1", port: 6380))
        #expect(configuration.database == 3)
        #expect(try RedisClientConfiguration(url: "redis://h:1/").database == 0)
        #expect(try RedisClientConfiguration(url: "REDIS://h").endpoint == .tcp(host: "h", port: 6379))
    }

    @Test func passwordOnly() throws {
        let configuration = try RedisClientConfiguration(url: "redis://:s3cret@localhost:6379")
        #expect(configuration.username == nil)
        #expect(configuration.password == "s3cret")
    }

    @Test func aclUserAndPercentDecoding() throws {
        let configuration = try RedisClientConfiguration(url: "redis://app%2Duser:p%40ss%3Aw%2Frd%25@10.0.0.5:7000/15")
        #expect(configuration.username == "app-user")
        #expect(configuration.password == "p@ss:w/rd%")
        #expect(configuration.endpoint == .tcp(host: "10.0.0.5", port: 7000))
        #expect(configuration.database == 15)
    }

    @Test func passwordWithAtSignUsesTheLastAt() throws {
        let configuration = try RedisClientConfiguration(url: "redis://:a@b@host")
        #expect(configuration.password == "a@b")
        #expect(configuration.endpoint == .tcp(host: "host", port: 6379))
    }

    @Test func ipv6() throws {
        #expect(try RedisClientConfiguration(url: "redis://[::1]:6390").endpoint == .tcp(host: "::1", port: 6390))
        #expect(try RedisClientConfiguration(url: "redis://[fe80::1]").endpoint == .tcp(host: "fe80::1", port: 6379))
    }

    @Test func unixSocket() throws {
        let configuration = try RedisClientConfiguration(url: "unix:///run/redis/redis.sock")
        #expect(configuration.endpoint == .unixSocket(path: "/run/redis/redis.sock"))
        #expect(configuration.database == 0)
        let withDatabase = try RedisClientConfiguration(url: "unix:///tmp/r.sock?db=4")
        #expect(withDatabase.endpoint == .unixSocket(path: "/tmp/r.sock"))
        #expect(withDatabase.database == 4)
        let withPassword = try RedisClientConfiguration(url: "unix://:pw@/tmp/r.sock")
        #expect(withPassword.password == "pw")
        #expect(withPassword.endpoint == .unixSocket(path: "/tmp/r.sock"))
    }

    @Test(arguments: [
        ("", "the URL is empty"),
        ("://host", "missing scheme"),
        ("localhost:6379", "expected redis://"),
        ("http://localhost", "unsupported scheme 'http://'"),
        ("rediss://localhost?ca", "query parameter 'ca' needs a value"),
        ("rediss://localhost?ca=", "query parameter 'ca' needs a value"),
        ("rediss://localhost?verify=maybe", "verify must be 'full' or 'none'"),
        ("rediss://localhost?cert=/c.pem", "cert= and key= go together"),
        ("rediss://localhost?key=/k.pem", "cert= and key= go together"),
        ("rediss://localhost?db=1", "unknown query parameter 'db'"),
        ("rediss://localhost?ca=%zz", "invalid percent-encoding in the value of 'ca'"),
        ("redis://host#x", "fragments are not supported"),
        ("redis://", "missing host"),
        ("redis://:6379", "missing host"),
        ("redis://host:", "missing port number"),
        ("redis://host:abc", "port 'abc' is not a number between 1 and 65535"),
        ("redis://host:0", "port '0' is not a number"),
        ("redis://host:65536", "port '65536' is not a number"),
        ("redis://host:-1", "port '-1' is not a number"),
        ("redis://host/x", "database 'x' is not a non-negative integer"),
        ("redis://host/-1", "database '-1' is not a non-negative integer"),
        ("redis://host/1/2", "database '1/2' is not a non-negative integer"),
        ("redis://host?db=1", "query parameters are not supported in redis:// URLs"),
        ("redis://ho st", "host 'ho st' contains characters"),
        ("redis://::1:6379", "IPv6 address must be written in brackets"),
        ("redis://[::1", "missing ']'"),
        ("redis://[::1]x", "unexpected 'x' after the IPv6 address"),
        ("redis://user:@host", "empty password"),
        ("redis://:p%zz@host", "invalid percent-encoding"),
        ("unix://relative.sock", "absolute socket path"),
        ("unix://", "absolute socket path"),
        ("unix:///", "missing socket path"),
        ("unix:///tmp/r.sock?db=x", "database 'x'"),
        ("unix:///tmp/r.sock?password=x", "unknown query parameter 'password'"),
    ])
    func malformedURLsNameTheProblem(url: String, expected: String) {
        let error = #expect(throws: RedisClientError.self) { try RedisClientConfiguration(url: url) }
        #expect(error?.code == .invalidURL)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error")")
        #expect(error?.message.contains("\n") == false)
    }

    @Test func errorMessagesHidePasswords() {
        let error = #expect(throws: RedisClientError.self) { try RedisClientConfiguration(url: "redis://user:hunter2@host:port") }
        #expect(error?.message.contains("hunter2") == false)
        #expect(error?.message.contains("redis://user:***@host:port") == true)
        // Credentials without ':' may be a password: it must not be echoed either.
        let bare = #expect(throws: RedisClientError.self) { try RedisClientConfiguration(url: "redis://hunter2@host") }
        #expect(bare?.message.contains("hunter2") == false)
    }

    @Test func redissWithoutParametersVerifiesAgainstTheSystemTrustStore() throws {
        let configuration = try RedisClientConfiguration(url: "rediss://:pw@cache.example.com/1")
        #expect(configuration.endpoint == .tcp(host: "cache.example.com", port: 6379))
        #expect(configuration.password == "pw")
        #expect(configuration.database == 1)
        #expect(configuration.tls == RedisClientConfiguration.TLS())
        #expect(configuration.tls?.verification == .full)
        #expect(try RedisClientConfiguration(url: "redis://h").tls == nil)
    }

    @Test func redissQueryParametersFillTheTLSSettings() throws {
        let configuration = try RedisClientConfiguration(
            url: "rediss://u:p@10.0.0.7:6380/0?ca=/etc/ssl/ca%20bundle.pem&cert=/etc/app/c.pem&key=/etc/app/k.pem&sni=redis.internal"
        )
        #expect(configuration.endpoint == .tcp(host: "10.0.0.7", port: 6380))
        let tls = try #require(configuration.tls)
        #expect(tls.caCertificatePath == "/etc/ssl/ca bundle.pem")
        #expect(tls.certificatePath == "/etc/app/c.pem")
        #expect(tls.privateKeyPath == "/etc/app/k.pem")
        #expect(tls.serverName == "redis.internal")
        #expect(tls.verification == .full)
        let insecure = try RedisClientConfiguration(url: "rediss://h?verify=none")
        #expect(insecure.tls?.verification == RedisClientConfiguration.TLS.Verification.none)
        #expect(
            configuration.description
                == "rediss://u:***@10.0.0.7:6380/0?ca=/etc/ssl/ca bundle.pem&cert=/etc/app/c.pem&key=/etc/app/k.pem&sni=redis.internal"
        )
    }

    @Test func endpointListsForSentinelsAndClusterNodes() throws {
        let endpoints = try RedisClientConfiguration.Endpoint.list("10.0.0.1:26380, sentinel-b ,[::1]:26381", defaultPort: 26379)
        #expect(endpoints == [.tcp(host: "10.0.0.1", port: 26380), .tcp(host: "sentinel-b", port: 26379), .tcp(host: "::1", port: 26381)])
        for (list, expected) in [("", "an entry is empty"), ("a,,b", "an entry is empty"), ("a:0", "port '0'"), ("a b", "host 'a b'")] {
            let error = #expect(throws: RedisClientError.self) { try RedisClientConfiguration.Endpoint.list(list, defaultPort: 6379) }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains(expected) == true, "\(error?.message ?? "no error")")
        }
    }

    @Test func topologiesAreValidatedAndDescribed() throws {
        var configuration = try RedisClientConfiguration(url: "redis://:pw@ignored/0")
        configuration.topology = .sentinel(.init(endpoints: [.tcp(host: "s1", port: 26379)], masterName: "sessions", password: "sentinel-pw"))
        try configuration.validate()
        #expect(configuration.topology.sentinel?.masterName == "sessions")
        #expect(configuration.description == "redis://:***@<master>/0 (sentinel master 'sessions' via s1:26379)")
        #expect(!configuration.description.contains("sentinel-pw"))

        configuration.topology = .sentinel(.init(endpoints: [], masterName: "sessions"))
        #expect(throws: RedisClientError.self) { try configuration.validate() }
        configuration.topology = .sentinel(.init(endpoints: [.tcp(host: "s1")], masterName: ""))
        #expect(throws: RedisClientError.self) { try configuration.validate() }

        configuration.topology = .cluster(.init(seeds: [.tcp(host: "n1", port: 7000)]))
        try configuration.validate()
        configuration.database = 1
        let error = #expect(throws: RedisClientError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("only database 0") == true)
    }

    @Test func descriptionHidesThePassword() throws {
        let configuration = try RedisClientConfiguration(url: "redis://alice:hunter2@host:6380/2")
        #expect(configuration.description == "redis://alice:***@host:6380/2")
        #expect(try RedisClientConfiguration(url: "unix:///tmp/r.sock?db=1").description == "unix:///tmp/r.sock?db=1")
    }
}
