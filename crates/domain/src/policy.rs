//! The one permission map (SPEC §2.3, the personal workspace and platform admins). It drives the
//! API guards ([`authorize`]), `GET /auth/me` ([`permissions`], [`crate::modules::modules`]) and
//! `docs/authorization.md`.
//!
//! Deny by default: a permission is granted only where a `match` arm below grants it, and every
//! `match` is exhaustive without a wildcard, so a new permission, action or role does not compile
//! until it is placed in the map.
//!
//! Decision order in [`authorize`]:
//! 1. the permission, from the workspace map (org role / personal / platform admin);
//! 2. for an API key: only reads and inference, as a `user` of the org, never as platform admin;
//! 3. the action's parameters (delegation §2.1, activation roles).

use std::fmt;

use serde::{Serialize, Serializer};

use crate::activation::{Flag, can_set_roles};
use crate::delegation::{can_change_role, can_invite, can_manage_invitation, can_remove};
use crate::error_code::ErrorCode;
use crate::role::{Role, assignable};
use crate::workspace::{Actor, Credential, Workspace};

/// A permission as listed by `GET /auth/me` and the authorization matrix. Serialized as its
/// dotted [`name`](Permission::name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// See the org (`org.view`).
    OrgView,
    /// Rename the org, change its settings (`org.update`).
    OrgUpdate,
    /// Delete the org (`org.delete`).
    OrgDelete,
    /// Leave the org (`org.leave`); the last owner is refused by [`crate::owners`].
    OrgLeave,
    /// Create a new organization (`organizations.create`).
    OrganizationsCreate,
    /// List members (`members.view`).
    MembersView,
    /// Change a member's role, per §2.1 (`members.change_role`).
    MembersChangeRole,
    /// Remove a member, per §2.1 (`members.remove`).
    MembersRemove,
    /// Invite someone, per §2.1 (`invitations.create`).
    InvitationsCreate,
    /// List invitations (`invitations.list`).
    InvitationsList,
    /// Revoke a pending invitation, per §2.1 (`invitations.revoke`).
    InvitationsRevoke,
    /// Resend an invitation, per §2.1 (`invitations.resend`).
    InvitationsResend,
    /// See instances (`instances.view`).
    InstancesView,
    /// Create a deployment (`instances.deploy`).
    InstancesDeploy,
    /// Terminate an instance (`instances.terminate`).
    InstancesTerminate,
    /// Reinstall an instance (`instances.reinstall`).
    InstancesReinstall,
    /// See models (`models.view`).
    ModelsView,
    /// Create a model: org model, or public catalogue for platform admins (`models.create`).
    ModelsCreate,
    /// Update a model (`models.update`).
    ModelsUpdate,
    /// Delete a model (`models.delete`).
    ModelsDelete,
    /// Set or clear the technical activation flag (`activation.tech`).
    ActivationTech,
    /// Set or clear the economic activation flag (`activation.eco`).
    ActivationEco,
    /// See offerings (`offerings.view`).
    OfferingsView,
    /// Create, update, publish and unpublish offerings (`offerings.manage`).
    OfferingsManage,
    /// See shares (`shares.view`).
    SharesView,
    /// Grant, pause, resume and revoke shares (`shares.manage`).
    SharesManage,
    /// Set offering default prices and share prices (`prices.set`).
    PricesSet,
    /// Accept or decline a received share, set its spend cap (`shares.accept`).
    SharesAccept,
    /// Pause, resume or revoke a received share, consumer side (`shares.control_received`).
    SharesControlReceived,
    /// See other orgs' public published offerings (`marketplace.view`).
    MarketplaceView,
    /// Request access to another org's public offering (`access_requests.create`).
    AccessRequestsCreate,
    /// List the access requests this org sent or received (`access_requests.view`).
    AccessRequestsView,
    /// Approve or reject access requests to this org's offerings (`access_requests.decide`).
    AccessRequestsDecide,
    /// See API key metadata (`api_keys.view`).
    ApiKeysView,
    /// Create API keys (`api_keys.create`).
    ApiKeysCreate,
    /// Revoke or rename API keys (`api_keys.revoke`).
    ApiKeysRevoke,
    /// List users (`users.list`).
    UsersList,
    /// Create a user account (`users.create`).
    UsersCreate,
    /// Update any user account (`users.update`), platform admins only.
    UsersUpdate,
    /// Delete any user account (`users.delete`), platform admins only.
    UsersDelete,
    /// See costs, usage, revenue (`finops.view`).
    FinopsView,
    /// See the audit log (`audit.view`).
    AuditView,
    /// See the platform chain of the audit trail: accounts, sessions, sign-ins, the public
    /// catalogue (`platform_audit.view`), platform admins only (SPEC §4.9 v2).
    PlatformAuditView,
    /// Call the OpenAI-compatible proxy (`inference.use`).
    InferenceUse,
    /// See the workbench: my projects and runs, and those colleagues share (`workbench.view`).
    WorkbenchView,
    /// Use the workbench: create projects and runs, talk to models in them, share my own
    /// runs with the org (`workbench.use`); only the owner writes one (see [`crate::workbench`]).
    WorkbenchUse,
    /// Manage settings: org settings, or platform settings for platform admins (`settings.manage`).
    SettingsManage,
}

