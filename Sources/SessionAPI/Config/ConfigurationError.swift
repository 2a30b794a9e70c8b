/// A configuration value that could not be used; `description` is one line naming the variable.
package struct ConfigurationError: Error, CustomStringConvertible {
    package let variable: String
    package let reason: String
    package var description: String { "\(variable): \(reason)" }
}
