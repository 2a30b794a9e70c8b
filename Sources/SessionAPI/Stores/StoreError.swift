/// Why a store could not do what was asked. Stores know nothing of HTTP; one middleware maps these to statuses.
package struct StoreError: Error, CustomStringConvertible, Equatable {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case duplicateEmail
            case unavailable
            case corruptData
        }
        private let value: Value

        /// Another user already has this email (compared case-insensitively).
        package static let duplicateEmail = Code(value: .duplicateEmail)
        /// The backing service (Redis, the file system) cannot answer now; worth retrying later.
        package static let unavailable = Code(value: .unavailable)
        /// Stored data cannot be read; a person has to look at it.
        package static let corruptData = Code(value: .corruptData)

        package var description: String { "\(self.value)" }
    }

    package let code: Code
    /// For logs and operators, never for clients.
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String { "\(self.code): \(self.message)" }
}
