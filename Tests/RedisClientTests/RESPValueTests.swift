import RedisClient
import Testing

@Suite struct RESPValueTests {
    @Test func equality() {
        #expect(RESPValue.integer(1) == .integer(1))
    }
}
