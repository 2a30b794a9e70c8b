import Logging
import NIOEmbedded
import Testing

@testable import RedisClient

@Suite struct RedisClientBackoffTests {
    private func client(initial: Duration, maximum: Duration) -> RedisClient {
        RedisClient(
            configuration: RedisClientConfiguration(reconnectBackoff: .init(initial: initial, maximum: maximum)),
            eventLoopGroup: EmbeddedEventLoop(),
            logger: Logger(label: "test")
        )
    }

    @Test func doublesFromTheInitialWaitUpToTheMaximumWithJitter() {
        let client = self.client(initial: .milliseconds(50), maximum: .seconds(2))
        let expectedCeilings: [Duration] = [
            .milliseconds(50), .milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
            .milliseconds(1600), .seconds(2), .seconds(2), .seconds(2),
        ]
        for (failures, ceiling) in expectedCeilings.enumerated() {
            for _ in 0..<50 {
                let wait = client.backoff(afterFailures: failures)
                #expect(wait >= ceiling / 2 - .microseconds(1) && wait <= ceiling + .microseconds(1), "after \(failures) failures: \(wait)")
            }
        }
        #expect(client.backoff(afterFailures: 10_000) <= .seconds(2) + .microseconds(1))
    }

    @Test func zeroBackoffMeansRetryAtOnce() {
        #expect(self.client(initial: .zero, maximum: .zero).backoff(afterFailures: 3) == .zero)
    }
}
