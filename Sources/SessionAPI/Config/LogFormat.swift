/// How log lines are written, chosen by `LOG_FORMAT`.
package enum LogFormat: String, Sendable, CaseIterable {
    /// swift-log's text layout: `<time> <level> <label>: <key=value ...> [<module>] <message>`.
    case text
    /// One JSON object a line, for log shippers.
    case json
}
