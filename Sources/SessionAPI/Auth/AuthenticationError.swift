/// Why the authentication middleware stopped a request; the HTTP layer answers 401 or 403.
package struct AuthenticationError: Error, Equatable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case missingCredentials
            case rejected
            case throttled
        }
        private let value: Value

        /// No credentials at all (the original's 401).
        package static let missingCredentials = Code(value: .missingCredentials)
        /// Credentials that name no user: unknown or expired session, wrong password, garbage (the original's 403).
        package static let rejected = Code(value: .rejected)
        /// Too many failed attempts for the account or from the address lately (429, `retryAfter` seconds).
        package static let throttled = Code(value: .throttled)

        package var description: String { "\(self.value)" }
    }

    package let code: Code
    /// For `.throttled`: seconds until the next attempt may be made.
    package let retryAfter: Int?

    package init(_ code: Code, retryAfter: Int? = nil) {
        self.code = code
        self.retryAfter = retryAfter
    }

    package var description: String { "authentication: \(self.code)" }
}
