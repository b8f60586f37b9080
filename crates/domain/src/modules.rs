//! Frontend modules (SPEC §2.4), returned by `GET /auth/me`. Derived from
//! [`crate::policy::permissions`] — the same map as the API guards — so the UI can never show a
//! module whose actions the API would refuse, nor hide one it would allow.

use serde::{Deserialize, Serialize};

use crate::policy::{Permission, permissions};
use crate::workspace::Actor;

/// A frontend module. Serialized snake_case (`"api_keys"`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleId {
    /// Home page; always visible.
    Dashboard,
    /// Chat with a model (inference).
    Chat,
    /// Prompt workbench (inference).
    Workbench,
    /// Models.
    Models,
    /// API keys.
    ApiKeys,
    /// Organizations (create / switch).
    Organizations,
    /// Instances.
    Instances,
    /// Members of the current org.
    Members,
    /// Invitations of the current org.
    Invitations,
    /// Users (org users, or all users for platform admins).
    Users,
    /// Costs, usage, revenue.
    Finops,
    /// Audit log.
    Audit,
    /// Offerings, shares and prices.
    Sharing,
    /// Org or platform settings.
    Settings,
}

impl ModuleId {
    /// Every module, in display order.
    pub const ALL: [ModuleId; 14] = [
        ModuleId::Dashboard,
        ModuleId::Chat,
        ModuleId::Workbench,
        ModuleId::Models,
        ModuleId::ApiKeys,
        ModuleId::Organizations,
        ModuleId::Instances,
        ModuleId::Members,
        ModuleId::Invitations,
        ModuleId::Users,
        ModuleId::Finops,
        ModuleId::Audit,
        ModuleId::Sharing,
        ModuleId::Settings,
    ];

    /// The wire name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ModuleId::Dashboard => "dashboard",
            ModuleId::Chat => "chat",
            ModuleId::Workbench => "workbench",
            ModuleId::Models => "models",
            ModuleId::ApiKeys => "api_keys",
            ModuleId::Organizations => "organizations",
            ModuleId::Instances => "instances",
            ModuleId::Members => "members",
            ModuleId::Invitations => "invitations",
            ModuleId::Users => "users",
            ModuleId::Finops => "finops",
            ModuleId::Audit => "audit",
            ModuleId::Sharing => "sharing",
            ModuleId::Settings => "settings",
        }
    }
}

/// How much of a module the actor may use. Serialized lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Visible, read-only.
    Read,
    /// Visible, with its write actions.
    Write,
}

impl Access {
    /// The wire name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One visible module: `{"id": "...", "access": "read" | "write"}`. A module absent from the
/// list is hidden.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Module {
    /// Which module.
    pub id: ModuleId,
    /// Read or write.
    pub access: Access,
}

/// The visible modules for `actor`, in [`ModuleId::ALL`] order, derived from
/// [`permissions`]. Note: the personal workspace shows `instances` (write) because personal users
/// manage their own legacy instances.
#[must_use]
pub fn modules(actor: &Actor) -> Vec<Module> {
    let granted = permissions(actor);
    let has = |p: Permission| granted.contains(&p);
    let write_else_read = |write: Permission, read: Permission| {
        if has(write) {
            Some(Access::Write)
        } else if has(read) {
            Some(Access::Read)
        } else {
            None
        }
    };
    let write_if = |allowed: bool| allowed.then_some(Access::Write);
    let read_if = |allowed: bool| allowed.then_some(Access::Read);

    ModuleId::ALL
        .into_iter()
        .filter_map(|id| {
            let access = match id {
                ModuleId::Dashboard => Some(Access::Read),
                ModuleId::Chat => write_if(has(Permission::InferenceUse)),
                ModuleId::Workbench => {
                    write_else_read(Permission::WorkbenchUse, Permission::WorkbenchView)
                }
                ModuleId::Models => {
                    write_else_read(Permission::ModelsCreate, Permission::ModelsView)
                }
                ModuleId::ApiKeys => {
                    write_else_read(Permission::ApiKeysCreate, Permission::ApiKeysView)
                }
                ModuleId::Organizations => write_if(has(Permission::OrganizationsCreate)),
                ModuleId::Instances => {
                    write_else_read(Permission::InstancesDeploy, Permission::InstancesView)
                }
                ModuleId::Members => {
                    write_else_read(Permission::MembersChangeRole, Permission::MembersView)
                }
                ModuleId::Invitations => write_if(has(Permission::InvitationsCreate)),
                ModuleId::Users => write_else_read(Permission::UsersCreate, Permission::UsersList),
                ModuleId::Finops => read_if(has(Permission::FinopsView)),
                ModuleId::Audit => read_if(has(Permission::AuditView)),
                ModuleId::Sharing => write_if(
                    has(Permission::SharesManage)
                        || has(Permission::PricesSet)
                        || has(Permission::SharesAccept)
                        || has(Permission::SharesControlReceived)
                        || has(Permission::AccessRequestsCreate)
                        || has(Permission::AccessRequestsDecide),
                ),
                ModuleId::Settings => write_if(has(Permission::SettingsManage)),
            };
            access.map(|access| Module { id, access })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        for id in ModuleId::ALL {
            assert_eq!(
                serde_json::to_string(&id).unwrap(),
                format!("\"{}\"", id.as_str())
            );
        }
        let module = Module {
            id: ModuleId::ApiKeys,
            access: Access::Write,
        };
        assert_eq!(
            serde_json::to_string(&module).unwrap(),
            r#"{"id":"api_keys","access":"write"}"#
        );
        assert_eq!(Access::Read.as_str(), "read");
    }
}
