import ArgumentParser
import CMalloc
import Hummingbird
import Logging
import ServiceLifecycle
import SessionAPI
import UnixSignals

/// `session-api serve`: runs the HTTP server until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the HTTP server (the default).")

    @OptionGroup var global: GlobalOptions

    @Option(help: "Address to listen on (env API_HOST, default 0.0.0.0).")
    var host: String?

    @Option(help: "Port to listen on (env API_PORT, default 5000).")
    var port: Int?

    func run() async throws {
        Self.returnLargeBlocksToTheSystem()
        var configuration = try self.global.configuration()
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        var logger = Logger(label: "session-api", factory: AppLogHandler.factory(format: configuration.logFormat))
        logger.logLevel = configuration.logLevel
        let metrics = configuration.metricsPort.map { _ in AppMetrics() }
        let app: any ApplicationProtocol
        do {
            let stores = try await AppStores.open(configuration, logger: logger, metrics: metrics)
            app = try buildApplication(configuration, stores: stores, logger: logger, metrics: metrics)
        } catch let error as StoreError {
            throw CommandFailure("cannot open the stores: \(error.message)")
        } catch let error as ConfigurationError {
            throw CommandFailure("configuration: \(error)")
        }
        // SIGTERM/SIGINT: stop accepting, let in-flight requests finish for up to the bound, then cancel
        // what is left; the app's services (the Redis client) close after the server.
        var groupConfiguration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(configuration.shutdownTimeoutSeconds)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            // Typically the address is taken or not ours; say so in one line.
            throw CommandFailure("server stopped: \(error)")
        }
    }

    /// Argon2id's working memory (`PASSWORD_ARGON2_MEMORY_KIB`, 19 MiB by default) is one `malloc` per hash. glibc
    /// raises its mmap threshold (128 KiB at start) once such a block is freed, so later ones come from a heap and
    /// stay resident: about 20 MiB per hashing thread for good after the first logins. Setting the threshold, to its
    /// starting value, turns that off: every block of 128 KiB or more keeps a mapping of its own, returned to the
    /// system when it is freed (`scripts/bench-memory.py`; README, Performance).
    private static func returnLargeBlocksToTheSystem() {
        _ = mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    }
}
