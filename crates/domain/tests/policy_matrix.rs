//! The role × action table (SPEC §7.1): every (actor kind, permission) cell, against a literal
//! table written from SPEC §2.3 independently of `policy.rs`. Both `permissions()` and
//! `authorize()` must agree with it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use inventiv_domain::{
    Action, Actor, Credential, DenyReason, Flag, OrgId, Permission, Role, UserId, Workspace,
    authorize, permissions,
};

// --- The actor kinds (columns) ------------------------------------------------------------------

const KINDS: [&str; 8] = [
    "personal user",
    "personal platform admin",
    "org owner",
    "org admin",
    "org manager",
    "org user",
    "org owner via API key",
    "personal platform admin via API key",
];

fn actor(workspace: Workspace, is_platform_admin: bool, credential: Credential) -> Actor {
    Actor {
        user: UserId::new(),
        is_platform_admin,
        workspace,
        credential,
    }
}

fn in_org(role: Role) -> Workspace {
    Workspace::Org {
        org: OrgId::new(),
        role,
    }
}

/// The actors, in `KINDS` order.
fn actors() -> [Actor; 8] {
    [
        actor(Workspace::Personal, false, Credential::Session),
        actor(Workspace::Personal, true, Credential::Session),
        actor(in_org(Role::Owner), false, Credential::Session),
        actor(in_org(Role::Admin), false, Credential::Session),
        actor(in_org(Role::Manager), false, Credential::Session),
        actor(in_org(Role::User), false, Credential::Session),
        actor(in_org(Role::Owner), false, Credential::ApiKey),
        actor(Workspace::Personal, true, Credential::ApiKey),
    ]
}

// --- The expected table (rows) ------------------------------------------------------------------

const OK: bool = true;
const __: bool = false;

/// Expected grants. Columns: personal user, personal platform admin, owner, admin, manager, user,
/// org owner via API key, personal platform admin via API key.
/// An exhaustive `match`, so a new permission cannot be added without a row here.
#[rustfmt::skip]
fn expected(permission: Permission) -> [bool; 8] {
    use Permission as P;
    match permission {
        //                             PU  PA  OW  AD  MA  US  KO  KP
        P::OrgView             =>     [__, __, OK, OK, OK, OK, OK, __],
        P::OrgUpdate           =>     [__, __, OK, __, __, __, __, __],
        P::OrgDelete           =>     [__, __, OK, __, __, __, __, __],
        P::OrgLeave            =>     [__, __, OK, OK, OK, OK, __, __],
        P::OrganizationsCreate =>     [OK, OK, OK, OK, OK, OK, __, __],
        P::MembersView         =>     [__, __, OK, OK, OK, OK, OK, __],
        P::MembersChangeRole   =>     [__, __, OK, OK, OK, __, __, __],
        P::MembersRemove       =>     [__, __, OK, OK, OK, __, __, __],
        P::InvitationsCreate   =>     [__, __, OK, OK, OK, __, __, __],
        P::InvitationsList     =>     [__, __, OK, OK, OK, __, __, __],
        P::InvitationsRevoke   =>     [__, __, OK, OK, OK, __, __, __],
        P::InvitationsResend   =>     [__, __, OK, OK, OK, __, __, __],
        P::InstancesView       =>     [OK, OK, OK, OK, OK, OK, OK, OK],
        P::InstancesDeploy     =>     [OK, OK, OK, OK, __, __, __, __],
        P::InstancesTerminate  =>     [OK, OK, OK, OK, __, __, __, __],
        P::InstancesReinstall  =>     [OK, OK, OK, OK, __, __, __, __],
        P::ModelsView          =>     [OK, OK, OK, OK, OK, OK, OK, OK],
        P::ModelsCreate        =>     [__, OK, OK, OK, __, __, __, __],
        P::ModelsUpdate        =>     [__, OK, OK, OK, __, __, __, __],
        P::ModelsDelete        =>     [__, OK, OK, OK, __, __, __, __],
        P::ActivationTech      =>     [__, __, OK, OK, __, __, __, __],
        P::ActivationEco       =>     [__, __, OK, __, OK, __, __, __],
        P::OfferingsView       =>     [__, __, OK, OK, OK, OK, OK, __],
        P::OfferingsManage     =>     [__, __, OK, OK, __, __, __, __],
        P::SharesView          =>     [__, __, OK, OK, OK, OK, OK, __],
        P::SharesManage        =>     [__, __, OK, OK, __, __, __, __],
        P::PricesSet           =>     [__, __, OK, __, OK, __, __, __],
        P::SharesAccept        =>     [__, __, OK, __, OK, __, __, __],
        P::SharesControlReceived =>   [__, __, OK, OK, OK, __, __, __],
        P::MarketplaceView     =>     [__, __, OK, OK, OK, OK, OK, __],
        P::AccessRequestsCreate =>    [__, __, OK, __, OK, __, __, __],
        P::AccessRequestsView  =>     [__, __, OK, OK, OK, __, __, __],
        P::AccessRequestsDecide =>    [__, __, OK, OK, __, __, __, __],
        P::ApiKeysView         =>     [OK, OK, OK, OK, OK, OK, OK, OK],
        P::ApiKeysCreate       =>     [OK, OK, OK, OK, __, __, __, __],
        P::ApiKeysRevoke       =>     [OK, OK, OK, OK, __, __, __, __],
        P::UsersList           =>     [__, OK, OK, OK, OK, __, __, __],
        P::UsersCreate         =>     [__, OK, OK, OK, __, __, __, __],
        P::UsersUpdate         =>     [__, OK, __, __, __, __, __, __],
        P::UsersDelete         =>     [__, OK, __, __, __, __, __, __],
        P::FinopsView          =>     [OK, OK, OK, OK, OK, __, __, OK],
        P::AuditView           =>     [__, __, OK, OK, OK, __, __, __],
        P::PlatformAuditView   =>     [__, OK, __, __, __, __, __, __],
        P::InferenceUse        =>     [OK, OK, OK, OK, OK, OK, OK, OK],
        P::WorkbenchView       =>     [OK, OK, OK, OK, OK, OK, OK, OK],
        P::WorkbenchUse        =>     [OK, OK, OK, OK, OK, OK, __, __],
        P::SettingsManage      =>     [__, OK, OK, __, __, __, __, __],
    }
}

