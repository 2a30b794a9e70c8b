import Foundation
import Hummingbird

/// Finds the user that a request's credentials name, for the configured `AUTH_TYPE`.
package struct Authenticator: Sendable {
    private enum Method: Sendable {
        case basic
        case session(cookieName: String, store: any SessionStore)
    }

    private let method: Method
    private let users: any UserStore
    private let hasher: PasswordHasher

    /// `Authorization: Basic` credentials checked against the user store on every request.
    package static func basic(users: any UserStore, hasher: PasswordHasher) -> Authenticator {
        Authenticator(method: .basic, users: users, hasher: hasher)
    }

    /// A session cookie named `cookieName`, looked up in `store`.
    package static func session(cookieName: String, store: any SessionStore, users: any UserStore, hasher: PasswordHasher) -> Authenticator {
        Authenticator(method: .session(cookieName: cookieName, store: store), users: users, hasher: hasher)
    }

    /// What the original calls "credentials": an `Authorization` header or a session cookie, valid or not.
    package func hasCredentials(_ request: Request) -> Bool {
        if request.headers[.authorization] != nil { return true }
        if case .session(let cookieName, _) = self.method { return request.cookies[cookieName] != nil }
        return false
    }

    /// The authenticated user and, for session auth, the session ID; `nil` when the credentials name no one.
    /// - Throws: only when a store cannot answer (`StoreError.unavailable`).
    package func authenticate(_ request: Request) async throws -> (user: User, sessionID: String?)? {
        switch self.method {
        case .basic:
            guard let credentials = Self.basicCredentials(request.headers[.authorization]),
                let user = try await self.users.user(email: credentials.email),
                try await self.hasher.verify(credentials.password, against: user.passwordHash)
            else { return nil }
            return (user, nil)
        case .session(let cookieName, let store):
            guard let sessionID = Self.sessionID(request, cookieName: cookieName),
                let userID = try await store.userID(sessionID: sessionID),
                let user = try await self.users.user(id: userID)
            else { return nil }
            return (user, sessionID)
        }
    }

    /// The session cookie's value when it has the shape of a session ID; anything else costs no I/O.
    package static func sessionID(_ request: Request, cookieName: String) -> String? {
        guard let value = request.cookies[cookieName]?.value, SessionID.isWellFormed(value) else { return nil }
        return value
    }

    /// `Basic base64(email:password)`: strict base64, strict UTF-8, split at the first `:` (the password may hold more).
    package static func basicCredentials(_ header: String?) -> (email: String, password: String)? {
        guard let header, header.hasPrefix("Basic "), header.utf8.count <= 8192 else { return nil }
        let encoded = header.dropFirst("Basic ".count)
        guard let data = Data(base64Encoded: String(encoded)),
            let decoded = String(validating: data, as: UTF8.self),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
    }
}