impl Permission {
    /// Every permission, in declaration order (the order of the matrix and of `GET /auth/me`).
    pub const ALL: &'static [Permission] = &[
        Permission::OrgView,
        Permission::OrgUpdate,
        Permission::OrgDelete,
        Permission::OrgLeave,
        Permission::OrganizationsCreate,
        Permission::MembersView,
        Permission::MembersChangeRole,
        Permission::MembersRemove,
        Permission::InvitationsCreate,
        Permission::InvitationsList,
        Permission::InvitationsRevoke,
        Permission::InvitationsResend,
        Permission::InstancesView,
        Permission::InstancesDeploy,
        Permission::InstancesTerminate,
        Permission::InstancesReinstall,
        Permission::ModelsView,
        Permission::ModelsCreate,
        Permission::ModelsUpdate,
        Permission::ModelsDelete,
        Permission::ActivationTech,
        Permission::ActivationEco,
        Permission::OfferingsView,
        Permission::OfferingsManage,
        Permission::SharesView,
        Permission::SharesManage,
        Permission::PricesSet,
        Permission::SharesAccept,
        Permission::SharesControlReceived,
        Permission::MarketplaceView,
        Permission::AccessRequestsCreate,
        Permission::AccessRequestsView,
        Permission::AccessRequestsDecide,
        Permission::ApiKeysView,
        Permission::ApiKeysCreate,
        Permission::ApiKeysRevoke,
        Permission::UsersList,
        Permission::UsersCreate,
        Permission::UsersUpdate,
        Permission::UsersDelete,
        Permission::FinopsView,
        Permission::AuditView,
        Permission::PlatformAuditView,
        Permission::InferenceUse,
        Permission::WorkbenchView,
        Permission::WorkbenchUse,
        Permission::SettingsManage,
    ];

    /// The stable dotted name, e.g. `members.change_role`.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Permission::OrgView => "org.view",
            Permission::OrgUpdate => "org.update",
            Permission::OrgDelete => "org.delete",
            Permission::OrgLeave => "org.leave",
            Permission::OrganizationsCreate => "organizations.create",
            Permission::MembersView => "members.view",
            Permission::MembersChangeRole => "members.change_role",
            Permission::MembersRemove => "members.remove",
            Permission::InvitationsCreate => "invitations.create",
            Permission::InvitationsList => "invitations.list",
            Permission::InvitationsRevoke => "invitations.revoke",
            Permission::InvitationsResend => "invitations.resend",
            Permission::InstancesView => "instances.view",
            Permission::InstancesDeploy => "instances.deploy",
            Permission::InstancesTerminate => "instances.terminate",
            Permission::InstancesReinstall => "instances.reinstall",
            Permission::ModelsView => "models.view",
            Permission::ModelsCreate => "models.create",
            Permission::ModelsUpdate => "models.update",
            Permission::ModelsDelete => "models.delete",
            Permission::ActivationTech => "activation.tech",
            Permission::ActivationEco => "activation.eco",
            Permission::OfferingsView => "offerings.view",
            Permission::OfferingsManage => "offerings.manage",
            Permission::SharesView => "shares.view",
            Permission::SharesManage => "shares.manage",
            Permission::PricesSet => "prices.set",
            Permission::SharesAccept => "shares.accept",
            Permission::SharesControlReceived => "shares.control_received",
            Permission::MarketplaceView => "marketplace.view",
            Permission::AccessRequestsCreate => "access_requests.create",
            Permission::AccessRequestsView => "access_requests.view",
            Permission::AccessRequestsDecide => "access_requests.decide",
            Permission::ApiKeysView => "api_keys.view",
            Permission::ApiKeysCreate => "api_keys.create",
            Permission::ApiKeysRevoke => "api_keys.revoke",
            Permission::UsersList => "users.list",
            Permission::UsersCreate => "users.create",
            Permission::UsersUpdate => "users.update",
            Permission::UsersDelete => "users.delete",
            Permission::FinopsView => "finops.view",
            Permission::AuditView => "audit.view",
            Permission::PlatformAuditView => "platform_audit.view",
            Permission::InferenceUse => "inference.use",
            Permission::WorkbenchView => "workbench.view",
            Permission::WorkbenchUse => "workbench.use",
            Permission::SettingsManage => "settings.manage",
        }
    }

    /// Does the permission only read? Reads (and [`Permission::InferenceUse`]) are the only
    /// permissions an API key can ever use.
    #[must_use]
    pub const fn is_read(&self) -> bool {
        match self {
            Permission::OrgView
            | Permission::MembersView
            | Permission::InvitationsList
            | Permission::InstancesView
            | Permission::ModelsView
            | Permission::OfferingsView
            | Permission::SharesView
            | Permission::MarketplaceView
            | Permission::AccessRequestsView
            | Permission::ApiKeysView
            | Permission::UsersList
            | Permission::FinopsView
            | Permission::AuditView
            | Permission::PlatformAuditView
            | Permission::WorkbenchView => true,
            Permission::OrgUpdate
            | Permission::OrgDelete
            | Permission::OrgLeave
            | Permission::OrganizationsCreate
            | Permission::MembersChangeRole
            | Permission::MembersRemove
            | Permission::InvitationsCreate
            | Permission::InvitationsRevoke
            | Permission::InvitationsResend
            | Permission::InstancesDeploy
            | Permission::InstancesTerminate
            | Permission::InstancesReinstall
            | Permission::ModelsCreate
            | Permission::ModelsUpdate
            | Permission::ModelsDelete
            | Permission::ActivationTech
            | Permission::ActivationEco
            | Permission::OfferingsManage
            | Permission::SharesManage
            | Permission::PricesSet
            | Permission::SharesAccept
            | Permission::SharesControlReceived
            | Permission::AccessRequestsCreate
            | Permission::AccessRequestsDecide
            | Permission::ApiKeysCreate
            | Permission::ApiKeysRevoke
            | Permission::UsersCreate
            | Permission::UsersUpdate
            | Permission::UsersDelete
            | Permission::InferenceUse
            | Permission::WorkbenchUse
            | Permission::SettingsManage => false,
        }
    }

    /// Reads and inference: the only permissions an API key may exercise.
    fn api_key_usable(self) -> bool {
        self.is_read() || self == Permission::InferenceUse
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

// --- The map -----------------------------------------------------------------------------------

const EVERY_MEMBER: &[Role] = &[Role::Owner, Role::Admin, Role::Manager, Role::User];
const OWNER_ADMIN_MANAGER: &[Role] = &[Role::Owner, Role::Admin, Role::Manager];
const OWNER_ADMIN: &[Role] = &[Role::Owner, Role::Admin];
const OWNER_MANAGER: &[Role] = &[Role::Owner, Role::Manager];
const OWNER: &[Role] = &[Role::Owner];
const NOBODY: &[Role] = &[];

/// Org workspace: which membership roles hold each permission (the §2.3 table). A platform
/// admin gets nothing extra here: only the membership role counts.
const fn org_roles(permission: Permission) -> &'static [Role] {
    match permission {
        Permission::OrgView
        | Permission::OrgLeave
        | Permission::OrganizationsCreate
        | Permission::MembersView
        | Permission::InstancesView
        | Permission::ModelsView
        | Permission::OfferingsView
        | Permission::SharesView
        | Permission::MarketplaceView
        | Permission::ApiKeysView
        | Permission::InferenceUse
        | Permission::WorkbenchView
        | Permission::WorkbenchUse => EVERY_MEMBER,
        Permission::OrgUpdate | Permission::OrgDelete | Permission::SettingsManage => OWNER,
        Permission::InvitationsCreate
        | Permission::InvitationsList
        | Permission::InvitationsRevoke
        | Permission::InvitationsResend
        | Permission::MembersChangeRole
        | Permission::MembersRemove
        | Permission::FinopsView
        | Permission::AuditView
        | Permission::UsersList
        | Permission::SharesControlReceived
        | Permission::AccessRequestsView => OWNER_ADMIN_MANAGER,
        Permission::InstancesDeploy
        | Permission::InstancesTerminate
        | Permission::InstancesReinstall
        | Permission::ModelsCreate
        | Permission::ModelsUpdate
        | Permission::ModelsDelete
        | Permission::OfferingsManage
        | Permission::SharesManage
        | Permission::ApiKeysCreate
        | Permission::ApiKeysRevoke
        | Permission::UsersCreate
        | Permission::ActivationTech
        | Permission::AccessRequestsDecide => OWNER_ADMIN,
        Permission::ActivationEco
        | Permission::PricesSet
        | Permission::SharesAccept
        | Permission::AccessRequestsCreate => OWNER_MANAGER,
        // The platform chain is read from the personal workspace only: in an org a platform
        // admin acts as a member of that org (see docs/decisions.md).
        Permission::UsersUpdate | Permission::UsersDelete | Permission::PlatformAuditView => NOBODY,
    }
}

