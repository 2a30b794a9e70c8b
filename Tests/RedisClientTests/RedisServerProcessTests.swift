import TestSupport
import Testing

/// The fixture itself: it must really start, freeze, restart and stop `redis-server`, or the failure tests prove nothing.
@Suite struct RedisServerProcessTests {
    @Test func startPauseResumeRestartAndStop() async throws {
        let server = try await RedisServerProcess.start(extraArguments: ["--appendonly", "yes"])
        defer { server.removeDirectory() }
        let firstPID = try #require(server.pid)
        #expect(await RedisServerProcess.answersPingOffThePool(port: server.port))

        try server.pause()
        #expect(await RedisServerProcess.answersPingOffThePool(port: server.port) == false)
        try server.resume()
        #expect(await RedisServerProcess.answersPingOffThePool(port: server.port))

        try await server.restart()
        let secondPID = try #require(server.pid)
        #expect(secondPID != firstPID)
        #expect(await RedisServerProcess.answersPingOffThePool(port: server.port))

        // SIGTERM must reach redis-server (its signal mask is cleared at spawn): stop returns well before the SIGKILL fallback.
        let clock = ContinuousClock()
        let start = clock.now
        try await server.stop()
        #expect(clock.now - start < .seconds(5))
        #expect(server.pid == nil)
        #expect(await RedisServerProcess.answersPingOffThePool(port: server.port) == false)
    }

    @Test func killAndStopAPausedServer() async throws {
        try await withRedisServer { server in
            try await server.kill()
            #expect(server.pid == nil)
            try await server.restart()
            try server.pause()
            // stop() resumes a paused server so that it can act on SIGTERM.
            try await server.stop()
            #expect(server.pid == nil)
        }
    }

    @Test func requirepassServerCountsAsReady() async throws {
        try await withRedisServer(extraArguments: ["--requirepass", "x"]) { server in
            #expect(await RedisServerProcess.answersPingOffThePool(port: server.port))
        }
    }
}