/// Every concrete action that needs `permission`, with every parameter value.
fn actions_for(permission: Permission) -> Vec<Action> {
    use Permission as P;
    let per_role = |make: fn(Role) -> Action| Role::ALL.map(make).to_vec();
    match permission {
        P::OrgView => vec![Action::ViewOrg],
        P::OrgUpdate => vec![Action::UpdateOrg],
        P::OrgDelete => vec![Action::DeleteOrg],
        P::OrgLeave => vec![Action::LeaveOrg],
        P::OrganizationsCreate => vec![Action::CreateOrganization],
        P::MembersView => vec![Action::ViewMembers],
        P::MembersChangeRole => Role::ALL
            .into_iter()
            .flat_map(|from| Role::ALL.map(|to| Action::ChangeRole { from, to }))
            .collect(),
        P::MembersRemove => per_role(|role| Action::RemoveMember { role }),
        P::InvitationsCreate => per_role(|role| Action::Invite { role }),
        P::InvitationsList => vec![Action::ListInvitations],
        P::InvitationsRevoke => per_role(|role| Action::RevokeInvitation { role }),
        P::InvitationsResend => per_role(|role| Action::ResendInvitation { role }),
        P::InstancesView => vec![Action::ViewInstances],
        P::InstancesDeploy => vec![Action::Deploy],
        P::InstancesTerminate => vec![Action::Terminate],
        P::InstancesReinstall => vec![Action::Reinstall],
        P::ModelsView => vec![Action::ViewModels],
        P::ModelsCreate => vec![Action::CreateModel],
        P::ModelsUpdate => vec![Action::UpdateModel],
        P::ModelsDelete => vec![Action::DeleteModel],
        P::ActivationTech => vec![Action::SetActivation { flag: Flag::Tech }],
        P::ActivationEco => vec![Action::SetActivation { flag: Flag::Eco }],
        P::OfferingsView => vec![Action::ViewOfferings],
        P::OfferingsManage => vec![Action::ManageOffering],
        P::SharesView => vec![Action::ViewShares],
        P::SharesManage => vec![Action::ManageShare],
        P::PricesSet => vec![Action::SetPrice],
        P::SharesAccept => vec![Action::AcceptShare],
        P::SharesControlReceived => vec![Action::ControlReceivedShare],
        P::MarketplaceView => vec![Action::ViewMarketplace],
        P::AccessRequestsCreate => vec![Action::RequestAccess],
        P::AccessRequestsView => vec![Action::ViewAccessRequests],
        P::AccessRequestsDecide => vec![Action::DecideAccessRequest],
        P::ApiKeysView => vec![Action::ViewApiKeys],
        P::ApiKeysCreate => vec![Action::CreateApiKey],
        P::ApiKeysRevoke => vec![Action::RevokeApiKey],
        P::UsersList => vec![Action::ListUsers],
        P::UsersCreate => {
            let mut actions = vec![Action::CreateUser { role: None }];
            actions.extend(Role::ALL.map(|role| Action::CreateUser { role: Some(role) }));
            actions
        }
        P::UsersUpdate => vec![Action::UpdateUser],
        P::UsersDelete => vec![Action::DeleteUser],
        P::FinopsView => vec![Action::ViewFinops],
        P::AuditView => vec![Action::ViewAudit],
        P::PlatformAuditView => vec![Action::ViewPlatformAudit],
        P::InferenceUse => vec![Action::UseInference],
        P::WorkbenchView => vec![Action::ViewWorkbench],
        P::WorkbenchUse => vec![Action::UseWorkbench],
        P::SettingsManage => vec![Action::ManageSettings],
    }
}

