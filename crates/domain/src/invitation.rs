//! The invitation state machine. Expiry is computed, never waited for: a stored `pending` row
//! whose `expires_at` has passed is *effectively* `expired`, whether or not a job has rewritten
//! the row yet. Every transition takes `now` as an argument.
//!
//! ```text
//! pending ──accept──▶ accepted
//!    │ ╲──revoke──▶ revoked
//!    │ (now ≥ expires_at)
//!    ▼
//! expired ──resend──▶ pending (new token, new expires_at)
//! pending ──resend──▶ pending
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::values::ValueError;

/// Stored status of an invitation. Serialized lowercase (`"pending"`, …), as in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatus {
    /// Waiting for the invitee; the only status that can be accepted or revoked.
    Pending,
    /// Accepted: the invitee is a member. Final.
    Accepted,
    /// Revoked by a member allowed to manage it. Final.
    Revoked,
    /// Passed its `expires_at` without being accepted; can be resent.
    Expired,
}

impl InvitationStatus {
    /// The wire and database name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }
}

impl fmt::Display for InvitationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InvitationStatus {
    type Err = ValueError;

    /// Exact lowercase names. Field name: `status`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(InvitationStatus::Pending),
            "accepted" => Ok(InvitationStatus::Accepted),
            "revoked" => Ok(InvitationStatus::Revoked),
            "expired" => Ok(InvitationStatus::Expired),
            other => Err(ValueError::new(
                "status",
                format!("unknown invitation status {other:?}"),
            )),
        }
    }
}

/// Why a transition was refused (each maps to a `409`/`410` in the HTTP layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvitationError {
    /// The invitation has expired (accept).
    #[error("the invitation has expired")]
    Expired,
    /// The invitation was revoked (accept, resend).
    #[error("the invitation was revoked")]
    Revoked,
    /// The invitation was already accepted (accept, resend).
    #[error("the invitation was already accepted")]
    AlreadyAccepted,
    /// Only a pending invitation can be revoked (revoke of anything else).
    #[error("the invitation is not pending")]
    NotPending,
}

/// The status that counts at `now`: a stored `Pending` with `now >= expires_at` is `Expired`;
/// every other stored status is final and returned unchanged.
#[must_use]
pub fn effective_status(
    stored: InvitationStatus,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> InvitationStatus {
    match stored {
        InvitationStatus::Pending if now >= expires_at => InvitationStatus::Expired,
        InvitationStatus::Pending => InvitationStatus::Pending,
        InvitationStatus::Accepted => InvitationStatus::Accepted,
        InvitationStatus::Revoked => InvitationStatus::Revoked,
        InvitationStatus::Expired => InvitationStatus::Expired,
    }
}

/// Accepting: only an effectively pending invitation becomes `Accepted`.
pub fn accept(
    stored: InvitationStatus,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<InvitationStatus, InvitationError> {
    match effective_status(stored, expires_at, now) {
        InvitationStatus::Pending => Ok(InvitationStatus::Accepted),
        InvitationStatus::Accepted => Err(InvitationError::AlreadyAccepted),
        InvitationStatus::Revoked => Err(InvitationError::Revoked),
        InvitationStatus::Expired => Err(InvitationError::Expired),
    }
}

/// Revoking: only an effectively pending invitation becomes `Revoked`; anything else is
/// `NotPending` (revoking twice, or revoking an expired or accepted one, is refused).
pub fn revoke(
    stored: InvitationStatus,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<InvitationStatus, InvitationError> {
    match effective_status(stored, expires_at, now) {
        InvitationStatus::Pending => Ok(InvitationStatus::Revoked),
        InvitationStatus::Accepted | InvitationStatus::Revoked | InvitationStatus::Expired => {
            Err(InvitationError::NotPending)
        }
    }
}

/// Resending: an effectively pending or expired invitation goes (back) to `Pending`, with a new
/// token and `expires_at` chosen by the caller. Accepted → `AlreadyAccepted`; revoked → `Revoked`.
pub fn resend(
    stored: InvitationStatus,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<InvitationStatus, InvitationError> {
    match effective_status(stored, expires_at, now) {
        InvitationStatus::Pending | InvitationStatus::Expired => Ok(InvitationStatus::Pending),
        InvitationStatus::Accepted => Err(InvitationError::AlreadyAccepted),
        InvitationStatus::Revoked => Err(InvitationError::Revoked),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use InvitationStatus::{Accepted, Expired, Pending, Revoked};

    const EXPIRES_AT: OffsetDateTime = datetime!(2025-06-01 12:00 UTC);
    const BEFORE: OffsetDateTime = datetime!(2025-06-01 11:59:59 UTC);

    /// `now` for each case: before the deadline, or exactly at it (already expired).
    fn now(expired: bool) -> OffsetDateTime {
        if expired { EXPIRES_AT } else { BEFORE }
    }

    type Expected = Result<InvitationStatus, InvitationError>;

    /// (stored, past expires_at?, effective, accept, revoke, resend)
    #[rustfmt::skip]
    const TABLE: &[(InvitationStatus, bool, InvitationStatus, Expected, Expected, Expected)] = &[
        (Pending, false, Pending, Ok(Accepted), Ok(Revoked), Ok(Pending)),
        (Pending, true, Expired, Err(InvitationError::Expired), Err(InvitationError::NotPending), Ok(Pending)),
        (Accepted, false, Accepted, Err(InvitationError::AlreadyAccepted), Err(InvitationError::NotPending), Err(InvitationError::AlreadyAccepted)),
        (Accepted, true, Accepted, Err(InvitationError::AlreadyAccepted), Err(InvitationError::NotPending), Err(InvitationError::AlreadyAccepted)),
        (Revoked, false, Revoked, Err(InvitationError::Revoked), Err(InvitationError::NotPending), Err(InvitationError::Revoked)),
        (Revoked, true, Revoked, Err(InvitationError::Revoked), Err(InvitationError::NotPending), Err(InvitationError::Revoked)),
        (Expired, false, Expired, Err(InvitationError::Expired), Err(InvitationError::NotPending), Ok(Pending)),
        (Expired, true, Expired, Err(InvitationError::Expired), Err(InvitationError::NotPending), Ok(Pending)),
    ];

    #[test]
    fn every_status_and_expiry_for_every_transition() {
        assert_eq!(TABLE.len(), 8);
        for &(stored, expired, effective, on_accept, on_revoke, on_resend) in TABLE {
            let now = now(expired);
            let case = format!("stored {stored}, expired {expired}");
            assert_eq!(
                effective_status(stored, EXPIRES_AT, now),
                effective,
                "effective: {case}"
            );
            assert_eq!(accept(stored, EXPIRES_AT, now), on_accept, "accept: {case}");
            assert_eq!(revoke(stored, EXPIRES_AT, now), on_revoke, "revoke: {case}");
            assert_eq!(resend(stored, EXPIRES_AT, now), on_resend, "resend: {case}");
        }
    }

    #[test]
    fn names_round_trip() {
        for status in [Pending, Accepted, Revoked, Expired] {
            assert_eq!(status.as_str().parse::<InvitationStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(
            "Pending".parse::<InvitationStatus>().unwrap_err().field,
            "status"
        );
    }
}
