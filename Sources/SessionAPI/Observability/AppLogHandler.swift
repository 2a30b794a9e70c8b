import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The server's log lines, one `write(2)` each: swift-log's text layout (`LOG_FORMAT=text`, the default) or one
/// JSON object a line (`LOG_FORMAT=json`).
///
/// Made for the access log's hot path: setting metadata only stores it (swift-log's `StreamLogHandler` renders the
/// whole set again on every change, and Hummingbird sets `hb.request.id` on every request), and a line is rendered
/// once, into one buffer, with the logger's and the call's metadata read side by side rather than merged into a new
/// dictionary first.
package struct AppLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    package var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: LogFormat
    let output: LogOutput
    let clock: LogClock

    package init(label: String, format: LogFormat, output: LogOutput = .standardError) {
        self.init(label: label, format: format, output: output, clock: LogClock())
    }

    init(label: String, format: LogFormat, output: LogOutput, clock: LogClock) {
        self.label = label
        self.format = format
        self.output = output
        self.clock = clock
    }

    /// Handlers in `format` writing to `output` (sharing one clock), for `Logger(label:factory:)` or `LoggingSystem.bootstrap`.
    package static func factory(format: LogFormat, output: LogOutput = .standardError) -> @Sendable (String) -> any LogHandler {
        let clock = LogClock()
        return { label in AppLogHandler(label: label, format: format, output: output, clock: clock) }
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields: [(key: String, value: Logger.MetadataValue)] = []
        let provided = self.metadataProvider?.get() ?? [:]
        fields.reserveCapacity(self.metadata.count + provided.count + (event.metadata?.count ?? 0) + 2)
        // Later sources win: the logger's, the provider's, the call's.
        for (key, value) in self.metadata where provided[key] == nil && event.metadata?[key] == nil { fields.append((key, value)) }
        for (key, value) in provided where event.metadata?[key] == nil { fields.append((key, value)) }
        if let explicit = event.metadata { fields.append(contentsOf: explicit.lazy.map { ($0.key, $0.value) }) }
        if let error = event.error {
            fields.append(("error.message", .string("\(error)")))
            fields.append(("error.type", .string(String(reflecting: type(of: error)))))
        }
        fields.sort { $0.key < $1.key }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        switch self.format {
        case .text: self.writeText(event, fields, into: &line)
        case .json: self.writeJSON(event, fields, into: &line)
        }
        line.append(UInt8(ascii: "\n"))
        self.output.write(line)
    }

    /// `2026-11-25T03:57:46+0000 info session-api: key=value ... [SessionAPI] message`, as `StreamLogHandler` writes it.
    private func writeText(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)], into line: inout [UInt8]) {
        line.append(contentsOf: self.clock.localText().utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        if !self.label.isEmpty {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: self.label.utf8)
        }
        line.append(UInt8(ascii: ":"))
        for field in fields {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: field.key.utf8)
            line.append(UInt8(ascii: "="))
            if case .string(let text) = field.value {
                Self.appendText(text, to: &line)
            } else {
                Self.appendText(field.value.description, to: &line)
            }
        }
        line.append(contentsOf: " [".utf8)
        line.append(contentsOf: event.source.utf8)
        line.append(contentsOf: "] ".utf8)
        Self.appendText(event.message.description, to: &line)
    }

    /// Text as it is, but control characters as `\n`-style escapes, so that no value can start a line of its own.
    static func appendText(_ text: String, to line: inout [UInt8]) {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            line.append(contentsOf: text.utf8)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case 0x0A: line.append(contentsOf: #"\n"#.utf8)
            case 0x0D: line.append(contentsOf: #"\r"#.utf8)
            case 0x09: line.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20, 0x7F: line.append(contentsOf: "\\x\(byte < 0x10 ? "0" : "")\(String(byte, radix: 16))".utf8)
            default: line.append(byte)
            }
        }
    }

    /// `{"timestamp":"2026-11-25T03:57:46.123Z","level":"info","label":…,"source":…,"message":…,<metadata>…}`: the
    /// metadata's keys at the top level (one that clashes with a fixed key gets a `metadata.` prefix); whole numbers
    /// and decimals as JSON numbers, other values as strings, arrays and objects.
    private func writeJSON(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)], into line: inout [UInt8]) {
        line.append(contentsOf: #"{"timestamp":""#.utf8)
        line.append(contentsOf: self.clock.utcText().utf8)
        line.append(contentsOf: #"","level":""#.utf8)
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(contentsOf: #"","label":"#.utf8)
        JSONLine.writeString(self.label, into: &line)
        line.append(contentsOf: #","source":"#.utf8)
        JSONLine.writeString(event.source, into: &line)
        line.append(contentsOf: #","message":"#.utf8)
        JSONLine.writeString(event.message.description, into: &line)
        for field in fields {
            line.append(UInt8(ascii: ","))
            JSONLine.writeString(Self.fixedKeys.contains(field.key) ? "metadata." + field.key : field.key, into: &line)
            line.append(UInt8(ascii: ":"))
            JSONLine.writeValue(field.value, into: &line)
        }
        line.append(UInt8(ascii: "}"))
    }

    private static let fixedKeys: Set<String> = ["timestamp", "level", "label", "source", "message"]
}

/// Where log lines go: stderr by default (as swift-log's default handler), or a function (tests).
package struct LogOutput: Sendable {
    package let write: @Sendable ([UInt8]) -> Void

    package init(write: @escaping @Sendable ([UInt8]) -> Void) {
        self.write = write
    }

    /// stderr through a new `LogWriter`: whole lines, in groups under load. Each use makes a writer: the handlers of
    /// one `AppLogHandler.factory` share the one its default argument made.
    package static var standardError: LogOutput {
        let writer = LogWriter(descriptor: STDERR_FILENO)
        return LogOutput { line in writer.write(line) }
    }
}

/// Writes whole lines to a file descriptor, in groups: a line that comes while another thread is in `write(2)` is
/// added to a pending buffer, and that thread writes the buffer next, before it returns. So lines are never held
/// back (each is written before the call that wrote the last one returns), a burst costs one system call for many
/// lines rather than one each, and no thread waits on another's system call (only, briefly, on the buffer's lock).
package final class LogWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var isWriting = false
    }

    private let descriptor: Int32
    private let state = Mutex(State())
    /// Past this many pending bytes a line is written by its own thread rather than added (bounds the buffer).
    private static let maximumPending = 1 << 20

    package init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    package func write(_ line: [UInt8]) {
        let mine: Bool = self.state.withLock { state in
            guard state.isWriting, state.pending.count < Self.maximumPending else {
                state.isWriting = true
                return true
            }
            state.pending.append(contentsOf: line)
            return false
        }
        guard mine else { return }
        var chunk = line
        while true {
            Self.writeAll(chunk, to: self.descriptor)
            let next: [UInt8]? = self.state.withLock { state in
                guard !state.pending.isEmpty else {
                    state.isWriting = false
                    return nil
                }
                let taken = state.pending
                state.pending = []
                return taken
            }
            guard let next else { return }
            chunk = next
        }
    }

    /// `write(2)` until every byte is written (after a short write or EINTR), or an error.
    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count, let base = buffer.baseAddress {
                let written = Glibc.write(descriptor, base + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += written
            }
        }
    }
}

/// The time stamps of log lines, each rendered once a second rather than once a line.
final class LogClock: Sendable {
    private struct Cached {
        var second = -1
        var local = ""
        var utc = ""
    }

    private let cache = Mutex(Cached())

    /// `2026-11-25T03:57:46+0000` in local time, as `StreamLogHandler` writes it.
    func localText() -> String {
        let now = time(nil)
        return self.cache.withLock { cached in
            self.refresh(&cached, now)
            return cached.local
        }
    }

    /// `2026-11-25T03:57:46.123Z`: UTC with milliseconds.
    func utcText() -> String {
        let now = Date().timeIntervalSince1970
        let whole = now.rounded(.down)
        let seconds = self.cache.withLock { cached in
            self.refresh(&cached, time_t(whole))
            return cached.utc
        }
        let milliseconds = min(999, Int((now - whole) * 1000))
        return seconds + (milliseconds < 10 ? ".00" : milliseconds < 100 ? ".0" : ".") + String(milliseconds) + "Z"
    }

    private func refresh(_ cached: inout Cached, _ now: time_t) {
        guard cached.second != Int(now) else { return }
        var seconds = now
        var parts = tm()
        cached.second = Int(now)
        cached.local = localtime_r(&seconds, &parts) == nil ? "<unknown>" : Self.format(&parts, "%Y-%m-%dT%H:%M:%S%z")
        cached.utc = gmtime_r(&seconds, &parts) == nil ? "<unknown>" : Self.format(&parts, "%Y-%m-%dT%H:%M:%S")
    }

    private static func format(_ parts: inout tm, _ pattern: String) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// JSON for log lines: strings escaped as `JSONText` escapes them, metadata values by their kind.
enum JSONLine {
    static func writeString(_ text: String, into output: inout [UInt8]) {
        JSONText.writeString(text, into: &output)
    }

    static func writeValue(_ value: Logger.MetadataValue, into output: inout [UInt8]) {
        switch value {
        case .string(let text):
            JSONText.writeString(text, into: &output)
        case .stringConvertible(let convertible):
            // Concrete casts first: a cast to an existential (`any BinaryInteger`) costs several times more.
            switch convertible {
            case let number as Int:
                output.append(contentsOf: String(number).utf8)
            case let milliseconds as AccessLogEntry.Milliseconds:
                milliseconds.write(into: &output)
            case let number as Double where number.isFinite:
                output.append(contentsOf: number.description.utf8)
            case let number as any BinaryInteger:
                output.append(contentsOf: "\(number)".utf8)
            default:
                JSONText.writeString(convertible.description, into: &output)
            }
        case .array(let values):
            output.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                Self.writeValue(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .dictionary(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONText.writeString(member.key, into: &output)
                output.append(UInt8(ascii: ":"))
                Self.writeValue(member.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }
}
