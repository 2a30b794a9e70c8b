import Foundation
import Logging
import SessionAPI
import Testing

/// `AppConfiguration(environment:)`: defaults, every variable, and one clear error naming a bad one.
@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let configuration = try AppConfiguration(environment: [:])
        #expect(configuration.host == "0.0.0.0")
        #expect(configuration.port == 5000)
        #expect(configuration.authType == nil)
        #expect(configuration.sessionName == "_my_session_id")
        #expect(configuration.sessionDuration == 0)
        #expect(configuration.dataDirectory == ".")
        #expect(configuration.passwordArgon2MemoryKiB == 19_456)
        #expect(configuration.passwordArgon2Iterations == 2)
        #expect(configuration.passwordArgon2Parallelism == 1)
    }

    @Test func blankValuesAreDefaults() throws {
        let configuration = try AppConfiguration(environment: ["API_PORT": "", "AUTH_TYPE": "  ", "SESSION_NAME": "", "SESSION_DURATION": ""])
        #expect(configuration.port == 5000)
        #expect(configuration.authType == nil)
        #expect(configuration.sessionName == "_my_session_id")
        #expect(configuration.sessionDuration == 0)
    }

    @Test func readsEveryVariable() throws {
        let configuration = try AppConfiguration(environment: [
            "API_HOST": "127.0.0.1",
            "API_PORT": "8080",
            "AUTH_TYPE": "session_db_auth",
            "SESSION_NAME": "sid",
            "SESSION_DURATION": "3600",
            "DATA_DIR": "/tmp/somewhere",
            "PASSWORD_ARGON2_MEMORY_KIB": "65536",
            "PASSWORD_ARGON2_ITERATIONS": "3",
            "LOG_LEVEL": "debug",
        ])
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 8080)
        #expect(configuration.authType == .sessionDBAuth)
        #expect(configuration.sessionName == "sid")
        #expect(configuration.sessionDuration == 3600)
        #expect(configuration.dataDirectory == "/tmp/somewhere")
        #expect(configuration.passwordArgon2MemoryKiB == 65_536)
        #expect(configuration.passwordArgon2Iterations == 3)
        #expect(configuration.logLevel == .debug)
    }

    @Test(arguments: [
        ("basic_auth", AuthType.basicAuth),
        ("session_auth", .sessionAuth),
        ("session_exp_auth", .sessionExpAuth),
        ("session_db_auth", .sessionDBAuth),
    ])
    func authTypes(value: String, expected: AuthType) throws {
        #expect(try AppConfiguration(environment: ["AUTH_TYPE": value]).authType == expected)
    }

    @Test(arguments: [("30", 30), ("0", 0), ("-5", -5), (" 7 ", 7)])
    func sessionDurationIsAnInteger(value: String, expected: Int) throws {
        #expect(try AppConfiguration(environment: ["SESSION_DURATION": value, "AUTH_TYPE": "session_exp_auth"]).sessionDuration == expected)
    }

    @Test(arguments: [
        ("API_PORT", "abc"),
        ("API_PORT", "70000"),
        ("API_PORT", "-1"),
        ("API_PORT", "80.5"),
        ("AUTH_TYPE", "kerberos"),
        ("AUTH_TYPE", "Basic_Auth"),
        ("SESSION_NAME", "bad;name"),
        ("SESSION_NAME", "bad name"),
        ("SESSION_NAME", "a=b"),
        ("SESSION_NAME", "sid\u{E9}"),
        ("PASSWORD_ARGON2_MEMORY_KIB", "4"),
        ("PASSWORD_ARGON2_ITERATIONS", "0"),
        ("PASSWORD_ARGON2_PARALLELISM", "cheap"),
        ("LOG_LEVEL", "loud"),
    ])
    func badValueIsRejectedNamingTheVariable(variable: String, value: String) throws {
        let error = try #require(throws: ConfigurationError.self) {
            try AppConfiguration(environment: [variable: value])
        }
        #expect(error.variable == variable)
        #expect(error.description.hasPrefix("\(variable): "))
        #expect(error.description.contains(value.trimmingCharacters(in: .whitespaces)))
        #expect(!error.description.contains("\n"))
    }

    @Test func firstBadVariableIsReportedAlone() throws {
        let error = try #require(throws: ConfigurationError.self) {
            try AppConfiguration(environment: ["API_PORT": "abc", "AUTH_TYPE": "nope"])
        }
        let other = error.variable == "API_PORT" ? "AUTH_TYPE" : "API_PORT"
        #expect(["API_PORT", "AUTH_TYPE"].contains(error.variable))
        #expect(!error.description.contains(other))
    }
}
