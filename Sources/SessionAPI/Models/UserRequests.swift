/// The body of `POST /api/v1/users`. Any field of the wrong JSON type makes the body "Wrong format".
package struct CreateUserRequest: Decodable, Sendable {
    package var email: String?
    package var password: String?
    package var firstName: String?
    package var lastName: String?

    enum CodingKeys: String, CodingKey {
        case email
        case password
        case firstName = "first_name"
        case lastName = "last_name"
    }
}

/// The body of `PUT /api/v1/users/:id`: `null` or absent leaves a name unchanged, as in the original.
package struct UpdateUserRequest: Decodable, Sendable {
    package var firstName: String?
    package var lastName: String?

    enum CodingKeys: String, CodingKey {
        case firstName = "first_name"
        case lastName = "last_name"
    }
}

/// The fields of `POST /api/v1/auth_session/login`, from a form or a JSON body.
package struct LoginRequest: Decodable, Sendable {
    package var email: String?
    package var password: String?
}
