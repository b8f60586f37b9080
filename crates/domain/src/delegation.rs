//! Delegation (SPEC §2.1): one rule, [`assignable`], for invitations, role changes, removals and
//! invitation management. These functions decide the *parameters* of an action; whether the
//! actor may attempt the action at all is [`crate::policy`]'s job, which calls these.
//!
//! Leaving (removing yourself) is not decided here: it is always allowed except for the last
//! owner, which [`crate::owners`] decides.

use crate::role::{Role, assignable};

/// May `actor` invite someone with `role`? Iff the actor is owner, admin or manager and `role`
/// is assignable by the actor.
#[must_use]
pub fn can_invite(actor: Role, role: Role) -> bool {
    match actor {
        Role::Owner | Role::Admin | Role::Manager => assignable(actor).contains(&role),
        Role::User => false,
    }
}

/// May `actor` change a member from `from` to `to`? Iff both roles are assignable by the actor
/// and they differ (an admin toggles user↔admin, a manager user↔manager, an owner anything).
/// The last-owner invariant is checked separately by [`crate::owners::ensure_owner_remains`].
#[must_use]
pub fn can_change_role(actor: Role, from: Role, to: Role) -> bool {
    let roles = assignable(actor);
    from != to && roles.contains(&from) && roles.contains(&to)
}

/// May `actor` remove another member whose role is `target`? Iff `target` is assignable by the
/// actor (an owner removes anyone). The last-owner invariant is checked separately.
#[must_use]
pub fn can_remove(actor: Role, target: Role) -> bool {
    assignable(actor).contains(&target)
}

/// May `actor` revoke or resend a pending invitation carrying `invitation_role`? Iff that role is
/// assignable by the actor (you may only manage invitations you could have sent).
#[must_use]
pub fn can_manage_invitation(actor: Role, invitation_role: Role) -> bool {
    assignable(actor).contains(&invitation_role)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use Role::{Admin, Manager, Owner, User};

    /// Every allowed (actor, from, to) role change, written out from SPEC §2.1. Anything not in
    /// this list must be refused.
    const ALLOWED_CHANGES: &[(Role, Role, Role)] = &[
        // owner: any change between two different roles
        (Owner, Owner, Admin),
        (Owner, Owner, Manager),
        (Owner, Owner, User),
        (Owner, Admin, Owner),
        (Owner, Admin, Manager),
        (Owner, Admin, User),
        (Owner, Manager, Owner),
        (Owner, Manager, Admin),
        (Owner, Manager, User),
        (Owner, User, Owner),
        (Owner, User, Admin),
        (Owner, User, Manager),
        // admin: toggles user <-> admin
        (Admin, Admin, User),
        (Admin, User, Admin),
        // manager: toggles user <-> manager
        (Manager, Manager, User),
        (Manager, User, Manager),
        // user: nothing
    ];

    #[test]
    fn change_role_every_triple() {
        let mut checked = 0;
        for actor in Role::ALL {
            for from in Role::ALL {
                for to in Role::ALL {
                    let expected = ALLOWED_CHANGES.contains(&(actor, from, to));
                    assert_eq!(
                        can_change_role(actor, from, to),
                        expected,
                        "{actor} changing {from} -> {to}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 64);
    }

    /// Rows: actor. Columns: the role invited / removed / on the invitation, in the order
    /// owner, admin, manager, user. Same table for invite, remove and revoke/resend.
    const PER_ROLE: [(Role, [bool; 4]); 4] = [
        //          owner  admin  manager user
        (Owner, [true, true, true, true]),
        (Admin, [false, true, false, true]),
        (Manager, [false, false, true, true]),
        (User, [false, false, false, false]),
    ];

    #[test]
    fn invite_remove_and_manage_invitation_every_pair() {
        for (actor, row) in PER_ROLE {
            for (role, expected) in Role::ALL.into_iter().zip(row) {
                assert_eq!(can_invite(actor, role), expected, "{actor} invites {role}");
                assert_eq!(can_remove(actor, role), expected, "{actor} removes {role}");
                assert_eq!(
                    can_manage_invitation(actor, role),
                    expected,
                    "{actor} revokes/resends a {role} invitation"
                );
            }
        }
    }
}
