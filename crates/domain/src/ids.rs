//! Typed ids: one newtype over [`Uuid`] per entity, so a `UserId` can never be passed where an
//! `OrgId` is expected and no bare `Uuid` appears in service or handler signatures.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_newtypes {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        ///
        /// Invariant: wraps any UUID; fresh ids are UUID v7 (time-ordered). Serialized as the bare
        /// UUID string (`#[serde(transparent)]`).
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        // No `Default`: a default that silently draws a random id would hide missing data.
        #[allow(clippy::new_without_default)]
        impl $name {
            /// A fresh, time-ordered id (UUID v7).
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (e.g. read back from the database).
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The underlying UUID, for the persistence layer.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    )+};
}

id_newtypes! {
    /// A global user account.
    UserId;
    /// An organization (tenant).
    OrgId;
    /// A login session; also the JWT `sid` claim.
    SessionId;
    /// An organization invitation.
    InvitationId;
    /// An API key (org-owned or personal).
    ApiKeyId;
    /// A model (public catalogue or org-owned).
    ModelId;
    /// A deployed inference instance.
    InstanceId;
    /// An offering: a model published by an org under its own code.
    OfferingId;
    /// A provider-org → consumer-org share of one offering.
    ShareId;
    /// One metered inference usage row.
    UsageId;
    /// A consumer org's request for access to another org's public offering.
    AccessRequestId;
    /// A password reset token.
    ResetTokenId;
    /// A workbench project (a folder of runs).
    WorkbenchProjectId;
    /// A workbench run: one conversation with a model.
    WorkbenchRunId;
    /// One message of a workbench run.
    WorkbenchMessageId;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_distinct() {
        let a = UserId::new();
        let b = UserId::new();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let id = OrgId::new();
        let parsed: OrgId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("not-a-uuid".parse::<OrgId>().is_err());
    }

    #[test]
    fn serializes_as_a_bare_uuid_string() {
        let uuid = Uuid::nil();
        let id = SessionId::from_uuid(uuid);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{uuid}\""));
        let back: SessionId = serde_json::from_str(&json).unwrap();
        assert_eq!(back.as_uuid(), uuid);
    }
}
