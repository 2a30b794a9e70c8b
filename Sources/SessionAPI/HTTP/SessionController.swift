import Hummingbird
import Logging

/// `/api/v1/auth_session/login` and `/logout`: present only when `AUTH_TYPE` is a session mode.
package struct SessionController: Sendable {
    let users: any UserStore
    let sessions: any SessionStore
    let hasher: PasswordHasher
    let cookie: SessionCookie
    let throttle: any LoginThrottle
    let audit: AuditTrail

    package func addRoutes(to routes: RouteTable) {
        routes.on("/api/v1/auth_session/login", .post) { request, context in try await self.login(request, context: context) }
        routes.onAuthenticated("/api/v1/auth_session/logout", .delete) { _, context in try await self.logout(context: context) }
        routes.onAuthenticated("/api/v1/users/me/sessions", .get) { _, context in try await self.listSessions(context: context) }
        routes.onAuthenticated("/api/v1/users/me/sessions", .delete) { _, context in try await self.endOtherSessions(context: context) }
        routes.onAuthenticated("/api/v1/users/me/sessions/:handle", .delete) { _, context in try await self.endSession(context: context) }
    }

    func login(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await RequestBody.form(LoginRequest.self, from: request, context: context)
        guard let email = form.email, !email.isEmpty else { throw APIError(.badRequest, message: "email missing") }
        guard let password = form.password, !password.isEmpty else { throw APIError(.badRequest, message: "password missing") }
        // bcrypt would stop at a NUL (`abc\0def` is `abc`): such a password is no password.
        guard !password.utf8.contains(0) else { throw APIError(.badRequest, message: "password must not contain NUL (U+0000)") }
        let ip = context.clientIP
        // Over the limit of failures for this account or address: 429 before any store lookup or hashing.
        let account = User.normalizedEmail(email)
        if let wait = try await self.throttle.retryAfter(account: account, address: ip) {
            await self.audit.record(AuditEvent(.loginThrottled, account: email, ip: ip), logger: context.logger)
            throw ErrorMiddleware.tooManyRequests(retryAfter: wait)
        }
        guard let user = try await self.users.user(email: email) else {
            // The same hashing work as for a known user, so the answer's timing does not tell who has an account.
            _ = try await self.hasher.verify(password, against: nil)
            try await self.throttle.recordFailure(account: account, address: ip)
            await self.audit.record(AuditEvent(.loginFailed, account: email, ip: ip, detail: "unknown email"), logger: context.logger)
            throw APIError(.notFound, message: "no user found for this email")
        }
        let verification = try await self.hasher.check(password, against: user.passwordHash)
        guard verification.matches else {
            try await self.throttle.recordFailure(account: account, address: ip)
            await self.audit.record(
                AuditEvent(.loginFailed, userID: user.id, account: email, ip: ip, detail: "wrong password"),
                logger: context.logger
            )
            throw APIError(.unauthorized, message: "wrong password")
        }
        try await self.throttle.recordSuccess(account: account)
        // A hash from the original's files (SHA-256), bcrypt or older Argon2 parameters becomes today's Argon2id.
        _ = await self.hasher.upgrade(user, password: password, after: verification, in: self.users, logger: context.logger)
        let metadata = SessionMetadata(ip: ip, userAgent: request.headers[.userAgent].map { String($0.prefix(256)) })
        // A login always starts a fresh session; the one the client still carried is revoked with it.
        let sessionID = try await self.sessions.createSession(
            userID: user.id,
            metadata: metadata,
            replacing: self.cookie.sessionID(in: request)
        )
        await self.audit.record(AuditEvent(.loginSucceeded, userID: user.id, account: email, ip: ip), logger: context.logger)
        var response = JSONResponse.user(user)
        response.setCookie(try self.cookie.issuing(sessionID))
        return response
    }

    /// Behind the auth check like every protected route; 404 only when the session vanished meanwhile
    /// (or the caller authenticated without one).
    func logout(context: AuthenticatedContext) async throws -> Response {
        guard let sessionID = context.sessionID, try await self.sessions.deleteSession(sessionID: sessionID) else {
            throw APIError(.notFound)
        }
        await self.audit.record(AuditEvent(.logout, userID: context.user.id, ip: context.clientIP), logger: context.logger)
        var response = try JSONResponse.encode([String: String]())
        // Tell the browser to drop the cookie too.
        response.setCookie(try self.cookie.clearing())
        return response
    }

    // MARK: - The caller's sessions (OWASP ASVS 3.3.4)

    /// The caller's live sessions, newest first, each by its public handle (never the cookie).
    func listSessions(context: AuthenticatedContext) async throws -> Response {
        let current = context.sessionID.map { SessionID.handle(of: $0) }
        let sessions = try await self.sessions.sessions(userID: context.user.id)
        return try JSONResponse.encode(sessions.map { SessionResponse($0, current: $0.handle == current) })
    }

    /// "Log out everywhere else": every session of the caller but this one ends.
    func endOtherSessions(context: AuthenticatedContext) async throws -> Response {
        let ended = try await self.sessions.deleteSessions(userID: context.user.id, keeping: context.sessionID)
        await self.audit.record(
            AuditEvent(.sessionRevoked, userID: context.user.id, ip: context.clientIP, detail: "\(ended) other sessions"),
            logger: context.logger
        )
        return try JSONResponse.encode(["ended": ended])
    }

    /// Ends one of the caller's sessions (this one too, if it is named: a logout); 404 when the handle is none of theirs.
    func endSession(context: AuthenticatedContext) async throws -> Response {
        let handle = try context.parameters.require("handle")
        guard try await self.sessions.deleteSession(userID: context.user.id, handle: handle) else { throw APIError(.notFound) }
        await self.audit.record(
            AuditEvent(.sessionRevoked, userID: context.user.id, ip: context.clientIP, detail: "session \(handle)"),
            logger: context.logger
        )
        var response = try JSONResponse.encode([String: String]())
        if let current = context.sessionID, SessionID.handle(of: current) == handle {
            response.setCookie(try self.cookie.clearing())
        }
        return response
    }
}

/// A session as its user sees it: `{"created_at", "current", "expires_at", "handle", "ip", "user_agent"}`,
/// `null` for what is not known.
struct SessionResponse: Encodable {
    let session: SessionInfo
    let current: Bool

    init(_ session: SessionInfo, current: Bool) {
        self.session = session
        self.current = current
    }

    enum CodingKeys: String, CodingKey {
        case createdAt = "created_at"
        case current
        case expiresAt = "expires_at"
        case handle
        case ip
        case userAgent = "user_agent"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(self.session.createdAt, forKey: .createdAt)
        try container.encode(self.current, forKey: .current)
        try container.encode(self.session.expiresAt, forKey: .expiresAt)
        try container.encode(self.session.handle, forKey: .handle)
        try container.encode(self.session.metadata.ip, forKey: .ip)
        try container.encode(self.session.metadata.userAgent, forKey: .userAgent)
    }
}
