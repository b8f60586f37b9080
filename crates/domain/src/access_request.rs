//! Access requests (SPEC §4.7 v2): a consumer org asks the provider of a public offering for a
//! share of it.
//!
//! ```text
//!   pending ── approve (provider) ──▶ approved   (a share is proposed at the default prices)
//!      │
//!      └────── reject (provider) ───▶ rejected   (a new request only RENEWAL_DELAY later)
//! ```
//!
//! `approved` and `rejected` are terminal. At most one request per (consumer, offering) is
//! pending at a time (the database enforces it with a partial unique index). A new request
//! after an approval is allowed: the share it led to may since have been declined, revoked or
//! expired; a live share is refused separately (`already_shared`).

use std::fmt;
use std::str::FromStr;

use time::{Duration, OffsetDateTime};

use crate::values::ValueError;

/// How long after a rejection the consumer must wait before asking again for the same
/// offering (SPEC §4.7: "a rejected one may be renewed after 7 days").
pub const RENEWAL_DELAY: Duration = Duration::days(7);

/// Longest message a consumer may attach to a request, in characters.
pub const MAX_MESSAGE_CHARS: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessRequestStatus {
    Pending,
    Approved,
    Rejected,
}

impl AccessRequestStatus {
    pub const ALL: [AccessRequestStatus; 3] = [
        AccessRequestStatus::Pending,
        AccessRequestStatus::Approved,
        AccessRequestStatus::Rejected,
    ];

    /// The wire and database name.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            AccessRequestStatus::Pending => "pending",
            AccessRequestStatus::Approved => "approved",
            AccessRequestStatus::Rejected => "rejected",
        }
    }
}

impl fmt::Display for AccessRequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessRequestStatus {
    type Err = ValueError;

    /// Exact names. Field name: `status`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(AccessRequestStatus::Pending),
            "approved" => Ok(AccessRequestStatus::Approved),
            "rejected" => Ok(AccessRequestStatus::Rejected),
            _ => Err(ValueError::new("status", "pending, approved or rejected")),
        }
    }
}

/// A refused access-request change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessRequestError {
    /// A request for this offering is already waiting for the provider.
    #[error("a request for this offering is already pending")]
    AlreadyPending,
    /// The last request was rejected less than [`RENEWAL_DELAY`] ago.
    #[error("the last request was rejected; a new one may be sent from {renewable_at}")]
    RejectedRecently {
        /// When a new request becomes possible.
        renewable_at: OffsetDateTime,
    },
    /// Only a pending request can be approved or rejected.
    #[error("the request is {status}, not pending")]
    NotPending {
        /// The request's status.
        status: AccessRequestStatus,
    },
}

/// The latest request of a consumer for one offering, as far as the rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatestRequest {
    pub status: AccessRequestStatus,
    /// When it was approved or rejected (None while pending).
    pub decided_at: Option<OffsetDateTime>,
}

/// When a request rejected at `decided_at` may be renewed.
#[must_use]
pub fn renewable_at(decided_at: OffsetDateTime) -> OffsetDateTime {
    decided_at + RENEWAL_DELAY
}

/// May the consumer send a new request, given its latest one for the same offering?
pub fn may_request(
    latest: Option<LatestRequest>,
    now: OffsetDateTime,
) -> Result<(), AccessRequestError> {
    let Some(latest) = latest else {
        return Ok(());
    };
    match latest.status {
        AccessRequestStatus::Pending => Err(AccessRequestError::AlreadyPending),
        AccessRequestStatus::Rejected => match latest.decided_at.map(renewable_at) {
            Some(at) if now < at => Err(AccessRequestError::RejectedRecently { renewable_at: at }),
            _ => Ok(()),
        },
        AccessRequestStatus::Approved => Ok(()),
    }
}

/// May a request in `status` be approved or rejected? Only a pending one.
pub fn decide(status: AccessRequestStatus) -> Result<(), AccessRequestError> {
    match status {
        AccessRequestStatus::Pending => Ok(()),
        AccessRequestStatus::Approved | AccessRequestStatus::Rejected => {
            Err(AccessRequestError::NotPending { status })
        }
    }
}

/// Does an offering have default prices an approval can propose? Offerings are created at
/// 0/0 when no price is given, so 0/0 means "never priced" (see docs/decisions.md); a provider
/// who wants to give a model away proposes a share directly.
#[must_use]
pub const fn is_priced(default_input: i64, default_output: i64) -> bool {
    default_input > 0 || default_output > 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    #[test]
    fn names_round_trip() {
        for s in AccessRequestStatus::ALL {
            assert_eq!(s.as_str().parse::<AccessRequestStatus>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!(
            "Pending".parse::<AccessRequestStatus>().unwrap_err().field,
            "status"
        );
    }

    #[test]
    fn a_first_request_or_one_after_an_approval_is_allowed() {
        assert_eq!(may_request(None, NOW), Ok(()));
        let approved = LatestRequest {
            status: AccessRequestStatus::Approved,
            decided_at: Some(NOW),
        };
        assert_eq!(may_request(Some(approved), NOW), Ok(()));
    }

    #[test]
    fn one_pending_request_at_a_time() {
        let pending = LatestRequest {
            status: AccessRequestStatus::Pending,
            decided_at: None,
        };
        assert_eq!(
            may_request(Some(pending), NOW),
            Err(AccessRequestError::AlreadyPending)
        );
    }

    #[test]
    fn a_rejection_is_renewable_after_seven_days_exactly() {
        let rejected = LatestRequest {
            status: AccessRequestStatus::Rejected,
            decided_at: Some(NOW),
        };
        let at = NOW + Duration::days(7);
        assert_eq!(
            may_request(Some(rejected), at - Duration::seconds(1)),
            Err(AccessRequestError::RejectedRecently { renewable_at: at })
        );
        assert_eq!(may_request(Some(rejected), at), Ok(()));
    }

    #[test]
    fn only_a_pending_request_is_decided() {
        assert_eq!(decide(AccessRequestStatus::Pending), Ok(()));
        for status in [AccessRequestStatus::Approved, AccessRequestStatus::Rejected] {
            assert_eq!(
                decide(status),
                Err(AccessRequestError::NotPending { status })
            );
        }
    }

    #[test]
    fn zero_default_prices_mean_unpriced() {
        assert!(!is_priced(0, 0));
        assert!(is_priced(1, 0));
        assert!(is_priced(0, 1));
    }
}
