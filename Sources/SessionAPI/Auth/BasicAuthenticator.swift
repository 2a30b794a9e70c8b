import Foundation
import Hummingbird
import Logging

/// `Authorization: Basic base64(email:password)` checked against the user store on every request.
///
/// HummingbirdAuth's `headers.basic` is not used: it decodes invalid UTF-8 leniently (two different byte
/// strings could then name one user) and has no size limit; here both are refused (403).
package struct BasicAuthenticator: RequestAuthenticator {
    let users: any UserStore
    let hasher: PasswordHasher
    /// Credentials verified lately: a repeated request costs a user lookup, not a hash. `nil`: off.
    let cache: BasicCredentialCache?
    let throttle: any LoginThrottle
    let audit: AuditTrail

    package init(users: any UserStore, hasher: PasswordHasher, cache: BasicCredentialCache?, throttle: any LoginThrottle, audit: AuditTrail) {
        self.users = users
        self.hasher = hasher
        self.cache = cache
        self.throttle = throttle
        self.audit = audit
    }

    package func authenticate(_ request: Request, log: AuthenticationLog) async throws -> AuthenticatedUser? {
        guard let credentials = Self.credentials(request.headers[.authorization]) else { return nil }
        let user = try await self.users.user(email: credentials.email)
        // Verified lately, against the hash the user still has: no hashing (and no throttling: the password is right).
        if let user, self.cache?.contains(email: credentials.email, password: credentials.password, for: user) == true {
            return AuthenticatedUser(user: user, sessionID: nil)
        }
        let account = User.normalizedEmail(credentials.email)
        if let wait = try await self.throttle.retryAfter(account: account, address: log.clientIP) {
            await self.audit.record(AuditEvent(.loginThrottled, account: credentials.email, ip: log.clientIP, detail: "basic"), logger: log.logger)
            throw AuthenticationError(.throttled, retryAfter: wait)
        }
        // An unknown email costs a hash too (against a dummy), so the answer's timing does not tell it apart.
        let verification = try await self.hasher.check(credentials.password, against: user?.passwordHash)
        guard verification.matches, let user else {
            try await self.throttle.recordFailure(account: account, address: log.clientIP)
            let detail = user == nil ? "unknown email" : "wrong password"
            await self.audit.record(
                AuditEvent(.basicAuthFailed, userID: user?.id, account: credentials.email, ip: log.clientIP, detail: detail),
                logger: log.logger
            )
            return nil
        }
        let upgraded = await self.hasher.upgrade(user, password: credentials.password, after: verification, in: self.users, logger: log.logger)
        self.cache?.insert(email: credentials.email, password: credentials.password, for: upgraded)
        return AuthenticatedUser(user: upgraded, sessionID: nil)
    }

    /// Any `Authorization` header counts, even one that is not Basic.
    package func carriesCredentials(_ request: Request) -> Bool {
        request.headers[.authorization] != nil
    }

    /// `Basic base64(email:password)`: strict base64, strict UTF-8, split at the first `:` (the password may hold more).
    package static func credentials(_ header: String?) -> (email: String, password: String)? {
        guard let header, header.hasPrefix("Basic "), header.utf8.count <= 8192 else { return nil }
        let encoded = header.dropFirst("Basic ".count)
        guard let data = Data(base64Encoded: String(encoded)),
            let decoded = String(validating: data, as: UTF8.self),
            let colon = decoded.firstIndex(of: ":")
        else { return nil }
        return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
    }
}
