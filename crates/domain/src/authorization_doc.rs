//! Generates `docs/authorization.md` from the policy itself, so the published matrix cannot
//! drift from the code. A test in `tests/authorization_doc.rs` fails when the file is stale.

use std::fmt::Write as _;

use crate::activation::{Flag, can_set_roles};
use crate::ids::{OrgId, UserId};
use crate::modules::modules;
use crate::policy::{Permission, permissions};
use crate::role::{Role, assignable};
use crate::workspace::{Actor, Credential, Workspace};
use uuid::Uuid;

fn actor(workspace: Workspace, is_platform_admin: bool, credential: Credential) -> Actor {
    Actor {
        user: UserId::from_uuid(Uuid::nil()),
        is_platform_admin,
        workspace,
        credential,
    }
}

fn org(role: Role) -> Workspace {
    Workspace::Org {
        org: OrgId::from_uuid(Uuid::nil()),
        role,
    }
}

fn role_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        "—".to_owned()
    } else {
        roles
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The session-based workspaces documented for modules (and as the first columns of the matrix).
fn session_columns() -> Vec<(&'static str, Actor)> {
    let mut columns = vec![
        (
            "Personal",
            actor(Workspace::Personal, false, Credential::Session),
        ),
        (
            "Personal (platform admin)",
            actor(Workspace::Personal, true, Credential::Session),
        ),
    ];
    for role in Role::ALL {
        columns.push((role.as_str(), actor(org(role), false, Credential::Session)));
    }
    columns
}

/// The full authorization document (Markdown), generated from [`crate::policy`].
#[must_use]
pub fn authorization_markdown() -> String {
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "# Authorization matrix");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Generated from `inventiv_domain::policy` by `make docs`; do not edit by hand."
    );
    let _ = writeln!(out);

    // --- Permissions ---
    let mut columns = session_columns();
    columns.push((
        "API key (org)",
        actor(org(Role::Owner), false, Credential::ApiKey),
    ));
    let granted: Vec<Vec<Permission>> = columns.iter().map(|(_, a)| permissions(a)).collect();

    let _ = writeln!(out, "## Permissions");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Org columns are membership roles in the current organization. A platform admin has no \
         extra rights inside an organization. An API key acts as a `user` of its organization \
         (whatever its creator's role) and may only read and use inference: every write outside \
         `/v1/*` refuses a key (403 `api_key_not_allowed`), and so do the reads of a person \
         across workspaces (`GET /organizations`, `GET /auth/invitations`), which are not in a \
         key's scope. An org key works only while its \
         creator is a member whose role may create org keys (owner, admin); removal, leaving, \
         demotion below admin, disabling or deleting the account revokes it. A personal API key \
         never has platform-admin rights. Permissions marked by role (change role, remove, \
         invitations, create user) are further limited by the delegation table below."
    );
    let _ = writeln!(out);
    let header: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let _ = writeln!(out, "| permission | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(columns.len()));
    for permission in Permission::ALL {
        let cells: Vec<&str> = granted
            .iter()
            .map(|list| if list.contains(permission) { "✓" } else { "" })
            .collect();
        let _ = writeln!(out, "| `{}` | {} |", permission.name(), cells.join(" | "));
    }
    let _ = writeln!(out);

    // --- Delegation ---
    let _ = writeln!(out, "## Delegation (assignable roles)");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "One rule for invitations and role changes: invite with role R iff R is assignable; change \
         a member from X to Y iff X and Y are both assignable and X ≠ Y; remove a member with role \
         X iff X is assignable; revoke or resend an invitation with role R iff R is assignable. \
         Leaving is always allowed except for the last owner; no change may leave an organization \
         without an owner."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| actor | assignable roles |");
    let _ = writeln!(out, "|---|---|");
    for role in Role::ALL {
        let _ = writeln!(
            out,
            "| {} | {} |",
            role.as_str(),
            role_list(assignable(role))
        );
    }
    let _ = writeln!(out);

    // --- Modules ---
    let _ = writeln!(out, "## Modules");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Returned by `GET /auth/me`, derived from the permissions above. A module absent from the \
         list is hidden."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| workspace | modules |");
    let _ = writeln!(out, "|---|---|");
    for (name, session) in session_columns() {
        let list: Vec<String> = modules(&session)
            .iter()
            .map(|m| format!("{}:{}", m.id.as_str(), m.access.as_str()))
            .collect();
        let _ = writeln!(out, "| {name} | {} |", list.join(", "));
    }
    let _ = writeln!(out);

    // --- Activation ---
    let _ = writeln!(out, "## Activation flags");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "An organization's instance, offering or share is operational only when both flags are \
         set. Setting a price clears the eco flag. With `require_distinct_activators`, one person \
         may not hold both flags of a resource."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| flag | may set or clear |");
    let _ = writeln!(out, "|---|---|");
    for flag in Flag::ALL {
        let _ = writeln!(
            out,
            "| {} | {} |",
            flag.as_str(),
            role_list(can_set_roles(flag))
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn has_one_row_per_permission() {
        let doc = authorization_markdown();
        for permission in Permission::ALL {
            let row = format!("| `{}` |", permission.name());
            assert_eq!(doc.matches(&row).count(), 1, "{row}");
        }
        assert!(doc.contains("make docs"));
        assert!(doc.ends_with('\n'));
    }
}
