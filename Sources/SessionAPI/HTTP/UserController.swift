import Hummingbird
import Logging

/// `/api/v1/users`: list, read (including `me`), create, update and delete users.
package struct UserController: Sendable {
    let users: any UserStore
    let sessions: (any SessionStore)?
    let hasher: PasswordHasher

    package func addRoutes(to routes: RouteTable) {
        routes.on("/api/v1/users", .get) { _, _ in try await self.list() }
        routes.on("/api/v1/users", .post) { request, context in try await self.create(request, context: context) }
        routes.on("/api/v1/users/:id", .get) { _, context in try await self.show(context: context) }
        routes.on("/api/v1/users/:id", .put) { request, context in try await self.update(request, context: context) }
        routes.on("/api/v1/users/:id", .delete) { _, context in try await self.delete(context: context) }
    }

    func list() async throws -> Response {
        UserJSON.response(try await self.users.allUsers().map(UserResponse.init))
    }

    /// `GET /users/:id`; `me` is the authenticated user, 404 when there is none (auth off), as the original.
    func show(context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        if id == "me" {
            guard let user = context.currentUser else { throw APIError(.notFound) }
            return UserJSON.response(UserResponse(user))
        }
        guard let user = try await self.users.user(id: id) else { throw APIError(.notFound) }
        return UserJSON.response(UserResponse(user))
    }

    func create(_ request: Request, context: AppRequestContext) async throws -> Response {
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
        context.logger.info("user created", metadata: context.logMetadata(["created_user_id": .string(user.id)]))
        return UserJSON.response(UserResponse(user), status: .created)
    }

    func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        // The original looks the user up first: an unknown user is 404 whatever the body.
        guard try await self.users.user(id: id) != nil else { throw APIError(.notFound) }
        let body = try await RequestBody.json(UpdateUserRequest.self, from: request, context: context)
        guard
            let user = try await self.users.update(
                id: id,
                firstName: body.firstName,
                lastName: body.lastName,
                updatedAt: Timestamp.string()
            )
        else { throw APIError(.notFound) }
        return UserJSON.response(UserResponse(user))
    }

    /// Deletes the user, then every session it had, so none of its cookies works any more.
    func delete(context: AppRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard try await self.users.delete(id: id) else { throw APIError(.notFound) }
        try await self.sessions?.deleteSessions(userID: id)
        context.logger.info("user deleted", metadata: context.logMetadata(["deleted_user_id": .string(id)]))
        return try JSONResponse.encode([String: String]())
    }
}