// --- The tests -----------------------------------------------------------------------------------

#[test]
fn permissions_match_the_table_in_every_cell() {
    let actors = actors();
    let mut cells = 0;
    for permission in Permission::ALL {
        let row = expected(*permission);
        for (column, actor) in actors.iter().enumerate() {
            let listed = permissions(actor).contains(permission);
            assert_eq!(
                listed,
                row[column],
                "permissions(): {} / {}",
                KINDS[column],
                permission.name()
            );
            cells += 1;
        }
    }
    assert_eq!(cells, 47 * 8);
}

#[test]
fn authorize_matches_the_table_in_every_cell() {
    let actors = actors();
    for permission in Permission::ALL {
        let row = expected(*permission);
        let actions = actions_for(*permission);
        assert!(!actions.is_empty());
        for action in &actions {
            assert_eq!(action.permission(), *permission, "{action:?}");
        }
        for (column, actor) in actors.iter().enumerate() {
            let results: Vec<_> = actions.iter().map(|a| authorize(actor, *a)).collect();
            let cell = format!("{} / {}", KINDS[column], permission.name());
            if row[column] {
                // Granted: at least one parameter choice passes, and any refusal is about the
                // parameters (§2.1), never about the permission.
                assert!(
                    results.iter().any(Result::is_ok),
                    "{cell}: expected allowed"
                );
                for result in &results {
                    if let Err(denied) = result {
                        assert!(
                            matches!(
                                denied.reason,
                                DenyReason::RoleChangeNotAllowed | DenyReason::RequiresOrgWorkspace
                            ),
                            "{cell}: unexpected {denied:?}"
                        );
                    }
                }
            } else {
                assert!(
                    results.iter().all(Result::is_err),
                    "{cell}: expected denied for every parameter choice"
                );
            }
        }
    }
}

#[test]
fn every_permission_is_in_the_table() {
    // `expected` is an exhaustive match; this checks `ALL` is complete and ordered as declared.
    assert_eq!(Permission::ALL.len(), 47);
    let names: Vec<&str> = Permission::ALL.iter().map(Permission::name).collect();
    assert_eq!(names.first(), Some(&"org.view"));
    assert_eq!(names.last(), Some(&"settings.manage"));
}

#[test]
fn platform_admins_get_nothing_extra_in_an_org() {
    for role in Role::ALL {
        let plain = actor(in_org(role), false, Credential::Session);
        let admin = Actor {
            is_platform_admin: true,
            ..plain
        };
        assert_eq!(permissions(&plain), permissions(&admin), "{role}");
        for permission in Permission::ALL {
            for action in actions_for(*permission) {
                assert_eq!(
                    authorize(&plain, action),
                    authorize(&admin, action),
                    "{role} {action:?}"
                );
            }
        }
    }
}

#[test]
fn api_keys_act_as_users_whatever_the_creators_role() {
    let as_user = permissions(&actor(in_org(Role::User), false, Credential::Session));
    for role in Role::ALL {
        let key = actor(in_org(role), true, Credential::ApiKey);
        let granted = permissions(&key);
        for permission in &granted {
            assert!(
                permission.is_read() || *permission == Permission::InferenceUse,
                "{role} key: {}",
                permission.name()
            );
        }
        let expected: Vec<Permission> = as_user
            .iter()
            .copied()
            .filter(|p| p.is_read() || *p == Permission::InferenceUse)
            .collect();
        assert_eq!(granted, expected, "{role} key");
    }
}