/// May a member with `role` hold org API keys? Exactly the roles that may create them: an org
/// key works only while its creator is such a member (SPEC §6 v2), so removing a member or
/// demoting them below these roles revokes the org keys they created.
#[must_use]
pub fn may_hold_org_api_keys(role: Role) -> bool {
    org_roles(Permission::ApiKeysCreate).contains(&role)
}

/// Who holds a permission in the personal workspace.
enum PersonalRule {
    /// Every user, on their own resources (or the public catalogue).
    AnyUser,
    /// Platform admins only.
    PlatformAdmin,
    /// Meaningless without an org: refused with `organization_required`.
    OrgOnly,
}

const fn personal_rule(permission: Permission) -> PersonalRule {
    match permission {
        Permission::OrganizationsCreate
        | Permission::ModelsView
        | Permission::InstancesView
        | Permission::InstancesDeploy
        | Permission::InstancesTerminate
        | Permission::InstancesReinstall
        | Permission::ApiKeysView
        | Permission::ApiKeysCreate
        | Permission::ApiKeysRevoke
        | Permission::FinopsView
        | Permission::InferenceUse
        | Permission::WorkbenchView
        | Permission::WorkbenchUse => PersonalRule::AnyUser,
        Permission::UsersList
        | Permission::UsersCreate
        | Permission::UsersUpdate
        | Permission::UsersDelete
        | Permission::ModelsCreate
        | Permission::ModelsUpdate
        | Permission::ModelsDelete
        | Permission::PlatformAuditView
        | Permission::SettingsManage => PersonalRule::PlatformAdmin,
        Permission::OrgView
        | Permission::OrgUpdate
        | Permission::OrgDelete
        | Permission::OrgLeave
        | Permission::MembersView
        | Permission::MembersChangeRole
        | Permission::MembersRemove
        | Permission::InvitationsCreate
        | Permission::InvitationsList
        | Permission::InvitationsRevoke
        | Permission::InvitationsResend
        | Permission::ActivationTech
        | Permission::ActivationEco
        | Permission::OfferingsView
        | Permission::OfferingsManage
        | Permission::SharesView
        | Permission::SharesManage
        | Permission::PricesSet
        | Permission::SharesAccept
        | Permission::SharesControlReceived
        | Permission::MarketplaceView
        | Permission::AccessRequestsCreate
        | Permission::AccessRequestsView
        | Permission::AccessRequestsDecide
        | Permission::AuditView => PersonalRule::OrgOnly,
    }
}

