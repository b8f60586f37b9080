//! The last-owner invariant (SPEC §2.2): an organization always keeps at least one owner.
//!
//! The service counts owners inside the same transaction that makes the change (locking the
//! owner rows so two owners demoting each other cannot both succeed) and asks
//! [`ensure_owner_remains`]; a refusal becomes `409 last_owner`.

use crate::role::Role;

/// The change would leave an organization without any owner (`409 last_owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an organization must keep at least one owner")]
pub struct LastOwner;

/// `Err(LastOwner)` iff an org that has owners (`owners_now > 0`) would be left with none after
/// `owners_removed` of them stop being owners. An org with no owners at all (should not exist) is
/// not made worse by a change, so it is not refused here.
pub fn ensure_owner_remains(owners_now: u64, owners_removed: u64) -> Result<(), LastOwner> {
    if owners_now > 0 && owners_removed >= owners_now {
        Err(LastOwner)
    } else {
        Ok(())
    }
}

/// Does moving a member from `from` to `to` take away an owner? `to = None` means the member
/// leaves or is removed (or their account is deleted).
#[must_use]
pub fn removes_owner(from: Role, to: Option<Role>) -> bool {
    match from {
        Role::Owner => match to {
            None => true,
            Some(Role::Owner) => false,
            Some(Role::Admin | Role::Manager | Role::User) => true,
        },
        Role::Admin | Role::Manager | Role::User => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;
    use crate::delegation::{can_change_role, can_invite, can_remove};

    #[test]
    fn ensure_owner_remains_table() {
        assert_eq!(ensure_owner_remains(1, 0), Ok(()));
        assert_eq!(ensure_owner_remains(1, 1), Err(LastOwner));
        assert_eq!(ensure_owner_remains(2, 1), Ok(()));
        assert_eq!(ensure_owner_remains(2, 2), Err(LastOwner));
        assert_eq!(ensure_owner_remains(2, 3), Err(LastOwner));
        assert_eq!(ensure_owner_remains(0, 0), Ok(()));
        assert_eq!(ensure_owner_remains(u64::MAX, u64::MAX - 1), Ok(()));
    }

    #[test]
    fn removes_owner_table() {
        for from in Role::ALL {
            let leaving = removes_owner(from, None);
            assert_eq!(leaving, from == Role::Owner, "{from} leaves");
            for to in Role::ALL {
                let expected = from == Role::Owner && to != Role::Owner;
                assert_eq!(removes_owner(from, Some(to)), expected, "{from} -> {to}");
            }
        }
    }

    /// A member-level operation on the model org. Members are picked by `Index` into the current
    /// member list, so every generated operation names someone who exists.
    #[derive(Clone, Debug)]
    enum Op {
        ChangeRole {
            actor: Index,
            target: Index,
            to: Role,
        },
        Remove {
            actor: Index,
            target: Index,
        },
        Leave {
            member: Index,
        },
        Invite {
            actor: Index,
            role: Role,
        },
    }

    fn any_role() -> impl Strategy<Value = Role> {
        prop::sample::select(Role::ALL.to_vec())
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<Index>(), any::<Index>(), any_role())
                .prop_map(|(actor, target, to)| Op::ChangeRole { actor, target, to }),
            (any::<Index>(), any::<Index>())
                .prop_map(|(actor, target)| Op::Remove { actor, target }),
            any::<Index>().prop_map(|member| Op::Leave { member }),
            (any::<Index>(), any_role()).prop_map(|(actor, role)| Op::Invite { actor, role }),
        ]
    }

    struct ModelOrg {
        members: BTreeMap<usize, Role>,
        next_id: usize,
    }

    impl ModelOrg {
        fn new(others: &[Role]) -> Self {
            let mut members = BTreeMap::new();
            members.insert(0, Role::Owner);
            for (i, role) in others.iter().enumerate() {
                members.insert(i + 1, *role);
            }
            Self {
                next_id: members.len(),
                members,
            }
        }

        fn owners(&self) -> u64 {
            self.members.values().filter(|r| **r == Role::Owner).count() as u64
        }

        fn pick(&self, index: &Index) -> Option<(usize, Role)> {
            if self.members.is_empty() {
                return None;
            }
            let i = index.index(self.members.len());
            self.members.iter().nth(i).map(|(id, role)| (*id, *role))
        }

        /// The service's guard: the owner count check, applied to every change.
        fn owner_guard(&self, from: Role, to: Option<Role>) -> bool {
            let removed = u64::from(removes_owner(from, to));
            ensure_owner_remains(self.owners(), removed).is_ok()
        }

        fn apply(&mut self, op: &Op) {
            match op {
                Op::ChangeRole { actor, target, to } => {
                    let (Some((_, actor_role)), Some((target_id, from))) =
                        (self.pick(actor), self.pick(target))
                    else {
                        return;
                    };
                    if can_change_role(actor_role, from, *to) && self.owner_guard(from, Some(*to)) {
                        self.members.insert(target_id, *to);
                    }
                }
                Op::Remove { actor, target } => {
                    let (Some((actor_id, actor_role)), Some((target_id, role))) =
                        (self.pick(actor), self.pick(target))
                    else {
                        return;
                    };
                    if actor_id != target_id
                        && can_remove(actor_role, role)
                        && self.owner_guard(role, None)
                    {
                        self.members.remove(&target_id);
                    }
                }
                Op::Leave { member } => {
                    let Some((id, role)) = self.pick(member) else {
                        return;
                    };
                    if self.owner_guard(role, None) {
                        self.members.remove(&id);
                    }
                }
                Op::Invite { actor, role } => {
                    let Some((_, actor_role)) = self.pick(actor) else {
                        return;
                    };
                    if can_invite(actor_role, *role) {
                        self.members.insert(self.next_id, *role);
                        self.next_id += 1;
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn an_org_never_loses_its_last_owner(
            others in prop::collection::vec(any_role(), 0..6),
            ops in prop::collection::vec(any_op(), 1..80),
        ) {
            let mut org = ModelOrg::new(&others);
            for op in &ops {
                org.apply(op);
                prop_assert!(org.owners() >= 1, "no owner left after {op:?}");
            }
        }
    }
}
