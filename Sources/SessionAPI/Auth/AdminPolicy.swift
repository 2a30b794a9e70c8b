/// Who may change users (`ADMIN_EMAILS`). Off (no admins named): every authenticated user may do anything,
/// as in the original. On: only admins create users, update others or delete users; everyone may read,
/// and update their own names.
package struct AdminPolicy: Sendable {
    /// Normalised emails (`User.normalizedEmail`).
    let adminEmails: Set<String>

    package init(adminEmails: Set<String>) {
        self.adminEmails = adminEmails
    }

    package var isOn: Bool { !self.adminEmails.isEmpty }

    package func isAdmin(_ user: User) -> Bool {
        self.adminEmails.contains(User.normalizedEmail(user.email))
    }

    /// Whether `caller` may create or delete users. `nil`: no authentication configured (the policy needs it,
    /// and the configuration refuses `ADMIN_EMAILS` without it).
    package func mayCreateOrDelete(_ caller: User?) -> Bool {
        guard self.isOn else { return true }
        guard let caller else { return false }
        return self.isAdmin(caller)
    }

    /// Whether `caller` may update the user `id`.
    package func mayUpdate(id: String, _ caller: User?) -> Bool {
        guard self.isOn else { return true }
        guard let caller else { return false }
        return caller.id == id || self.isAdmin(caller)
    }
}
