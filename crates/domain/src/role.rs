//! The four organization roles and which roles each may hand out (SPEC §2.1).
//!
//! Roles are not a ladder: admin is the technical side, manager the economic side. Code must
//! never compare roles with `<`/`>`; the derived `Ord` exists only for stable sorting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::values::ValueError;

/// A member's role in one organization. Serialized lowercase (`"owner"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the org itself and its settings.
    Owner,
    /// The technical side: instances, models, offerings, shares, API keys.
    Admin,
    /// The economic side: prices, economic activation, FinOps.
    Manager,
    /// Read access and inference.
    User,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Manager, Role::User];

    /// The wire and database name: `owner`, `admin`, `manager`, `user`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValueError;

    /// Exact, lowercase names only. Field name: `role`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "user" => Ok(Role::User),
            other => Err(ValueError::new(
                "role",
                format!("unknown role {other:?}: expected owner, admin, manager or user"),
            )),
        }
    }
}

/// The roles `actor` may give (invite with, change to or from, remove, revoke/resend an invitation
/// for). Owner → all four; admin → {admin, user}; manager → {manager, user}; user → none.
#[must_use]
pub fn assignable(actor: Role) -> &'static [Role] {
    match actor {
        Role::Owner => &[Role::Owner, Role::Admin, Role::Manager, Role::User],
        Role::Admin => &[Role::Admin, Role::User],
        Role::Manager => &[Role::Manager, Role::User],
        Role::User => &[],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        for bad in ["Owner", "OWNER", "superadmin", "", " user"] {
            assert_eq!(bad.parse::<Role>().unwrap_err().field, "role");
        }
    }

    #[test]
    fn assignable_matches_spec() {
        use Role::*;
        assert_eq!(assignable(Owner), &[Owner, Admin, Manager, User]);
        assert_eq!(assignable(Admin), &[Admin, User]);
        assert_eq!(assignable(Manager), &[Manager, User]);
        assert!(assignable(User).is_empty());
    }
}
