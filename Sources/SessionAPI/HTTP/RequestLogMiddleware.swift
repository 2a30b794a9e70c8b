import HTTPTypes
import Hummingbird
import Logging

/// The edge of every request: finds the client's address, gives the request its id (an incoming `X-Request-Id`
/// that is sane, else Hummingbird's `hb.request.id`) and sends it back in `X-Request-Id`, then writes one access
/// line at `info` (method, route, status, duration, client address; never a header, cookie or body) and counts the
/// request in the metrics (`METRICS_PORT`), logins by outcome included.
package struct RequestLogMiddleware: RouterMiddleware {
    package typealias Context = AppRequestContext

    static let requestIDField = HTTPField.Name("X-Request-Id")!
    /// The longest incoming request id kept; a longer one is replaced.
    static let maximumRequestIDLength = 128

    let clientAddress: ClientAddress
    let metrics: AppMetrics?

    package init(clientAddress: ClientAddress, metrics: AppMetrics? = nil) {
        self.clientAddress = clientAddress
        self.metrics = metrics
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.clientIP = self.clientAddress.address(of: request, context: context)
        let requestID: String
        if let incoming = request.headers[Self.requestIDField], Self.isSane(incoming) {
            requestID = incoming
            // Every line of this request carries the caller's id (set only then: a metadata change has a cost).
            context.logger[metadataKey: "hb.request.id"] = .string(incoming)
        } else {
            requestID = context.id
        }
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // ErrorMiddleware answers nearly everything; what gets past it is logged and counted with its status.
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            self.record(request, context: context, requestID: requestID, status: status.code, since: start)
            throw error
        }
        response.headers[Self.requestIDField] = requestID
        self.record(request, context: context, requestID: requestID, status: response.status.code, since: start)
        return response
    }

    /// The access line and the metrics of one request.
    private func record(_ request: Request, context: Context, requestID: String, status: Int, since start: ContinuousClock.Instant) {
        let logs = context.logger.logLevel <= .info
        guard logs || self.metrics != nil else { return }
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "NotFound"
        let method = request.method.rawValue
        if let metrics = self.metrics {
            metrics.recordRequest(route: route, method: method, status: status, duration: elapsed)
            if route == "/api/v1/auth_session/login", request.method == .post { metrics.recordLogin(Self.loginOutcome(status: status)) }
        }
        guard logs else { return }
        let entry = AccessLogEntry(
            clientIP: context.clientIP ?? "-",
            duration: elapsed,
            requestID: requestID,
            method: method,
            route: route,
            status: status
        )
        // The server's own handler writes the line from the entry's values; any other gets ordinary metadata.
        if let handler = context.logger.handler as? AppLogHandler, handler.logAccess(entry) { return }
        context.logger.info(AccessLogEntry.message, metadata: entry.metadata)
    }

    /// How a login ended, from its status: the original's statuses tell every outcome apart.
    static func loginOutcome(status: Int) -> AppMetrics.LoginOutcome {
        switch status {
        case 200: .success
        case 401: .wrongPassword
        case 404: .unknownUser
        case 400, 413, 415: .invalid
        case 429: .throttled
        case 503: .unavailable
        default: .error
        }
    }

    /// An id a caller may choose: 1 to 128 characters from `A-Z a-z 0-9 - _ . : + / =` (UUIDs, hex, base64 and
    /// the usual tracing ids), so that it can go into a log line or header as it is.
    static func isSane(_ id: String) -> Bool {
        let bytes = id.utf8
        guard !bytes.isEmpty, bytes.count <= Self.maximumRequestIDLength else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="):
                true
            default:
                false
            }
        }
    }
}
