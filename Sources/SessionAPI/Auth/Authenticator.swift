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

    /// What a request's credentials come to.
    package enum Outcome: Sendable {
        /// No credentials at all, as the original counts them: no `Authorization` header and no session cookie.
        case noCredentials
        /// Credentials that name no user (unknown or expired session, wrong password, garbage).
        case rejected
        /// The user, and for session auth the session ID that authenticated it.
        case authenticated(User, sessionID: String?)
    }

    /// Checks the request's credentials (the cookie header is parsed once).
    /// - Throws: only when a store cannot answer (`StoreError.unavailable`).
    package func authenticate(_ request: Request) async throws -> Outcome {
        let authorization = request.headers[.authorization]
        switch self.method {
        case .basic:
            guard let authorization else { return .noCredentials }
            guard let credentials = Self.basicCredentials(authorization),
                let user = try await self.users.user(email: credentials.email),
                try await self.hasher.verify(credentials.password, against: user.passwordHash)
            else { return .rejected }
            return .authenticated(user, sessionID: nil)
        case .session(let cookieName, let store):
            guard let cookie = request.cookies[cookieName]?.value else {
                return authorization == nil ? .noCredentials : .rejected
            }
            guard SessionID.isWellFormed(cookie),
                let userID = try await store.userID(sessionID: cookie),
                let user = try await self.users.user(id: userID)
            else { return .rejected }
            return .authenticated(user, sessionID: cookie)
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
