//! Double activation (SPEC §1, §2.3): an org resource (instance, offering, share) is operational
//! only when both its technical flag (owner/admin) and its economic flag (owner/manager) are set.
//! Personal resources have no flags and are operational by definition.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::role::Role;
use crate::values::ValueError;

/// One of the two activation flags. Serialized lowercase (`"tech"`, `"eco"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Flag {
    /// Technical approval: the resource is correctly set up.
    Tech,
    /// Economic approval: the price and cost are accepted.
    Eco,
}

impl Flag {
    /// Both flags, tech first.
    pub const ALL: [Flag; 2] = [Flag::Tech, Flag::Eco];

    /// The wire name: `tech` or `eco`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Flag::Tech => "tech",
            Flag::Eco => "eco",
        }
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Flag {
    type Err = ValueError;

    /// Exact lowercase names. Field name: `flag`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tech" => Ok(Flag::Tech),
            "eco" => Ok(Flag::Eco),
            other => Err(ValueError::new(
                "flag",
                format!("unknown activation flag {other:?}: expected tech or eco"),
            )),
        }
    }
}

/// The roles that may set or clear `flag`: tech → owner, admin; eco → owner, manager.
#[must_use]
pub fn can_set_roles(flag: Flag) -> &'static [Role] {
    match flag {
        Flag::Tech => &[Role::Owner, Role::Admin],
        Flag::Eco => &[Role::Owner, Role::Manager],
    }
}

/// Why an activation change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    /// `role` may not set `flag` (`403`).
    #[error("role {role} may not set the {flag} activation flag")]
    RoleNotAllowed {
        /// The flag the actor tried to change.
        flag: Flag,
        /// The actor's role.
        role: Role,
    },
    /// The org requires two different people for the two flags, and the actor holds the other.
    #[error("this organization requires a different person for each activation flag")]
    DistinctActivatorsRequired,
    /// Personal resources have no activation flags.
    #[error("personal resources have no activation flags")]
    NotApplicable,
}

/// Who set each flag of one org resource (`None` = flag off).
///
/// Invariant: only [`Activation::set`] and [`Activation::price_changed`] produce a changed
/// value, so every flag that is on was set by a role allowed to set it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Activation {
    /// Who set the technical flag.
    pub tech_by: Option<UserId>,
    /// Who set the economic flag.
    pub eco_by: Option<UserId>,
}

impl Activation {
    /// Is the resource usable? Personal resources always are; org resources need both flags.
    #[must_use]
    pub fn operational(&self, personal: bool) -> bool {
        personal || self.missing(false).is_empty()
    }

    /// The flags still needed before the resource is operational (tech first); empty for a
    /// personal resource.
    #[must_use]
    pub fn missing(&self, personal: bool) -> Vec<Flag> {
        if personal {
            return Vec::new();
        }
        Flag::ALL
            .into_iter()
            .filter(|flag| self.holder(*flag).is_none())
            .collect()
    }

    /// Who holds `flag`, if anyone.
    #[must_use]
    pub const fn holder(&self, flag: Flag) -> Option<UserId> {
        match flag {
            Flag::Tech => self.tech_by,
            Flag::Eco => self.eco_by,
        }
    }

    /// `actor` (with org `role`) turns `flag` on (`active`) or off.
    ///
    /// Order of checks: the role must be in [`can_set_roles`] (for clearing too); then, when the
    /// org requires distinct activators and the flag is being turned on, the *other* flag must not
    /// be held by the same user. Turning a flag off always clears it. Turning on a flag held by
    /// someone else re-records it under `actor`.
    pub fn set(
        &self,
        actor: UserId,
        role: Role,
        flag: Flag,
        active: bool,
        require_distinct_activators: bool,
    ) -> Result<Activation, ActivationError> {
        if !can_set_roles(flag).contains(&role) {
            return Err(ActivationError::RoleNotAllowed { flag, role });
        }
        let other = match flag {
            Flag::Tech => Flag::Eco,
            Flag::Eco => Flag::Tech,
        };
        if active && require_distinct_activators && self.holder(other) == Some(actor) {
            return Err(ActivationError::DistinctActivatorsRequired);
        }
        let value = if active { Some(actor) } else { None };
        let mut next = *self;
        match flag {
            Flag::Tech => next.tech_by = value,
            Flag::Eco => next.eco_by = value,
        }
        Ok(next)
    }

    /// A price change needs a new economic approval: clears the eco flag, keeps tech.
    #[must_use]
    pub fn price_changed(&self) -> Activation {
        Activation {
            tech_by: self.tech_by,
            eco_by: None,
        }
    }
}

