import RedisClient
import ServiceLifecycle
import TestSupport
import Testing

/// The client as a swift-service-lifecycle `Service`.
@Suite struct RedisClientServiceTests {
    @Test func runsInAServiceGroupAndStopsOnGracefulShutdown() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: Integration.configuration(for: server), logger: Integration.logger)
            let group = ServiceGroup(services: [client], logger: Integration.logger)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask {
                    try await group.run()
                }
                #expect(try await client.ping() == "PONG")
                await group.triggerGracefulShutdown()
                // run() returns: the group finishes without an error.
                try await tasks.waitForAll()
            }
            let error = await Integration.errorOf { try await client.ping() }
            #expect(error?.code == .shutdown)
        }
    }
}
