import Foundation

/// One master, one replica and three Sentinels on free 127.0.0.1 ports, each in its own temporary directory, for
/// failover tests. The Sentinels monitor the master as ``masterName`` with quorum 2 and fast timeouts
/// (`down-after-milliseconds 1000`, `failover-timeout 3000`), so a killed master is replaced within a few seconds.
///
/// It waits, with `redis-cli`, until the replica is in sync and every Sentinel knows the replica and the two other
/// Sentinels, so a failover can happen as soon as a test kills the master. ``stop()`` stops every process by PID.
package final class RedisSentinelFixture: Sendable {
    /// The name the Sentinels monitor the master under.
    package let masterName = "m"
    /// The master at start-up.
    package let master: RedisServerProcess
    /// The replica at start-up (the master after a failover).
    package let replica: RedisServerProcess
    package let sentinels: [RedisServerProcess]
    /// The data password (`requirepass` and `masterauth` of master and replica), if any.
    package let password: String?
    /// The Sentinels' own `requirepass`, if any.
    package let sentinelPassword: String?

    private init(
        master: RedisServerProcess,
        replica: RedisServerProcess,
        sentinels: [RedisServerProcess],
        password: String?,
        sentinelPassword: String?
    ) {
        self.master = master
        self.replica = replica
        self.sentinels = sentinels
        self.password = password
        self.sentinelPassword = sentinelPassword
    }

    /// Starts the five processes and waits until a failover could happen.
    /// - Parameters:
    ///   - password: A data password for master and replica, or `nil`.
    ///   - sentinelPassword: A password for the Sentinels themselves, or `nil`.
    ///   - tls: Every process serves TLS only with these certificates (replication and the Sentinels' own connections
    ///     too: `tls-replication yes`).
    ///   - readyForFailover: Wait until every Sentinel knows the replica and the other two (a few seconds: they meet
    ///     through hello messages every 2 s); otherwise only until each one names the master, enough for tests that
    ///     do not kill it.
    package static func start(
        password: String? = nil,
        sentinelPassword: String? = nil,
        tls: RedisServerProcess.TLSOptions? = nil,
        readyForFailover: Bool = true
    ) async throws -> RedisSentinelFixture {
        var dataArguments: [String] = []
        if let password {
            dataArguments += ["--requirepass", password, "--masterauth", password]
        }
        if tls != nil {
            dataArguments += ["--tls-replication", "yes"]
        }
        let master = try await RedisServerProcess.start(extraArguments: dataArguments, tls: tls)
        var started = [master]
        do {
            let replica = try await RedisServerProcess.start(
                extraArguments: dataArguments + ["--replicaof", "127.0.0.1", "\(master.port)"],
                tls: tls
            )
            started.append(replica)
            try await Self.poll("the replica to sync with the master") {
                try await replica.cli(["INFO", "replication"], password: password).contains("master_link_status:up")
            }
            var configuration = """
                sentinel monitor m 127.0.0.1 \(master.port) 2
                sentinel down-after-milliseconds m 1000
                sentinel failover-timeout m 3000
                sentinel parallel-syncs m 1

                """
            if let password {
                configuration += "sentinel auth-pass m \(password)\n"
            }
            if let sentinelPassword {
                configuration += "requirepass \(sentinelPassword)\nsentinel sentinel-pass \(sentinelPassword)\n"
            }
            if tls != nil {
                configuration += "tls-replication yes\n"
            }
            var sentinels: [RedisServerProcess] = []
            for _ in 0..<3 {
                let sentinel = try await RedisServerProcess.start(tls: tls, sentinelConfiguration: configuration)
                started.append(sentinel)
                sentinels.append(sentinel)
            }
            let fixture = RedisSentinelFixture(
                master: master,
                replica: replica,
                sentinels: sentinels,
                password: password,
                sentinelPassword: sentinelPassword
            )
            if readyForFailover {
                try await fixture.waitUntilEverySentinelKnowsEverything(master: master)
            } else {
                for sentinel in sentinels {
                    try await Self.poll("Sentinel \(sentinel.port) to name the master") {
                        try await fixture.reportedMasterPort(by: sentinel) == master.port
                    }
                }
            }
            return fixture
        } catch {
            for server in started {
                try? await server.stop()
                server.removeDirectory()
            }
            throw error
        }
    }

    /// The Sentinels' endpoints as `REDIS_SENTINELS` would list them.
    package var sentinelList: String {
        self.sentinels.map { "127.0.0.1:\($0.port)" }.joined(separator: ",")
    }

    /// Stops every process by PID and deletes their directories.
    package func stop() async {
        for server in self.sentinels + [self.master, self.replica] {
            try? await server.stop()
            server.removeDirectory()
        }
    }

    /// Runs `command` on every Sentinel with `redis-cli`.
    package func onEverySentinel(_ command: [String]) async throws {
        for sentinel in self.sentinels {
            try await sentinel.cli(command, password: self.sentinelPassword)
        }
    }

    /// The master's port as a Sentinel reports it.
    package func reportedMasterPort(by sentinel: RedisServerProcess) async throws -> Int? {
        let lines = try await sentinel.cli(["SENTINEL", "get-master-addr-by-name", self.masterName], password: self.sentinelPassword)
            .split(separator: "\n")
        return lines.count == 2 ? Int(lines[1].trimmingCharacters(in: .whitespaces)) : nil
    }

    /// Waits until every Sentinel monitors `master` with one replica and two other Sentinels, so it can vote.
    package func waitUntilEverySentinelKnowsEverything(master: RedisServerProcess) async throws {
        for sentinel in self.sentinels {
            try await Self.poll("Sentinel \(sentinel.port) to know the replica and the other Sentinels") {
                let fields = try await sentinel.cli(["SENTINEL", "master", self.masterName], password: self.sentinelPassword)
                    .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                func field(_ name: String) -> String? {
                    fields.firstIndex(of: name).flatMap { $0 + 1 < fields.count ? fields[$0 + 1] : nil }
                }
                return field("port") == "\(master.port)" && field("num-slaves") == "1" && field("num-other-sentinels") == "2"
                    && field("flags") == "master"
            }
        }
    }

    /// Polls `condition` every 50 ms until it holds, at most `limit`.
    /// - Throws: ``RedisServerProcessError`` naming `what` when it did not hold in time.
    package static func poll(
        _ what: String,
        within limit: Duration = .seconds(30),
        isolation: isolated (any Actor)? = #isolation,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + limit
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try await condition() { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisServerProcessError("timed out after \(limit) waiting for \(what)\(lastError.map { ": \($0)" } ?? "")")
    }
}

extension RedisServerProcess {
    /// Runs `redis-cli -h 127.0.0.1 -p PORT command...` against this server and returns its output (one line per
    /// reply element).
    @discardableResult
    package func cli(_ command: [String], password: String? = nil) async throws -> String {
        var arguments = ["-h", "127.0.0.1", "-p", "\(self.port)"]
        if let tls = self.tls {
            arguments += ["--tls", "--cacert", tls.caCertificatePath]
            if tls.requireClientCertificates {
                // The server's own certificate does as a client certificate: it chains to the same CA.
                arguments += ["--cert", tls.certificatePath, "--key", tls.privateKeyPath]
            }
        }
        if let password {
            arguments += ["-a", password, "--no-auth-warning"]
        }
        return try await Self.runTool("redis-cli", arguments + command, timeout: .seconds(10))
    }
}