// --- Deny reasons --------------------------------------------------------------------------------

fn reason(actor: &Actor, action: Action) -> Option<DenyReason> {
    authorize(actor, action).err().map(|denied| denied.reason)
}

#[test]
fn deny_reasons() {
    let personal = actor(Workspace::Personal, false, Credential::Session);
    let platform_admin = actor(Workspace::Personal, true, Credential::Session);
    let owner = actor(in_org(Role::Owner), false, Credential::Session);
    let admin = actor(in_org(Role::Admin), false, Credential::Session);
    let manager = actor(in_org(Role::Manager), false, Credential::Session);
    let user = actor(in_org(Role::User), false, Credential::Session);
    let owner_key = actor(in_org(Role::Owner), false, Credential::ApiKey);
    let user_key = actor(in_org(Role::User), false, Credential::ApiKey);
    let personal_key = actor(Workspace::Personal, true, Credential::ApiKey);

    use DenyReason::*;
    #[rustfmt::skip]
    let cases: &[(&str, &Actor, Action, Option<DenyReason>)] = &[
        // Role does not hold the permission.
        ("user updates org", &user, Action::UpdateOrg, Some(NotAllowed)),
        ("manager deploys", &manager, Action::Deploy, Some(NotAllowed)),
        ("admin sets a price", &admin, Action::SetPrice, Some(NotAllowed)),
        ("owner deletes a platform user", &owner, Action::DeleteUser, Some(NotAllowed)),
        ("personal lists users", &personal, Action::ListUsers, Some(NotAllowed)),
        ("manager creates a user", &manager, Action::CreateUser { role: Some(Role::User) }, Some(NotAllowed)),
        ("admin sets eco", &admin, Action::SetActivation { flag: Flag::Eco }, Some(NotAllowed)),
        ("user invites", &user, Action::Invite { role: Role::User }, Some(NotAllowed)),
        // Permission held, §2.1 refuses the parameters.
        ("admin promotes to owner", &admin, Action::ChangeRole { from: Role::User, to: Role::Owner }, Some(RoleChangeNotAllowed)),
        ("admin demotes a manager", &admin, Action::ChangeRole { from: Role::Manager, to: Role::User }, Some(RoleChangeNotAllowed)),
        ("owner 'changes' to the same role", &owner, Action::ChangeRole { from: Role::User, to: Role::User }, Some(RoleChangeNotAllowed)),
        ("admin keeps an owner an owner", &admin, Action::KeepRole { role: Role::Owner }, Some(RoleChangeNotAllowed)),
        ("manager keeps an admin an admin", &manager, Action::KeepRole { role: Role::Admin }, Some(RoleChangeNotAllowed)),
        ("user keeps a user a user", &user, Action::KeepRole { role: Role::User }, Some(NotAllowed)),
        ("manager removes an admin", &manager, Action::RemoveMember { role: Role::Admin }, Some(RoleChangeNotAllowed)),
        ("manager invites an admin", &manager, Action::Invite { role: Role::Admin }, Some(RoleChangeNotAllowed)),
        ("admin revokes a manager invitation", &admin, Action::RevokeInvitation { role: Role::Manager }, Some(RoleChangeNotAllowed)),
        ("manager resends an owner invitation", &manager, Action::ResendInvitation { role: Role::Owner }, Some(RoleChangeNotAllowed)),
        ("admin creates a manager", &admin, Action::CreateUser { role: Some(Role::Manager) }, Some(RoleChangeNotAllowed)),
        ("owner creates a user without a role", &owner, Action::CreateUser { role: None }, Some(RoleChangeNotAllowed)),
        // Org-only permissions in Personal.
        ("personal views org", &personal, Action::ViewOrg, Some(RequiresOrgWorkspace)),
        ("platform admin invites", &platform_admin, Action::Invite { role: Role::User }, Some(RequiresOrgWorkspace)),
        ("platform admin views audit", &platform_admin, Action::ViewAudit, Some(RequiresOrgWorkspace)),
        ("personal sets tech", &personal, Action::SetActivation { flag: Flag::Tech }, Some(RequiresOrgWorkspace)),
        ("personal sets a price", &personal, Action::SetPrice, Some(RequiresOrgWorkspace)),
        ("platform admin creates a user with a role", &platform_admin, Action::CreateUser { role: Some(Role::User) }, Some(RequiresOrgWorkspace)),
        // API keys.
        ("owner key deploys", &owner_key, Action::Deploy, Some(ApiKeyNotAllowed)),
        ("owner key invites", &owner_key, Action::Invite { role: Role::User }, Some(ApiKeyNotAllowed)),
        ("owner key reads finops", &owner_key, Action::ViewFinops, Some(ApiKeyNotAllowed)),
        ("owner key reads audit", &owner_key, Action::ViewAudit, Some(ApiKeyNotAllowed)),
        ("user key reads finops", &user_key, Action::ViewFinops, Some(NotAllowed)),
        ("user key leaves the org", &user_key, Action::LeaveOrg, Some(ApiKeyNotAllowed)),
        ("personal key lists users", &personal_key, Action::ListUsers, Some(ApiKeyNotAllowed)),
        ("personal key creates a key", &personal_key, Action::CreateApiKey, Some(ApiKeyNotAllowed)),
        ("personal key views org", &personal_key, Action::ViewOrg, Some(RequiresOrgWorkspace)),
        ("personal key updates org", &personal_key, Action::UpdateOrg, Some(ApiKeyNotAllowed)),
        // Allowed.
        ("owner key infers", &owner_key, Action::UseInference, None),
        ("owner key lists members", &owner_key, Action::ViewMembers, None),
        ("personal key reads own costs", &personal_key, Action::ViewFinops, None),
        ("admin promotes a user to admin", &admin, Action::ChangeRole { from: Role::User, to: Role::Admin }, None),
        ("admin keeps an admin an admin", &admin, Action::KeepRole { role: Role::Admin }, None),
        ("manager keeps a user a user", &manager, Action::KeepRole { role: Role::User }, None),
        ("manager removes a user", &manager, Action::RemoveMember { role: Role::User }, None),
        ("owner creates an owner", &owner, Action::CreateUser { role: Some(Role::Owner) }, None),
        ("platform admin creates an account", &platform_admin, Action::CreateUser { role: None }, None),
        ("manager sets eco", &manager, Action::SetActivation { flag: Flag::Eco }, None),
        ("personal deploys own instance", &personal, Action::Deploy, None),
    ];
    for (name, actor, action, expected) in cases {
        assert_eq!(reason(actor, *action), *expected, "{name}");
    }
}