/// Refuses activation on personal resources: `Err(NotApplicable)` iff `personal`. The service
/// calls this before [`Activation::set`], which only knows org roles.
pub fn ensure_applicable(personal: bool) -> Result<(), ActivationError> {
    if personal {
        Err(ActivationError::NotApplicable)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use Role::{Admin, Manager, Owner, User};

    fn user(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n))
    }

    /// Who may touch which flag, written out from SPEC §2.3 (tech: owner/admin, eco: owner/manager).
    const MAY_SET: &[(Role, Flag, bool)] = &[
        (Owner, Flag::Tech, true),
        (Owner, Flag::Eco, true),
        (Admin, Flag::Tech, true),
        (Admin, Flag::Eco, false),
        (Manager, Flag::Tech, false),
        (Manager, Flag::Eco, true),
        (User, Flag::Tech, false),
        (User, Flag::Eco, false),
    ];

    #[test]
    fn every_role_flag_and_direction() {
        let actor = user(1);
        let someone_else = user(2);
        let all_on = Activation {
            tech_by: Some(someone_else),
            eco_by: Some(someone_else),
        };
        for &(role, flag, allowed) in MAY_SET {
            assert_eq!(
                can_set_roles(flag).contains(&role),
                allowed,
                "{role} {flag}"
            );
            for active in [true, false] {
                let start = if active {
                    Activation::default()
                } else {
                    all_on
                };
                let result = start.set(actor, role, flag, active, false);
                if allowed {
                    let next = result.unwrap();
                    let expected = if active { Some(actor) } else { None };
                    assert_eq!(next.holder(flag), expected, "{role} {flag} active={active}");
                } else {
                    assert_eq!(
                        result,
                        Err(ActivationError::RoleNotAllowed { flag, role }),
                        "{role} {flag} active={active}"
                    );
                }
            }
        }
        assert_eq!(MAY_SET.len(), 8);
    }

    #[test]
    fn role_is_checked_before_the_distinct_rule() {
        let actor = user(1);
        let holds_tech = Activation {
            tech_by: Some(actor),
            eco_by: None,
        };
        assert_eq!(
            holds_tech.set(actor, Admin, Flag::Eco, true, true),
            Err(ActivationError::RoleNotAllowed {
                flag: Flag::Eco,
                role: Admin
            })
        );
    }

    #[test]
    fn distinct_activators_rule() {
        let owner = user(1);
        let other = user(2);
        let tech_by_owner = Activation::default()
            .set(owner, Owner, Flag::Tech, true, true)
            .unwrap();

        // Same person for the other flag: refused only when the org requires distinct people.
        assert_eq!(
            tech_by_owner.set(owner, Owner, Flag::Eco, true, true),
            Err(ActivationError::DistinctActivatorsRequired)
        );
        let both = tech_by_owner
            .set(owner, Owner, Flag::Eco, true, false)
            .unwrap();
        assert!(both.operational(false));

        // A different person is fine.
        let distinct = tech_by_owner
            .set(other, Manager, Flag::Eco, true, true)
            .unwrap();
        assert_eq!(distinct.eco_by, Some(other));

        // Re-setting your own flag is not "both flags".
        assert!(
            tech_by_owner
                .set(owner, Owner, Flag::Tech, true, true)
                .is_ok()
        );

        // Deactivating always works, even by the holder of the other flag.
        let cleared = both.set(owner, Owner, Flag::Eco, false, true).unwrap();
        assert_eq!(cleared.eco_by, None);
        assert_eq!(cleared.tech_by, Some(owner));
    }

    #[test]
    fn operational_only_after_both_flags() {
        let admin = user(1);
        let manager = user(2);
        let none = Activation::default();
        assert!(!none.operational(false));
        assert_eq!(none.missing(false), vec![Flag::Tech, Flag::Eco]);

        let tech = none.set(admin, Admin, Flag::Tech, true, true).unwrap();
        assert!(!tech.operational(false));
        assert_eq!(tech.missing(false), vec![Flag::Eco]);

        let eco_only = none.set(manager, Manager, Flag::Eco, true, true).unwrap();
        assert!(!eco_only.operational(false));
        assert_eq!(eco_only.missing(false), vec![Flag::Tech]);

        let both = tech.set(manager, Manager, Flag::Eco, true, true).unwrap();
        assert!(both.operational(false));
        assert!(both.missing(false).is_empty());
    }

    #[test]
    fn personal_resources_are_always_operational() {
        let none = Activation::default();
        assert!(none.operational(true));
        assert!(none.missing(true).is_empty());
        assert_eq!(ensure_applicable(true), Err(ActivationError::NotApplicable));
        assert_eq!(ensure_applicable(false), Ok(()));
    }

    #[test]
    fn price_change_clears_eco_only() {
        let both = Activation {
            tech_by: Some(user(1)),
            eco_by: Some(user(2)),
        };
        let after = both.price_changed();
        assert_eq!(after.tech_by, Some(user(1)));
        assert_eq!(after.eco_by, None);
        assert!(!after.operational(false));
        assert_eq!(after.missing(false), vec![Flag::Eco]);
    }

    #[test]
    fn flag_names_round_trip() {
        for flag in Flag::ALL {
            assert_eq!(flag.as_str().parse::<Flag>().unwrap(), flag);
            let json = serde_json::to_string(&flag).unwrap();
            assert_eq!(json, format!("\"{}\"", flag.as_str()));
        }
        assert_eq!("TECH".parse::<Flag>().unwrap_err().field, "flag");
    }
}