/// The map for a session in `workspace` with the given platform-admin flag.
fn session_map(
    workspace: Workspace,
    platform_admin: bool,
    permission: Permission,
) -> Result<(), DenyReason> {
    match workspace {
        Workspace::Org { role, .. } => {
            if org_roles(permission).contains(&role) {
                Ok(())
            } else {
                Err(DenyReason::NotAllowed)
            }
        }
        Workspace::Personal => match personal_rule(permission) {
            PersonalRule::AnyUser => Ok(()),
            PersonalRule::PlatformAdmin if platform_admin => Ok(()),
            PersonalRule::PlatformAdmin => Err(DenyReason::NotAllowed),
            PersonalRule::OrgOnly => Err(DenyReason::RequiresOrgWorkspace),
        },
    }
}

/// Does the map grant `permission` to `actor` (credential rules included)?
fn check_permission(actor: &Actor, permission: Permission) -> Result<(), DenyReason> {
    let as_session = session_map(actor.workspace, actor.is_platform_admin, permission);
    match actor.credential {
        Credential::Session => as_session,
        Credential::ApiKey => {
            if !permission.api_key_usable() {
                return Err(DenyReason::ApiKeyNotAllowed);
            }
            // A key acts as a `user` of its org and never as a platform admin.
            let key_workspace = match actor.workspace {
                Workspace::Personal => Workspace::Personal,
                Workspace::Org { org, .. } => Workspace::Org {
                    org,
                    role: Role::User,
                },
            };
            match session_map(key_workspace, false, permission) {
                Ok(()) => Ok(()),
                Err(reason) => match as_session {
                    // A session of the same user would pass: the credential is what is refused.
                    Ok(()) => Err(DenyReason::ApiKeyNotAllowed),
                    Err(_) => Err(reason),
                },
            }
        }
    }
}

