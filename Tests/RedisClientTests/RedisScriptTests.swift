import Testing

@testable import RedisClient

@Suite struct RedisScriptTests {
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
        ("return redis.call('GET', KEYS[1])", "d3c21d0c2b9ca22f82737626a27bcaf5d288f99f"),
    ])
    func sha1KnownVectors(input: String, digest: String) {
        #expect(SHA1.hexDigest(input.utf8) == digest)
    }

    @Test func sha1OfAMillionA() {
        #expect(SHA1.hexDigest([UInt8](repeating: 0x61, count: 1_000_000)) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func sha1AtBlockBoundaries() {
        // 55, 56, 63 and 64 bytes straddle the padding rules.
        #expect(SHA1.hexDigest([UInt8](repeating: 0x61, count: 55)) == "c1c8bbdc22796e28c0e15163d20899b65621d65a")
        #expect(SHA1.hexDigest([UInt8](repeating: 0x61, count: 56)) == "c2db330f6083854c99d4b5bfb6e8f29f201be699")
        #expect(SHA1.hexDigest([UInt8](repeating: 0x61, count: 64)) == "0098ba824b5c16427bd7a1122a5a442a25ec644d")
    }

    @Test func scriptCarriesItsDigest() {
        let script = RedisScript("return 1")
        #expect(script.sha1 == SHA1.hexDigest("return 1".utf8))
        #expect(script.sha1.count == 40)
    }
}
