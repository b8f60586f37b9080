//! Modules per workspace (SPEC §2.4), against literal expectations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inventiv_domain::{Actor, Credential, OrgId, Role, UserId, Workspace, modules};

fn listed(workspace: Workspace, is_platform_admin: bool, credential: Credential) -> Vec<String> {
    let actor = Actor {
        user: UserId::new(),
        is_platform_admin,
        workspace,
        credential,
    };
    modules(&actor)
        .iter()
        .map(|m| format!("{}:{}", m.id.as_str(), m.access.as_str()))
        .collect()
}

fn org(role: Role) -> Workspace {
    Workspace::Org {
        org: OrgId::new(),
        role,
    }
}

#[test]
fn personal() {
    // `instances:write`: personal users manage their own legacy instances (intended).
    assert_eq!(
        listed(Workspace::Personal, false, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:read",
            "api_keys:write",
            "organizations:write",
            "instances:write",
            "finops:read",
        ]
    );
}

#[test]
fn personal_platform_admin() {
    assert_eq!(
        listed(Workspace::Personal, true, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:write",
            "api_keys:write",
            "organizations:write",
            "instances:write",
            "users:write",
            "finops:read",
            "settings:write",
        ]
    );
}

#[test]
fn org_user() {
    assert_eq!(
        listed(org(Role::User), false, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:read",
            "api_keys:read",
            "organizations:write",
            "instances:read",
            "members:read",
        ]
    );
}

#[test]
fn org_manager() {
    assert_eq!(
        listed(org(Role::Manager), false, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:read",
            "api_keys:read",
            "organizations:write",
            "instances:read",
            "members:write",
            "invitations:write",
            "users:read",
            "finops:read",
            "audit:read",
            "sharing:write",
        ]
    );
}

#[test]
fn org_admin() {
    assert_eq!(
        listed(org(Role::Admin), false, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:write",
            "api_keys:write",
            "organizations:write",
            "instances:write",
            "members:write",
            "invitations:write",
            "users:write",
            "finops:read",
            "audit:read",
            "sharing:write",
        ]
    );
}

#[test]
fn org_owner() {
    assert_eq!(
        listed(org(Role::Owner), false, Credential::Session),
        [
            "dashboard:read",
            "chat:write",
            "workbench:write",
            "models:write",
            "api_keys:write",
            "organizations:write",
            "instances:write",
            "members:write",
            "invitations:write",
            "users:write",
            "finops:read",
            "audit:read",
            "sharing:write",
            "settings:write",
        ]
    );
}

#[test]
fn platform_admin_in_an_org_sees_only_the_role() {
    for role in Role::ALL {
        assert_eq!(
            listed(org(role), true, Credential::Session),
            listed(org(role), false, Credential::Session),
            "{role}"
        );
    }
}

#[test]
fn api_keys_see_read_modules_only() {
    assert_eq!(
        listed(org(Role::Owner), true, Credential::ApiKey),
        [
            "dashboard:read",
            "chat:write",
            "workbench:read",
            "models:read",
            "api_keys:read",
            "instances:read",
            "members:read",
        ]
    );
}
