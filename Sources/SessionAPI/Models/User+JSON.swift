/// Users as JSON bytes, written directly, for the API, the CLI and the JSON file alike.
///
/// The hot path (`/users/me`) answers one of these per request, and going through `JSONEncoder` cost about
/// a tenth of the request. The output is byte for byte what `JSONCoding.encoder` writes for the same fields
/// (sorted keys, `null` for unset values, `/` unescaped); the tests compare the two on awkward strings.
extension User {
    /// Which fields a JSON text of a user carries.
    package enum JSONView: Sendable {
        /// What clients see: every field but the password hash.
        case `public`
        /// The original's `.db_User.json` record: every field, `_password` included.
        case stored
    }

    /// The fields of each view, in key order, each with its `"key":` prefix already encoded.
    private static let publicKeys = Self.keys(Field.allCases.filter(\.isPublic))
    private static let storedKeys = Self.keys(Field.allCases)

    private static func keys(_ fields: [Field]) -> [(field: Field, key: [UInt8])] {
        fields.sorted { $0.rawValue < $1.rawValue }.map { ($0, Array("\"\($0.rawValue)\":".utf8)) }
    }

    /// Appends the user as a JSON object: `{"created_at":…,"email":…,"first_name":…,"id":…,…}`.
    package func writeJSON(_ view: JSONView, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "{"))
        for (index, entry) in (view == .public ? Self.publicKeys : Self.storedKeys).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: entry.key)
            JSONText.writeString(self[entry.field], into: &output)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Appends `users` as a JSON array.
    package static func writeJSON(_ users: [User], _ view: JSONView, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "["))
        for (index, user) in users.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            user.writeJSON(view, into: &output)
        }
        output.append(UInt8(ascii: "]"))
    }

    /// The user as a JSON text (for the CLI).
    package func jsonString(_ view: JSONView) -> String {
        var output: [UInt8] = []
        self.writeJSON(view, into: &output)
        return String(decoding: output, as: UTF8.self)
    }
}
