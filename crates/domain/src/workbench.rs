//! The workbench's own rules (SPEC §4.8): who sees and who writes a project or a run, where a
//! run may be shared, and what a message may hold.
//!
//! Projects and runs belong to one user in one workspace. Every member may use the workbench
//! ([`crate::Permission::WorkbenchUse`]); on top of that permission, a project or a run is
//! written **only by its owner** — a colleague who sees it because it is shared with the org
//! reads it, nothing more (the seed let colleagues re-title shared runs; the spec forbids it).
//! Sharing exists only in an org workspace: there is nobody to share a personal run with.

use crate::error_code::ErrorCode;
use crate::ids::UserId;
use crate::values::ValueError;
use crate::workspace::Workspace;

/// Who owns a project or a run, and whether it is shared with the org of its workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ownership {
    /// The user who created it.
    pub owner: UserId,
    /// Shared read-only with every member of its org.
    pub shared_with_org: bool,
}

/// Why a workbench write was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkbenchDenied {
    /// A colleague's shared project or run: readable, never writable (403).
    #[error("only its owner may change it")]
    NotOwner,
    /// `shared_with_org: true` in the personal workspace (400).
    #[error("sharing needs an organization workspace")]
    SharingNeedsOrg,
}

impl WorkbenchDenied {
    /// The stable error code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            WorkbenchDenied::NotOwner => ErrorCode::WorkbenchOwnerOnly,
            WorkbenchDenied::SharingNeedsOrg => ErrorCode::SharingRequiresOrganization,
        }
    }
}

/// May `viewer` see an item of its own workspace owned as `item` says? Its owner always; a
/// colleague only when it is shared. (Rows of other workspaces never reach this: the tenant
/// scope filters them first.)
#[must_use]
pub fn can_see(viewer: UserId, item: Ownership) -> bool {
    item.owner == viewer || item.shared_with_org
}

/// May `actor` change, delete, re-share or (for a run) continue `item`? Only its owner.
pub fn ensure_owner(actor: UserId, item: Ownership) -> Result<(), WorkbenchDenied> {
    if item.owner == actor {
        Ok(())
    } else {
        Err(WorkbenchDenied::NotOwner)
    }
}

/// May an item of `workspace` carry `shared_with_org`? Always `false`; `true` only in an org.
pub fn ensure_shareable(
    workspace: Workspace,
    shared_with_org: bool,
) -> Result<(), WorkbenchDenied> {
    match (workspace, shared_with_org) {
        (_, false) | (Workspace::Org { .. }, true) => Ok(()),
        (Workspace::Personal, true) => Err(WorkbenchDenied::SharingNeedsOrg),
    }
}

/// The text of one message: 1 to [`MessageContent::MAX_CHARS`] characters, not only blanks; line
/// breaks and tabs are kept (it is prose or code), other control characters are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    /// The longest message accepted, in characters.
    pub const MAX_CHARS: usize = 100_000;

    /// Checks a message as typed (not trimmed: leading spaces can matter in code).
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        if input.trim().is_empty() || input.chars().count() > Self::MAX_CHARS {
            return Err(ValueError::new(
                "content",
                format!("must be 1 to {} characters long", Self::MAX_CHARS),
            ));
        }
        if input
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(ValueError::new(
                "content",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    #[must_use]
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ids::OrgId;
    use crate::role::Role;

    fn item(owner: UserId, shared_with_org: bool) -> Ownership {
        Ownership {
            owner,
            shared_with_org,
        }
    }

    #[test]
    fn the_owner_sees_and_writes_colleagues_only_read_what_is_shared() {
        let (owner, colleague) = (UserId::new(), UserId::new());
        for shared in [false, true] {
            assert!(can_see(owner, item(owner, shared)));
            assert_eq!(ensure_owner(owner, item(owner, shared)), Ok(()));
            assert_eq!(can_see(colleague, item(owner, shared)), shared);
            assert_eq!(
                ensure_owner(colleague, item(owner, shared)),
                Err(WorkbenchDenied::NotOwner)
            );
        }
    }

    #[test]
    fn only_org_items_are_shared() {
        let org = Workspace::Org {
            org: OrgId::new(),
            role: Role::User,
        };
        assert_eq!(ensure_shareable(org, true), Ok(()));
        assert_eq!(ensure_shareable(org, false), Ok(()));
        assert_eq!(ensure_shareable(Workspace::Personal, false), Ok(()));
        assert_eq!(
            ensure_shareable(Workspace::Personal, true),
            Err(WorkbenchDenied::SharingNeedsOrg)
        );
        assert_eq!(
            WorkbenchDenied::SharingNeedsOrg.code().as_str(),
            "sharing_requires_organization"
        );
        assert_eq!(
            WorkbenchDenied::NotOwner.code().as_str(),
            "workbench_owner_only"
        );
    }

    #[test]
    fn message_content() {
        assert!(MessageContent::parse("").is_err());
        assert!(MessageContent::parse(" \n ").is_err());
        assert!(MessageContent::parse("a\u{0}b").is_err());
        assert_eq!(
            MessageContent::parse("  fn main() {\n\tok\r\n}")
                .unwrap()
                .as_str(),
            "  fn main() {\n\tok\r\n}"
        );
        let long = "x".repeat(MessageContent::MAX_CHARS);
        assert!(MessageContent::parse(&long).is_ok());
        assert!(MessageContent::parse(&format!("{long}x")).is_err());
    }
}
