//! The share (provider → consumer contract) state machine.
//!
//! ```text
//! active ⇄ paused          (pause / resume, by the provider)
//! active | paused ──revoke──▶ revoked   (terminal)
//! active | paused ── now ≥ ends_at ──▶ expired (terminal, computed on read)
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::values::ValueError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareStatus {
    Active,
    Paused,
    Revoked,
    Expired,
}

/// A refused share transition (409 `invalid_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a share that is {from} cannot be {wanted}")]
pub struct InvalidShareTransition {
    pub from: ShareStatus,
    pub wanted: &'static str,
}

impl ShareStatus {
    pub const ALL: [ShareStatus; 4] = [
        ShareStatus::Active,
        ShareStatus::Paused,
        ShareStatus::Revoked,
        ShareStatus::Expired,
    ];

    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ShareStatus::Active => "active",
            ShareStatus::Paused => "paused",
            ShareStatus::Revoked => "revoked",
            ShareStatus::Expired => "expired",
        }
    }

    /// The status at `now`: a live share past its `ends_at` is expired.
    #[must_use]
    pub fn effective(self, ends_at: Option<OffsetDateTime>, now: OffsetDateTime) -> ShareStatus {
        match self {
            ShareStatus::Active | ShareStatus::Paused if ends_at.is_some_and(|end| now >= end) => {
                ShareStatus::Expired
            }
            ShareStatus::Active
            | ShareStatus::Paused
            | ShareStatus::Revoked
            | ShareStatus::Expired => self,
        }
    }

    pub const fn pause(self) -> Result<ShareStatus, InvalidShareTransition> {
        match self {
            ShareStatus::Active => Ok(ShareStatus::Paused),
            ShareStatus::Paused | ShareStatus::Revoked | ShareStatus::Expired => {
                Err(InvalidShareTransition {
                    from: self,
                    wanted: "paused",
                })
            }
        }
    }

    pub const fn resume(self) -> Result<ShareStatus, InvalidShareTransition> {
        match self {
            ShareStatus::Paused => Ok(ShareStatus::Active),
            ShareStatus::Active | ShareStatus::Revoked | ShareStatus::Expired => {
                Err(InvalidShareTransition {
                    from: self,
                    wanted: "resumed",
                })
            }
        }
    }

    pub const fn revoke(self) -> Result<ShareStatus, InvalidShareTransition> {
        match self {
            ShareStatus::Active | ShareStatus::Paused => Ok(ShareStatus::Revoked),
            ShareStatus::Revoked | ShareStatus::Expired => Err(InvalidShareTransition {
                from: self,
                wanted: "revoked",
            }),
        }
    }
}

impl fmt::Display for ShareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShareStatus {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ShareStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ValueError {
                field: "status",
                reason: format!("unknown share status {s:?}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::ShareStatus::{self, *};
    use time::macros::datetime;

    #[test]
    fn transitions_for_every_status() {
        // (status, pause, resume, revoke)
        type Row = (
            ShareStatus,
            Option<ShareStatus>,
            Option<ShareStatus>,
            Option<ShareStatus>,
        );
        let table: [Row; 4] = [
            (Active, Some(Paused), None, Some(Revoked)),
            (Paused, None, Some(Active), Some(Revoked)),
            (Revoked, None, None, None),
            (Expired, None, None, None),
        ];
        for (status, pause, resume, revoke) in table {
            assert_eq!(status.pause().ok(), pause, "{status} pause");
            assert_eq!(status.resume().ok(), resume, "{status} resume");
            assert_eq!(status.revoke().ok(), revoke, "{status} revoke");
            assert_eq!(status.as_str().parse::<ShareStatus>(), Ok(status));
        }
    }

    #[test]
    fn live_shares_expire_at_their_end() {
        let end = Some(datetime!(2026-06-01 0:00 UTC));
        assert_eq!(
            Active.effective(end, datetime!(2026-05-31 23:59 UTC)),
            Active
        );
        assert_eq!(
            Active.effective(end, datetime!(2026-06-01 0:00 UTC)),
            Expired
        );
        assert_eq!(
            Paused.effective(end, datetime!(2027-01-01 0:00 UTC)),
            Expired
        );
        assert_eq!(
            Revoked.effective(end, datetime!(2027-01-01 0:00 UTC)),
            Revoked
        );
        assert_eq!(
            Active.effective(None, datetime!(2999-01-01 0:00 UTC)),
            Active
        );
    }
}
