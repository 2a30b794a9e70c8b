import ArgumentParser
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
}
