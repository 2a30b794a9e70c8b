import Testing

@testable import RedisClient

@Suite struct RedisScriptTests {
    /// The digest is the one `SCRIPT LOAD` returns: lowercase hex SHA-1 of the source's UTF-8 bytes.
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        ("return redis.call('GET', KEYS[1])", "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f"),
    ])
    func scriptCarriesItsDigest(source: String, digest: String) {
        let script = RedisScript(source)
        #expect(script.sha1 == digest)
        #expect(script.source == source)
    }
}
