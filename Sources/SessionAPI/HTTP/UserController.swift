import Hummingbird
import Logging

/// `/api/v1/users`: list, read, create, update and delete users, and `/users/me`.
package struct UserController: Sendable {
    let users: any UserStore
    let sessions: (any SessionStore)?
    let hasher: PasswordHasher
    let policy: AdminPolicy
    let audit: AuditTrail

    package func addRoutes(to routes: RouteTable) {
        routes.on("/api/v1/users", .get) { request, _ in try await self.list(request) }
        routes.on("/api/v1/users", .post) { request, context in try await self.create(request, context: context) }
        routes.on("/api/v1/users/:id", .get) { _, context in try await self.show(id: try context.parameters.require("id")) }
        routes.on("/api/v1/users/:id", .put) { request, context in
            try await self.update(id: try context.parameters.require("id"), request, context: context)
        }
        routes.on("/api/v1/users/:id", .delete) { _, context in try await self.delete(id: try context.parameters.require("id"), context: context) }
        // `me` names the caller only for GET, as in the original: PUT and DELETE take it as an id (404).
        routes.onAuthenticated("/api/v1/users/me", .get) { _, context in JSONResponse.user(context.user) }
        routes.on("/api/v1/users/me", .put) { request, context in try await self.update(id: "me", request, context: context) }
        routes.on("/api/v1/users/me", .delete) { _, context in try await self.delete(id: "me", context: context) }
    }

    /// Without `limit` or `page`, every user (the original's answer); with either, one page in id order and
    /// the total in `X-Total-Count`.
    func list(_ request: Request) async throws -> Response {
        guard let page = try UserPage(request.uri.queryParameters) else {
            return JSONResponse.users(try await self.users.allUsers())
        }
        let (users, total) = try await self.users.users(page: page.number, limit: page.limit)
        var response = JSONResponse.users(users)
        response.headers[.xTotalCount] = String(total)
        return response
    }

    func show(id: String) async throws -> Response {
        guard let user = try await self.users.user(id: id) else { throw APIError(.notFound) }
        return JSONResponse.user(user)
    }

    func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard self.policy.mayCreateOrDelete(context.identity?.user) else { throw APIError(.forbidden) }
        let body = try await RequestBody.json(CreateUserRequest.self, from: request, context: context)
        let user: User
        do {
            user = try await UserAdministration.createUser(
                email: body.email ?? "",
                password: body.password ?? "",
                firstName: body.firstName,
                lastName: body.lastName,
                users: self.users,
                hasher: self.hasher
            )
        } catch let error as UserAdministration.InputError {
            throw APIError(.badRequest, message: error.description)
        }
        await self.audit.record(
            AuditEvent(.userCreated, userID: user.id, actorID: context.identity?.user.id, ip: context.clientIP),
            logger: context.logger
        )
        return JSONResponse.user(user, status: .created)
    }

    func update(id: String, _ request: Request, context: AppRequestContext) async throws -> Response {
        // The original looks the user up first: an unknown user is 404 whatever the body.
        guard try await self.users.user(id: id) != nil else { throw APIError(.notFound) }
        guard self.policy.mayUpdate(id: id, context.identity?.user) else { throw APIError(.forbidden) }
        let body = try await RequestBody.json(UpdateUserRequest.self, from: request, context: context)
        let updated: User?
        do {
            updated = try await UserAdministration.updateUser(id: id, firstName: body.firstName, lastName: body.lastName, users: self.users)
        } catch let error as UserAdministration.InputError {
            throw APIError(.badRequest, message: error.description)
        }
        guard let updated else { throw APIError(.notFound) }
        let fields = [body.firstName.map { _ in "first_name" }, body.lastName.map { _ in "last_name" }].compactMap { $0 }.joined(separator: ",")
        await self.audit.record(
            AuditEvent(.userUpdated, userID: id, actorID: context.identity?.user.id, ip: context.clientIP, detail: fields.isEmpty ? nil : fields),
            logger: context.logger
        )
        return JSONResponse.user(updated)
    }

    /// Deletes the user, then every session it had, so none of its cookies works any more.
    func delete(id: String, context: AppRequestContext) async throws -> Response {
        guard self.policy.mayCreateOrDelete(context.identity?.user) else { throw APIError(.forbidden) }
        guard let ended = try await UserAdministration.deleteUser(id: id, users: self.users, sessions: self.sessions) else {
            throw APIError(.notFound)
        }
        await self.audit.record(
            AuditEvent(.userDeleted, userID: id, actorID: context.identity?.user.id, ip: context.clientIP, detail: "\(ended) sessions ended"),
            logger: context.logger
        )
        return try JSONResponse.encode([String: String]())
    }
}