// --- Actions -----------------------------------------------------------------------------------

/// Something an actor asks to do, with the parameters the rules need (one variant per
/// permission; [`Action::permission`] says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `org.view`
    ViewOrg,
    /// `org.update`
    UpdateOrg,
    /// `org.delete`
    DeleteOrg,
    /// `org.leave` (last owner: see [`crate::owners`])
    LeaveOrg,
    /// `organizations.create`
    CreateOrganization,
    /// `members.view`
    ViewMembers,
    /// `members.change_role`: the member's current role and the requested one (§2.1).
    ChangeRole {
        /// The member's current role.
        from: Role,
        /// The requested role.
        to: Role,
    },
    /// `members.change_role` asked to set the role a member already has: accepted as a no-op
    /// by an actor who could assign that role (an idempotent PUT), refused otherwise.
    KeepRole {
        /// The member's role, unchanged.
        role: Role,
    },
    /// `members.remove`: remove another member whose role is `role` (§2.1).
    RemoveMember {
        /// The removed member's role.
        role: Role,
    },
    /// `invitations.create` with the invited role (§2.1).
    Invite {
        /// The role the invitee will get.
        role: Role,
    },
    /// `invitations.list`
    ListInvitations,
    /// `invitations.revoke` of an invitation carrying `role` (§2.1).
    RevokeInvitation {
        /// The invitation's role.
        role: Role,
    },
    /// `invitations.resend` of an invitation carrying `role` (§2.1).
    ResendInvitation {
        /// The invitation's role.
        role: Role,
    },
    /// `instances.view`
    ViewInstances,
    /// `instances.deploy`
    Deploy,
    /// `instances.terminate`
    Terminate,
    /// `instances.reinstall`
    Reinstall,
    /// `models.view`
    ViewModels,
    /// `models.create`
    CreateModel,
    /// `models.update`
    UpdateModel,
    /// `models.delete`
    DeleteModel,
    /// `activation.tech` or `activation.eco`, set or clear.
    SetActivation {
        /// Which flag.
        flag: Flag,
    },
    /// `offerings.view`
    ViewOfferings,
    /// `offerings.manage`: create, update, publish, unpublish.
    ManageOffering,
    /// `shares.view`
    ViewShares,
    /// `shares.manage`: grant, pause, resume, revoke.
    ManageShare,
    /// `prices.set` (clears the eco flag: see [`crate::activation::Activation::price_changed`]).
    SetPrice,
    /// `shares.accept`: accept or decline a received share, set its cap (consumer side).
    AcceptShare,
    /// `shares.control_received`: pause, resume or revoke a received share (consumer side).
    ControlReceivedShare,
    /// `marketplace.view`: list other orgs' public published offerings.
    ViewMarketplace,
    /// `access_requests.create`: ask another org for a share of its public offering.
    RequestAccess,
    /// `access_requests.view`: list this org's sent and received access requests.
    ViewAccessRequests,
    /// `access_requests.decide`: approve or reject a request for this org's offering.
    DecideAccessRequest,
    /// `api_keys.view`
    ViewApiKeys,
    /// `api_keys.create`
    CreateApiKey,
    /// `api_keys.revoke` (also rename)
    RevokeApiKey,
    /// `users.list`
    ListUsers,
    /// `users.create`. In an org: `role` is the new member's role and must be `Some` and
    /// assignable by the actor. In the personal workspace (platform admins): `role` must be
    /// `None` (an account without membership).
    CreateUser {
        /// The membership role in the actor's org, if any.
        role: Option<Role>,
    },
    /// `users.update`
    UpdateUser,
    /// `users.delete`
    DeleteUser,
    /// `finops.view`
    ViewFinops,
    /// `audit.view`
    ViewAudit,
    /// `platform_audit.view`
    ViewPlatformAudit,
    /// `inference.use`
    UseInference,
    /// `workbench.view`
    ViewWorkbench,
    /// `workbench.use` (the owner rule on top: [`crate::workbench::ensure_owner`])
    UseWorkbench,
    /// `settings.manage`
    ManageSettings,
}

