import Foundation

/// Random ids as the original makes them with `str(uuid.uuid4())`: lower-case UUIDv4 text, 122 random bits
/// from Foundation's `UUID()` (16 bytes read from `/dev/urandom`). User ids, session ids and session record ids.
package enum RandomID {
    package static func make() -> String {
        UUID().uuidString.lowercased()
    }
}
