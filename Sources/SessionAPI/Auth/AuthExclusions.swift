/// The paths that need no authentication, matched as the original's `Auth.require_auth` does:
/// a trailing slash is ignored, and an entry ending in `*` matches every path with that prefix.
package struct AuthExclusions: Sendable {
    /// The original's list, plus the health checks that orchestrators and load balancers call.
    package static let standard = AuthExclusions([
        "/api/v1/status/", "/api/v1/unauthorized/", "/api/v1/forbidden/", "/api/v1/auth_session/login/",
        "/healthz/", "/readyz/",
    ])

    /// Exact entries without their trailing slash, and the prefixes of `*` entries (checked on every request,
    /// so nothing is built per request).
    private let exact: [Substring]
    private let prefixes: [Substring]

    package init(_ entries: [String]) {
        self.exact = entries.filter { !$0.hasSuffix("*") }.map { $0.hasSuffix("/") ? $0.dropLast() : Substring($0) }
        self.prefixes = entries.filter { $0.hasSuffix("*") }.map { $0.dropLast() }
    }

    package func isExcluded(_ path: String) -> Bool {
        let bare = path.hasSuffix("/") ? path.dropLast() : Substring(path)
        if self.exact.contains(bare) { return true }
        // A prefix is matched against the path with its slash, as the original appends one before comparing.
        return self.prefixes.contains { prefix in
            path.hasPrefix(prefix) || (prefix.hasSuffix("/") && bare.count + 1 == prefix.count && prefix.hasPrefix(bare))
        }
    }
}