impl Action {
    /// The permission the map must grant before the parameters are even looked at.
    #[must_use]
    pub const fn permission(&self) -> Permission {
        match self {
            Action::ViewOrg => Permission::OrgView,
            Action::UpdateOrg => Permission::OrgUpdate,
            Action::DeleteOrg => Permission::OrgDelete,
            Action::LeaveOrg => Permission::OrgLeave,
            Action::CreateOrganization => Permission::OrganizationsCreate,
            Action::ViewMembers => Permission::MembersView,
            Action::ChangeRole { .. } | Action::KeepRole { .. } => Permission::MembersChangeRole,
            Action::RemoveMember { .. } => Permission::MembersRemove,
            Action::Invite { .. } => Permission::InvitationsCreate,
            Action::ListInvitations => Permission::InvitationsList,
            Action::RevokeInvitation { .. } => Permission::InvitationsRevoke,
            Action::ResendInvitation { .. } => Permission::InvitationsResend,
            Action::ViewInstances => Permission::InstancesView,
            Action::Deploy => Permission::InstancesDeploy,
            Action::Terminate => Permission::InstancesTerminate,
            Action::Reinstall => Permission::InstancesReinstall,
            Action::ViewModels => Permission::ModelsView,
            Action::CreateModel => Permission::ModelsCreate,
            Action::UpdateModel => Permission::ModelsUpdate,
            Action::DeleteModel => Permission::ModelsDelete,
            Action::SetActivation { flag: Flag::Tech } => Permission::ActivationTech,
            Action::SetActivation { flag: Flag::Eco } => Permission::ActivationEco,
            Action::ViewOfferings => Permission::OfferingsView,
            Action::ManageOffering => Permission::OfferingsManage,
            Action::ViewShares => Permission::SharesView,
            Action::ManageShare => Permission::SharesManage,
            Action::SetPrice => Permission::PricesSet,
            Action::AcceptShare => Permission::SharesAccept,
            Action::ControlReceivedShare => Permission::SharesControlReceived,
            Action::ViewMarketplace => Permission::MarketplaceView,
            Action::RequestAccess => Permission::AccessRequestsCreate,
            Action::ViewAccessRequests => Permission::AccessRequestsView,
            Action::DecideAccessRequest => Permission::AccessRequestsDecide,
            Action::ViewApiKeys => Permission::ApiKeysView,
            Action::CreateApiKey => Permission::ApiKeysCreate,
            Action::RevokeApiKey => Permission::ApiKeysRevoke,
            Action::ListUsers => Permission::UsersList,
            Action::CreateUser { .. } => Permission::UsersCreate,
            Action::UpdateUser => Permission::UsersUpdate,
            Action::DeleteUser => Permission::UsersDelete,
            Action::ViewFinops => Permission::FinopsView,
            Action::ViewAudit => Permission::AuditView,
            Action::ViewPlatformAudit => Permission::PlatformAuditView,
            Action::UseInference => Permission::InferenceUse,
            Action::ViewWorkbench => Permission::WorkbenchView,
            Action::UseWorkbench => Permission::WorkbenchUse,
            Action::ManageSettings => Permission::SettingsManage,
        }
    }
}