#[test]
fn deny_codes_are_stable() {
    let codes: Vec<&str> = [
        DenyReason::NotAllowed,
        DenyReason::RoleChangeNotAllowed,
        DenyReason::RequiresOrgWorkspace,
        DenyReason::ApiKeyNotAllowed,
    ]
    .iter()
    .map(|reason| reason.code().as_str())
    .collect();
    assert_eq!(
        codes,
        [
            "forbidden",
            "role_change_not_allowed",
            "organization_required",
            "api_key_not_allowed"
        ]
    );
}

// --- Delegation through authorize ------------------------------------------------------------------

/// SPEC §2.1, written out: the roles each org role may assign.
fn assignable_by(actor: Role) -> &'static [Role] {
    match actor {
        Role::Owner => &[Role::Owner, Role::Admin, Role::Manager, Role::User],
        Role::Admin => &[Role::Admin, Role::User],
        Role::Manager => &[Role::Manager, Role::User],
        Role::User => &[],
    }
}

#[test]
fn authorize_applies_delegation_to_every_triple() {
    for actor_role in Role::ALL {
        let member = actor(in_org(actor_role), false, Credential::Session);
        let may = assignable_by(actor_role);
        // A user holds none of these permissions at all; the others hold them and are limited
        // by §2.1.
        let refusal = if actor_role == Role::User {
            DenyReason::NotAllowed
        } else {
            DenyReason::RoleChangeNotAllowed
        };
        let verdict = |allowed: bool| if allowed { None } else { Some(refusal) };
        for from in Role::ALL {
            for to in Role::ALL {
                let allowed = from != to && may.contains(&from) && may.contains(&to);
                assert_eq!(
                    reason(&member, Action::ChangeRole { from, to }),
                    verdict(allowed),
                    "{actor_role} changes {from} -> {to}"
                );
            }
            let allowed = may.contains(&from);
            for action in [
                Action::Invite { role: from },
                Action::RemoveMember { role: from },
                Action::RevokeInvitation { role: from },
                Action::ResendInvitation { role: from },
            ] {
                assert_eq!(
                    reason(&member, action),
                    verdict(allowed),
                    "{actor_role} {action:?}"
                );
            }
        }
    }
}
