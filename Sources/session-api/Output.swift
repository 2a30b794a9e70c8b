/// Text for the operator's terminal: stored values may hold control characters (a name, a user agent), which
/// must not reach a terminal as escape sequences, nor break a line into two.
enum Output {
    /// `text` with every control character (C0, DEL, C1, line and paragraph separators) as `?`.
    static func safe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: Self.isControl) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { Self.isControl($0) ? "?" : $0 }))
    }

    /// One line of tab-separated columns; `-` for an absent value.
    static func columns(_ values: [String?]) -> String {
        values.map { $0.map(Self.safe) ?? "-" }.joined(separator: "\t")
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}"
    }
}
