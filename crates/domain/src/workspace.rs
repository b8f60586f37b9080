//! Who is acting, and in which workspace. A session's workspace is the scope of every business
//! endpoint it calls (SPEC §1); repositories take a [`Scope`] so a tenant filter cannot be
//! forgotten (house rule 3).

use crate::ids::{OrgId, UserId};
use crate::role::Role;

/// What a session (or API key) is currently acting in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workspace {
    /// No org: the user's own legacy resources, personal API keys, public models.
    Personal,
    /// An organization, with the actor's *current* membership role (loaded from the membership
    /// row on every request, never trusted from a token).
    Org {
        /// The organization.
        org: OrgId,
        /// The actor's role in it.
        role: Role,
    },
}

/// The owner of scoped rows: a user's personal rows (`organization_id` NULL + `owner_user_id`)
/// or an organization's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Rows with `organization_id` NULL owned by this user.
    Personal(UserId),
    /// Rows with this `organization_id`.
    Org(OrgId),
}

/// How the actor authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A browser or CLI session (cookie or bearer JWT).
    Session,
    /// An API key. Restricted by [`crate::policy::authorize`] to reads and inference, acting as a
    /// `user` of its org and never with platform-admin powers.
    ApiKey,
}

/// The authenticated caller, as the policy sees it.
///
/// Invariant (enforced by `authorize`, not by callers): with [`Credential::ApiKey`] the actor
/// acts as a `User` of its org and never as a platform admin, whatever `workspace.role` and
/// `is_platform_admin` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The user behind the session or API key.
    pub user: UserId,
    /// The global platform-admin flag of the user (false by default).
    pub is_platform_admin: bool,
    /// The workspace of this session or key.
    pub workspace: Workspace,
    /// How the actor authenticated.
    pub credential: Credential,
}

impl Actor {
    /// The scope of every business call this actor makes.
    #[must_use]
    pub const fn scope(&self) -> Scope {
        match self.workspace {
            Workspace::Personal => Scope::Personal(self.user),
            Workspace::Org { org, .. } => Scope::Org(org),
        }
    }

    /// The role the policy uses in the org workspace: the membership role for a session, always
    /// `User` for an API key; `None` in the personal workspace.
    #[must_use]
    pub const fn org_role(&self) -> Option<Role> {
        match (self.workspace, self.credential) {
            (Workspace::Personal, Credential::Session | Credential::ApiKey) => None,
            (Workspace::Org { role, .. }, Credential::Session) => Some(role),
            (Workspace::Org { .. }, Credential::ApiKey) => Some(Role::User),
        }
    }

    /// Whether the policy grants platform-admin rights: only to a platform admin using a session.
    #[must_use]
    pub const fn acts_as_platform_admin(&self) -> bool {
        match self.credential {
            Credential::Session => self.is_platform_admin,
            Credential::ApiKey => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_the_workspace() {
        let user = UserId::new();
        let org = OrgId::new();
        let personal = Actor {
            user,
            is_platform_admin: false,
            workspace: Workspace::Personal,
            credential: Credential::Session,
        };
        assert_eq!(personal.scope(), Scope::Personal(user));
        assert_eq!(personal.org_role(), None);

        let member = Actor {
            workspace: Workspace::Org {
                org,
                role: Role::Admin,
            },
            ..personal
        };
        assert_eq!(member.scope(), Scope::Org(org));
        assert_eq!(member.org_role(), Some(Role::Admin));
    }

    #[test]
    fn api_keys_act_as_plain_users() {
        let org = OrgId::new();
        let key = Actor {
            user: UserId::new(),
            is_platform_admin: true,
            workspace: Workspace::Org {
                org,
                role: Role::Owner,
            },
            credential: Credential::ApiKey,
        };
        assert_eq!(key.org_role(), Some(Role::User));
        assert!(!key.acts_as_platform_admin());
        assert_eq!(key.scope(), Scope::Org(org));

        let session = Actor {
            credential: Credential::Session,
            ..key
        };
        assert_eq!(session.org_role(), Some(Role::Owner));
        assert!(session.acts_as_platform_admin());
    }
}