// --- Decisions ---------------------------------------------------------------------------------

/// Why an action was refused. The HTTP layer maps every reason to `403` with [`DenyReason::code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The actor's role (or lack of platform admin) does not grant the permission.
    NotAllowed,
    /// The permission is held, but §2.1 refuses these roles (change role, remove, invite,
    /// revoke/resend, create user with a role).
    RoleChangeNotAllowed,
    /// The permission exists only in an org workspace and the actor is in Personal.
    RequiresOrgWorkspace,
    /// API keys may only read and use inference, as a `user` of their org.
    ApiKeyNotAllowed,
}

impl DenyReason {
    /// The stable error code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            DenyReason::NotAllowed => ErrorCode::Forbidden,
            DenyReason::RoleChangeNotAllowed => ErrorCode::RoleChangeNotAllowed,
            DenyReason::RequiresOrgWorkspace => ErrorCode::OrganizationRequired,
            DenyReason::ApiKeyNotAllowed => ErrorCode::ApiKeyNotAllowed,
        }
    }
}

/// A refusal from [`authorize`] (`403`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("permission denied: {}", .reason.code())]
pub struct Denied {
    /// Why.
    pub reason: DenyReason,
}

impl From<DenyReason> for Denied {
    fn from(reason: DenyReason) -> Self {
        Self { reason }
    }
}

/// Decides whether `actor` may perform `action`: `Ok(())` only if the map grants the permission
/// and the parameters pass §2.1 and the activation rules. Everything else is `Err(Denied)`.
///
/// The last-owner invariant needs a count from the database and is checked by the service with
/// [`crate::owners::ensure_owner_remains`] after this.
pub fn authorize(actor: &Actor, action: Action) -> Result<(), Denied> {
    check_permission(actor, action.permission())?;
    check_parameters(actor, action)?;
    Ok(())
}

/// Every permission the map grants `actor`, in [`Permission::ALL`] order (for `GET /auth/me`).
/// A role-parameterised permission is listed when the permission itself is granted.
#[must_use]
pub fn permissions(actor: &Actor) -> Vec<Permission> {
    Permission::ALL
        .iter()
        .copied()
        .filter(|permission| check_permission(actor, *permission).is_ok())
        .collect()
}

/// Parameter checks, run only after the permission itself was granted.
fn check_parameters(actor: &Actor, action: Action) -> Result<(), DenyReason> {
    let role = actor.org_role();
    match action {
        Action::ChangeRole { from, to } => delegated(role, |r| can_change_role(r, from, to)),
        Action::KeepRole { role: kept } => delegated(role, |r| assignable(r).contains(&kept)),
        Action::RemoveMember { role: target } => delegated(role, |r| can_remove(r, target)),
        Action::Invite { role: invited } => delegated(role, |r| can_invite(r, invited)),
        Action::RevokeInvitation { role: invited } | Action::ResendInvitation { role: invited } => {
            delegated(role, |r| can_manage_invitation(r, invited))
        }
        Action::CreateUser { role: new_role } => match (role, new_role) {
            (Some(actor_role), Some(new_role)) => {
                if assignable(actor_role).contains(&new_role) {
                    Ok(())
                } else {
                    Err(DenyReason::RoleChangeNotAllowed)
                }
            }
            // A user created inside an org must get a membership role.
            (Some(_), None) => Err(DenyReason::RoleChangeNotAllowed),
            // Personal (platform admin): a plain account, no membership.
            (None, None) => Ok(()),
            (None, Some(_)) => Err(DenyReason::RequiresOrgWorkspace),
        },
        Action::SetActivation { flag } => match role {
            Some(r) if can_set_roles(flag).contains(&r) => Ok(()),
            Some(_) => Err(DenyReason::NotAllowed),
            None => Err(DenyReason::RequiresOrgWorkspace),
        },
        Action::ViewOrg
        | Action::UpdateOrg
        | Action::DeleteOrg
        | Action::LeaveOrg
        | Action::CreateOrganization
        | Action::ViewMembers
        | Action::ListInvitations
        | Action::ViewInstances
        | Action::Deploy
        | Action::Terminate
        | Action::Reinstall
        | Action::ViewModels
        | Action::CreateModel
        | Action::UpdateModel
        | Action::DeleteModel
        | Action::ViewOfferings
        | Action::ManageOffering
        | Action::ViewShares
        | Action::ManageShare
        | Action::SetPrice
        | Action::AcceptShare
        | Action::ControlReceivedShare
        | Action::ViewMarketplace
        | Action::RequestAccess
        | Action::ViewAccessRequests
        | Action::DecideAccessRequest
        | Action::ViewApiKeys
        | Action::CreateApiKey
        | Action::RevokeApiKey
        | Action::ListUsers
        | Action::UpdateUser
        | Action::DeleteUser
        | Action::ViewFinops
        | Action::ViewAudit
        | Action::ViewPlatformAudit
        | Action::UseInference
        | Action::ViewWorkbench
        | Action::UseWorkbench
        | Action::ManageSettings => Ok(()),
    }
}

