/// The body of `PUT /api/v1/users/:id`: `null` or absent leaves a name unchanged, as in the original.
struct UpdateUserRequest: Decodable, Sendable {
    var firstName: String?
    var lastName: String?

    enum CodingKeys: String, CodingKey {
        case firstName = "first_name"
        case lastName = "last_name"
    }
}
