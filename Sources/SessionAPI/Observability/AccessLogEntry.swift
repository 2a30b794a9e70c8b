import Logging

/// One access line's values, typed, so that `AppLogHandler` can write the line straight into its buffer: no metadata
/// dictionary to build, merge and sort, no value rendered twice (the request id is the one already sent back).
package struct AccessLogEntry: Sendable {
    package var clientIP: String
    package var duration: Duration
    package var requestID: String
    package var method: String
    package var route: String
    package var status: Int

    package init(clientIP: String, duration: Duration, requestID: String, method: String, route: String, status: Int) {
        self.clientIP = clientIP
        self.duration = duration
        self.requestID = requestID
        self.method = method
        self.route = route
        self.status = status
    }

    /// The message of every access line.
    package static let message: Logger.Message = "request"

    /// The line's fields as metadata, for a logger whose handler is not an `AppLogHandler` (or cannot take its fast
    /// path): the same keys and values the fast path writes.
    package var metadata: Logger.Metadata {
        [
            "client_ip": .string(self.clientIP),
            "duration_ms": .stringConvertible(Milliseconds(self.duration)),
            "method": .string(self.method),
            "route": .string(self.route),
            "status": .stringConvertible(self.status),
        ]
    }

    /// A duration in milliseconds with three decimals (`0.412`, `12.500`): a JSON number, written without `Double`.
    package struct Milliseconds: CustomStringConvertible, Sendable {
        let microseconds: Int64

        init(_ duration: Duration) {
            let (seconds, attoseconds) = duration.components
            self.microseconds = max(0, seconds * 1_000_000 + attoseconds / 1_000_000_000_000)
        }

        package var description: String {
            var bytes: [UInt8] = []
            self.write(into: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }

        func write(into output: inout [UInt8]) {
            AccessLogEntry.writeDecimal(self.microseconds / 1000, into: &output)
            output.append(UInt8(ascii: "."))
            let fraction = Int(self.microseconds % 1000)
            output.append(UInt8(ascii: "0") + UInt8(fraction / 100))
            output.append(UInt8(ascii: "0") + UInt8(fraction / 10 % 10))
            output.append(UInt8(ascii: "0") + UInt8(fraction % 10))
        }
    }

    /// A non-negative whole number's digits.
    static func writeDecimal(_ value: Int64, into output: inout [UInt8]) {
        guard value >= 10 else {
            output.append(UInt8(ascii: "0") + UInt8(max(0, value)))
            return
        }
        Self.writeDecimal(value / 10, into: &output)
        output.append(UInt8(ascii: "0") + UInt8(value % 10))
    }
}

extension AppLogHandler {
    /// Writes `entry` as an access line at `info`, exactly as `Logger.info(AccessLogEntry.message, metadata:
    /// entry.metadata)` would through this handler (with `hb.request.id` the entry's id), but with no dictionary.
    /// - Returns: `false`, having written nothing, when the logger's level is above `info` or it carries metadata
    ///   other than `hb.request.id` or a metadata provider: the caller logs the entry the ordinary way then.
    package func logAccess(_ entry: AccessLogEntry) -> Bool {
        guard self.logLevel <= .info, self.metadataProvider == nil, self.metadata.keys.allSatisfy({ $0 == "hb.request.id" }) else {
            return false
        }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch self.format {
        case .text:
            line.append(contentsOf: self.clock.localText().utf8)
            line.append(contentsOf: " info".utf8)
            if !self.label.isEmpty {
                line.append(UInt8(ascii: " "))
                line.append(contentsOf: self.label.utf8)
            }
            line.append(contentsOf: ": client_ip=".utf8)
            Self.appendText(entry.clientIP, to: &line)
            line.append(contentsOf: " duration_ms=".utf8)
            AccessLogEntry.Milliseconds(entry.duration).write(into: &line)
            line.append(contentsOf: " hb.request.id=".utf8)
            Self.appendText(entry.requestID, to: &line)
            line.append(contentsOf: " method=".utf8)
            Self.appendText(entry.method, to: &line)
            line.append(contentsOf: " route=".utf8)
            Self.appendText(entry.route, to: &line)
            line.append(contentsOf: " status=".utf8)
            AccessLogEntry.writeDecimal(Int64(entry.status), into: &line)
            line.append(contentsOf: " [SessionAPI] request".utf8)
        case .json:
            line.append(contentsOf: #"{"timestamp":""#.utf8)
            line.append(contentsOf: self.clock.utcText().utf8)
            line.append(contentsOf: #"","level":"info","label":"#.utf8)
            JSONText.writeString(self.label, into: &line)
            line.append(contentsOf: #","source":"SessionAPI","message":"request","client_ip":"#.utf8)
            JSONText.writeString(entry.clientIP, into: &line)
            line.append(contentsOf: #","duration_ms":"#.utf8)
            AccessLogEntry.Milliseconds(entry.duration).write(into: &line)
            line.append(contentsOf: #","hb.request.id":"#.utf8)
            JSONText.writeString(entry.requestID, into: &line)
            line.append(contentsOf: #","method":"#.utf8)
            JSONText.writeString(entry.method, into: &line)
            line.append(contentsOf: #","route":"#.utf8)
            JSONText.writeString(entry.route, into: &line)
            line.append(contentsOf: #","status":"#.utf8)
            AccessLogEntry.writeDecimal(Int64(entry.status), into: &line)
            line.append(UInt8(ascii: "}"))
        }
        line.append(UInt8(ascii: "\n"))
        self.output.write(line)
        return true
    }
}
