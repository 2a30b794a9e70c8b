/// Why the authentication middleware stopped a request; the HTTP layer answers 401 or 403.
package struct AuthenticationError: Error, Equatable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case missingCredentials
            case rejected
        }
        private let value: Value

        /// No credentials at all (the original's 401).
        package static let missingCredentials = Code(value: .missingCredentials)
        /// Credentials that name no user: unknown or expired session, wrong password, garbage (the original's 403).
        package static let rejected = Code(value: .rejected)

        package var description: String { "\(self.value)" }
    }

    package let code: Code

    package init(_ code: Code) {
        self.code = code
    }

    package var description: String { "authentication: \(self.code)" }
}
