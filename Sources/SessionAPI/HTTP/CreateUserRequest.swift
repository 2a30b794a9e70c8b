/// The body of `POST /api/v1/users`. Any field of the wrong JSON type makes the body "Wrong format".
struct CreateUserRequest: Decodable, Sendable {
    var email: String?
    var password: String?
    var firstName: String?
    var lastName: String?

    enum CodingKeys: String, CodingKey {
        case email
        case password
        case firstName = "first_name"
        case lastName = "last_name"
    }
}
