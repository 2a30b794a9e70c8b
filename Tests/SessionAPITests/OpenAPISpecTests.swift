import Foundation
import HTTPTypes
import SessionAPI
import Testing
import Yams

/// `openapi.yaml` lists exactly the routes the router registers, over every `AUTH_TYPE` (nothing missing,
/// nothing extra), and its marks agree with the code: `x-session-modes-only` on the operations that exist
/// only in the session modes, `security: []` on the paths `AuthExclusions.standard` leaves public.
@Suite struct OpenAPISpecTests {
    /// One operation: a lower-case method and an OpenAPI path (`/api/v1/users/{id}`).
    struct Operation: Hashable, Comparable, CustomStringConvertible {
        let method: String
        let path: String

        var description: String { "\(self.method.uppercased()) \(self.path)" }

        static func < (lhs: Self, rhs: Self) -> Bool {
            (lhs.path, lhs.method) < (rhs.path, rhs.method)
        }
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every `AUTH_TYPE`, unset included.
    static let authTypes: [AuthType?] = [nil] + AuthType.allCases.map { $0 }

    /// The methods a path item may have (OpenAPI 3.1 §4.8.9); its other keys (`parameters`, ...) are not operations.
    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// The spec's operations, each with its operation object, parsed by Yams.
    static func specOperations() throws -> [Operation: [String: Any]] {
        let text = try String(contentsOf: Self.repository.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any], "openapi.yaml is not a mapping")
        let paths = try #require(document["paths"] as? [String: Any], "openapi.yaml has no paths")
        var operations: [Operation: [String: Any]] = [:]
        for (path, item) in paths {
            let item = try #require(item as? [String: Any], "\(path) is not a mapping")
            for (key, value) in item where Self.methods.contains(key) {
                operations[Operation(method: key, path: path)] = try #require(value as? [String: Any], "\(key) \(path)")
            }
        }
        return operations
    }

    /// What `apiRoutes` says the router registers for `authType`, in OpenAPI's spelling (`:id` is `{id}`).
    static func routerOperations(_ authType: AuthType?) async throws -> Set<Operation> {
        try await withDataDirectory { directory in
            var configuration = AppConfiguration()
            configuration.authType = authType
            let stores = AppStores(
                users: try await JSONFileUserStore(directory: directory),
                sessions: authType?.usesSessions == true ? MemorySessionStore(expiry: SessionExpiry(duration: 0)) : nil
            )
            return Set(
                try apiRoutes(configuration, stores: stores).map {
                    Operation(method: $0.method.rawValue.lowercased(), path: Self.openAPIPath($0.path))
                }
            )
        }
    }

    /// `/api/v1/users/:id` as OpenAPI writes it: `/api/v1/users/{id}`.
    static func openAPIPath(_ routerPath: String) -> String {
        routerPath.split(separator: "/", omittingEmptySubsequences: false).map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
            .joined(separator: "/")
    }

    @Test func pathsAreConvertedToOpenAPITemplates() {
        #expect(Self.openAPIPath("/api/v1/users/:id") == "/api/v1/users/{id}")
        #expect(Self.openAPIPath("/api/v1/users/me/sessions/:handle") == "/api/v1/users/me/sessions/{handle}")
        #expect(Self.openAPIPath("/healthz") == "/healthz")
    }

    @Test func specListsExactlyTheRoutesOfTheRouter() async throws {
        var router: Set<Operation> = []
        for authType in Self.authTypes { router.formUnion(try await Self.routerOperations(authType)) }
        let spec = Set(try Self.specOperations().keys)
        #expect(!router.isEmpty)
        #expect(router.subtracting(spec).isEmpty, "routes missing from openapi.yaml: \(router.subtracting(spec).sorted())")
        #expect(spec.subtracting(router).isEmpty, "operations in openapi.yaml the router does not have: \(spec.subtracting(router).sorted())")
    }

    @Test func sessionOnlyOperationsAreMarked() async throws {
        var everyMode: Set<Operation>?
        for authType in Self.authTypes where authType?.usesSessions != true {
            let routes = try await Self.routerOperations(authType)
            everyMode = everyMode.map { $0.intersection(routes) } ?? routes
        }
        var sessionModes: Set<Operation> = []
        for authType in AuthType.allCases where authType.usesSessions {
            sessionModes.formUnion(try await Self.routerOperations(authType))
        }
        let sessionOnly = sessionModes.subtracting(try #require(everyMode))
        #expect(!sessionOnly.isEmpty)
        for (operation, object) in try Self.specOperations() {
            let marked = object["x-session-modes-only"] as? Bool == true
            #expect(marked == sessionOnly.contains(operation), "\(operation): x-session-modes-only should be \(!marked)")
        }
    }

    @Test func publicOperationsAreTheAuthExclusions() throws {
        for (operation, object) in try Self.specOperations() {
            let isPublic = (object["security"] as? [Any])?.isEmpty == true
            let excluded = AuthExclusions.standard.isExcluded(operation.path)
            #expect(isPublic == excluded, "\(operation): security: [] should be \(excluded ? "there" : "absent")")
            // A protected operation documents the answers to missing and wrong credentials.
            let responses = try #require(object["responses"] as? [String: Any], "\(operation) has no responses")
            if !excluded {
                #expect(responses["401"] != nil && responses["403"] != nil, "\(operation) lacks 401 or 403")
            }
        }
    }
}
