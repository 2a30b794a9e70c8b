/// The paths that need no authentication, matched as the original's `Auth.require_auth` does:
/// a trailing slash is ignored, and an entry ending in `*` matches every path with that prefix.
package struct AuthExclusions: Sendable {
    /// The original's list, plus the health checks that orchestrators and load balancers call.
    package static let standard = AuthExclusions([
        "/api/v1/status/", "/api/v1/unauthorized/", "/api/v1/forbidden/", "/api/v1/auth_session/login/",
        "/healthz/", "/readyz/",
    ])

    private let entries: [String]

    package init(_ entries: [String]) {
        self.entries = entries
    }

    package func isExcluded(_ path: String) -> Bool {
        let path = Self.withSlash(path)
        for entry in self.entries {
            if entry.hasSuffix("*") {
                if path.hasPrefix(entry.dropLast()) { return true }
            } else if path == Self.withSlash(entry) {
                return true
            }
        }
        return false
    }

    private static func withSlash(_ path: String) -> String {
        path.hasSuffix("/") ? path : path + "/"
    }
}