/// A §2.1 check on the actor's org role; no org role means the action needs an org.
fn delegated(role: Option<Role>, rule: impl Fn(Role) -> bool) -> Result<(), DenyReason> {
    match role {
        Some(r) if rule(r) => Ok(()),
        Some(_) => Err(DenyReason::RoleChangeNotAllowed),
        None => Err(DenyReason::RequiresOrgWorkspace),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn all_lists_every_permission_once_in_declaration_order() {
        assert_eq!(Permission::ALL.len(), 47);
        assert!(Permission::ALL.windows(2).all(|w| w[0] < w[1]));
        let names: BTreeSet<_> = Permission::ALL.iter().map(Permission::name).collect();
        assert_eq!(names.len(), Permission::ALL.len());
    }

    #[test]
    fn names_are_dotted_snake_case() {
        for p in Permission::ALL {
            let name = p.name();
            assert_eq!(name.matches('.').count(), 1, "{name}");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{name}"
            );
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn reads() {
        let reads: Vec<&str> = Permission::ALL
            .iter()
            .filter(|p| p.is_read())
            .map(Permission::name)
            .collect();
        assert_eq!(
            reads,
            [
                "org.view",
                "members.view",
                "invitations.list",
                "instances.view",
                "models.view",
                "offerings.view",
                "shares.view",
                "marketplace.view",
                "access_requests.view",
                "api_keys.view",
                "users.list",
                "finops.view",
                "audit.view",
                "platform_audit.view",
                "workbench.view",
            ]
        );
    }

    #[test]
    fn activation_permissions_match_activation_roles() {
        for flag in Flag::ALL {
            let permission = Action::SetActivation { flag }.permission();
            assert_eq!(org_roles(permission), can_set_roles(flag), "{flag}");
        }
    }

    #[test]
    fn org_keys_are_held_by_the_roles_that_create_them() {
        for role in [Role::Owner, Role::Admin, Role::Manager, Role::User] {
            let creates = org_roles(Permission::ApiKeysCreate).contains(&role);
            assert_eq!(may_hold_org_api_keys(role), creates, "{role:?}");
        }
        assert!(may_hold_org_api_keys(Role::Admin));
        assert!(!may_hold_org_api_keys(Role::Manager));
    }

    #[test]
    fn deny_codes() {
        assert_eq!(DenyReason::NotAllowed.code().as_str(), "forbidden");
        assert_eq!(
            DenyReason::RoleChangeNotAllowed.code().as_str(),
            "role_change_not_allowed"
        );
        assert_eq!(
            DenyReason::RequiresOrgWorkspace.code().as_str(),
            "organization_required"
        );
        assert_eq!(
            DenyReason::ApiKeyNotAllowed.code().as_str(),
            "api_key_not_allowed"
        );
        let denied = Denied::from(DenyReason::NotAllowed);
        assert_eq!(denied.to_string(), "permission denied: forbidden");
    }
}
