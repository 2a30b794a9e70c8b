import Hummingbird
import Logging
import NIOCore

/// The metrics listener (`METRICS_PORT`, on `METRICS_HOST`, loopback by default): a second, tiny Hummingbird
/// server with `GET /metrics` only, run as one more service of the application, so it starts and stops with it
/// and a port it cannot bind stops the server at start-up. Kept off the API's port so that it is never exposed
/// with the API.
package func buildMetricsApplication(_ metrics: AppMetrics, host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
    let router = Router()
    router.get("/metrics") { _, _ -> Response in
        Response(
            status: .ok,
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.render()))
        )
    }
    return Application(
        router: router,
        server: .http1(configuration: .init(idleTimeout: .seconds(60))),
        configuration: .init(address: .hostname(host, port: port), serverName: "session-api-metrics"),
        logger: logger
    )
}
