//! Who may change what on a user account (`PUT /users/{id}`, SPEC §2.4).
//!
//! Two ways in: the platform's user administrators (the `users.update` permission) may change
//! any account, flags included; anyone signed in with a session may change their own profile
//! (names, username), never their flags. An API key never edits a profile. And nobody locks
//! themselves out: disabling yourself or dropping your own platform-admin flag is refused.

use crate::ids::UserId;
use crate::policy::{Action, Denied, authorize};
use crate::workspace::{Actor, Credential};

/// What an actor may change on an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserEdit {
    /// Profile and flags (`disabled`, `is_platform_admin`).
    Any,
    /// Only the actor's own profile.
    OwnProfile,
}

impl UserEdit {
    /// May this edit set `disabled` or `is_platform_admin`?
    #[must_use]
    pub fn may_set_flags(self) -> bool {
        matches!(self, UserEdit::Any)
    }
}

/// The edit `actor` may make on `target`, or the refusal of `users.update`.
pub fn user_edit(actor: &Actor, target: UserId) -> Result<UserEdit, Denied> {
    match authorize(actor, Action::UpdateUser) {
        Ok(()) => Ok(UserEdit::Any),
        Err(_) if actor.user == target && actor.credential == Credential::Session => {
            Ok(UserEdit::OwnProfile)
        }
        Err(denied) => Err(denied),
    }
}

/// Would this change lock `actor` out of their own account (disable it, or drop their own
/// platform-admin flag)?
#[must_use]
pub fn locks_self_out(
    actor: &Actor,
    target: UserId,
    disabled: Option<bool>,
    platform_admin: Option<bool>,
) -> bool {
    actor.user == target && (disabled == Some(true) || platform_admin == Some(false))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::workspace::Workspace;

    fn actor(admin: bool, credential: Credential) -> Actor {
        Actor {
            user: UserId::new(),
            is_platform_admin: admin,
            workspace: Workspace::Personal,
            credential,
        }
    }

    #[test]
    fn an_admin_edits_anyone_a_user_only_their_own_profile_and_a_key_nothing() {
        let admin = actor(true, Credential::Session);
        let user = actor(false, Credential::Session);
        let key = actor(false, Credential::ApiKey);
        let other = UserId::new();
        assert_eq!(user_edit(&admin, other), Ok(UserEdit::Any));
        assert_eq!(user_edit(&user, user.user), Ok(UserEdit::OwnProfile));
        assert!(!UserEdit::OwnProfile.may_set_flags());
        assert!(user_edit(&user, other).is_err());
        assert!(user_edit(&key, key.user).is_err());
    }

    #[test]
    fn nobody_disables_themselves_or_drops_their_own_admin_flag() {
        let admin = actor(true, Credential::Session);
        let other = UserId::new();
        assert!(locks_self_out(&admin, admin.user, Some(true), None));
        assert!(locks_self_out(&admin, admin.user, None, Some(false)));
        assert!(!locks_self_out(&admin, admin.user, Some(false), Some(true)));
        assert!(!locks_self_out(&admin, other, Some(true), Some(false)));
    }
}
