import Hummingbird
import Logging

/// `/api/v1/auth_session/login` and `/logout`: present only when `AUTH_TYPE` is a session mode.
package struct SessionController: Sendable {
    let users: any UserStore
    let sessions: any SessionStore
    let hasher: PasswordHasher
    let cookie: SessionCookie
    let clientAddress: ClientAddress

    package func addRoutes(to routes: RouteTable) {
        routes.on("/api/v1/auth_session/login", .post) { request, context in try await self.login(request, context: context) }
        routes.onAuthenticated("/api/v1/auth_session/logout", .delete) { _, context in try await self.logout(context: context) }
    }

    func login(_ request: Request, context: AppRequestContext) async throws -> Response {
        let form = try await RequestBody.form(LoginRequest.self, from: request, context: context)
        guard let email = form.email, !email.isEmpty else { throw APIError(.badRequest, message: "email missing") }
        guard let password = form.password, !password.isEmpty else { throw APIError(.badRequest, message: "password missing") }
        // bcrypt would stop at a NUL (`abc\0def` is `abc`): such a password is no password.
        guard !password.utf8.contains(0) else { throw APIError(.badRequest, message: "password must not contain NUL (U+0000)") }
        guard let user = try await self.users.user(email: email) else {
            // The same hashing work as for a known user, so the answer's timing does not tell who has an account.
            _ = try await self.hasher.verify(password, against: nil)
            throw APIError(.notFound, message: "no user found for this email")
        }
        guard try await self.hasher.verify(password, against: user.passwordHash) else {
            context.logger.info("login refused: wrong password", metadata: context.logMetadata(["login_user_id": .string(user.id)]))
            throw APIError(.unauthorized, message: "wrong password")
        }
        let metadata = SessionMetadata(
            ip: self.clientAddress.address(of: request, context: context),
            userAgent: request.headers[.userAgent].map { String($0.prefix(256)) }
        )
        // A login always starts a fresh session; the one the client still carried is revoked with it.
        let sessionID = try await self.sessions.createSession(
            userID: user.id,
            metadata: metadata,
            replacing: self.cookie.sessionID(in: request)
        )
        context.logger.info("logged in", metadata: context.logMetadata(["login_user_id": .string(user.id)]))
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
        var response = try JSONResponse.encode([String: String]())
        // Tell the browser to drop the cookie too.
        response.setCookie(try self.cookie.clearing())
        return response
    }
}
