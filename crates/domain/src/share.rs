//! The share (provider → consumer contract, SPEC §4.4 v2) state machine.
//!
//! ```text
//!              accept (consumer, at the current contract_version)
//!   proposed ─────────────────────────────────────────────────▶ active
//!      ▲  │                                                       │
//!      │  └─ decline (consumer) ─▶ declined                       │
//!      └──────── reprice / new ends_at (provider): version + 1 ───┘
//!
//!   proposed | active ── revoke (either side) ──▶ revoked
//!   proposed | active ── now ≥ ends_at, or unanswered 30 days ──▶ expired
//! ```
//!
//! `declined`, `revoked` and `expired` are terminal and stored: once written, no later change
//! (a new `ends_at`, say) brings a share back. Until the row is marked, [`ShareState::effective`]
//! already reports a due share as expired, so nothing carries traffic past its end.
//!
//! Pausing is not a status: each side owns one flag (`provider_paused`, `consumer_paused`) that
//! only it sets and lifts, and that survives a new contract version.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::activation::Activation;
use crate::values::ValueError;

/// How long a proposal waits for the consumer's answer (SPEC §4.4).
pub const PROPOSAL_TTL: Duration = Duration::days(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareStatus {
    Proposed,
    Active,
    Declined,
    Revoked,
    Expired,
}

impl ShareStatus {
    pub const ALL: [ShareStatus; 5] = [
        ShareStatus::Proposed,
        ShareStatus::Active,
        ShareStatus::Declined,
        ShareStatus::Revoked,
        ShareStatus::Expired,
    ];

    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ShareStatus::Proposed => "proposed",
            ShareStatus::Active => "active",
            ShareStatus::Declined => "declined",
            ShareStatus::Revoked => "revoked",
            ShareStatus::Expired => "expired",
        }
    }

    /// `proposed` or `active`: the statuses a contract can still change from.
    #[must_use]
    pub const fn is_live(&self) -> bool {
        match self {
            ShareStatus::Proposed | ShareStatus::Active => true,
            ShareStatus::Declined | ShareStatus::Revoked | ShareStatus::Expired => false,
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

/// The two parties of a share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ShareParty {
    Provider,
    Consumer,
}

impl ShareParty {
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            ShareParty::Provider => "provider",
            ShareParty::Consumer => "consumer",
        }
    }
}

impl FromStr for ShareParty {
    type Err = ValueError;

    /// Exact names. Field name: `side` (the side of a share list).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "provider" => Ok(ShareParty::Provider),
            "consumer" => Ok(ShareParty::Consumer),
            _ => Err(ValueError::new("side", "provider or consumer")),
        }
    }
}

/// A refused share change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    /// The share's status (or that side's pause flag) does not allow it (409 `invalid_state`).
    #[error("a share that is {from} cannot be {wanted}")]
    InvalidState {
        from: ShareStatus,
        wanted: &'static str,
    },
    /// The consumer answered another version of the contract (409 `contract_changed`).
    #[error("the contract is at version {current}, not {answered}")]
    ContractChanged { current: i64, answered: i64 },
}

/// What the transitions need to know about a share (all of it stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareState {
    pub status: ShareStatus,
    pub contract_version: i64,
    /// The version the consumer accepted last, if any.
    pub accepted_version: Option<i64>,
    pub provider_paused: bool,
    pub consumer_paused: bool,
    pub starts_at: OffsetDateTime,
    pub ends_at: Option<OffsetDateTime>,
    /// When an unanswered proposal lapses (proposal time + [`PROPOSAL_TTL`]).
    pub proposal_expires_at: Option<OffsetDateTime>,
}

impl ShareState {
    /// A fresh proposal at version 1.
    #[must_use]
    pub fn proposed(now: OffsetDateTime, ends_at: Option<OffsetDateTime>) -> ShareState {
        ShareState {
            status: ShareStatus::Proposed,
            contract_version: 1,
            accepted_version: None,
            provider_paused: false,
            consumer_paused: false,
            starts_at: now,
            ends_at,
            proposal_expires_at: Some(now + PROPOSAL_TTL),
        }
    }

    /// Is this live share past its end (or, proposed, past its answer deadline)? Such a share
    /// is to be stored as `expired`.
    #[must_use]
    pub fn due_to_expire(&self, now: OffsetDateTime) -> bool {
        let ended = self.ends_at.is_some_and(|end| now >= end);
        let unanswered = self.status == ShareStatus::Proposed
            && self.proposal_expires_at.is_some_and(|end| now >= end);
        self.status.is_live() && (ended || unanswered)
    }

    /// The status at `now`: the stored one, or `expired` for a share due to expire.
    #[must_use]
    pub fn effective(&self, now: OffsetDateTime) -> ShareStatus {
        if self.due_to_expire(now) {
            ShareStatus::Expired
        } else {
            self.status
        }
    }

    /// Accepted by the consumer at the current version (and not ended meanwhile).
    #[must_use]
    pub fn accepted(&self, now: OffsetDateTime) -> bool {
        self.effective(now) == ShareStatus::Active
            && self.accepted_version == Some(self.contract_version)
    }

    /// The contract lets traffic through now: accepted at the current version, started, not
    /// ended, paused by neither side. (The provider's approvals and the offering are checked
    /// by the caller: they are not part of the contract.)
    #[must_use]
    pub fn carries_traffic(&self, now: OffsetDateTime) -> bool {
        self.accepted(now)
            && self.starts_at <= now
            && !self.provider_paused
            && !self.consumer_paused
    }

    /// What the share lacks to be operational, as listed to both parties: the provider's
    /// approvals (`tech`, `eco`) and `consumer_acceptance` of the current version.
    #[must_use]
    pub fn missing_activation(
        &self,
        provider_approvals: &Activation,
        now: OffsetDateTime,
    ) -> Vec<&'static str> {
        let mut missing: Vec<&'static str> = provider_approvals
            .missing(false)
            .iter()
            .map(|f| f.as_str())
            .collect();
        if !self.accepted(now) {
            missing.push("consumer_acceptance");
        }
        missing
    }

    fn live(&self, now: OffsetDateTime, wanted: &'static str) -> Result<ShareStatus, ShareError> {
        match self.effective(now) {
            status if status.is_live() => Ok(status),
            from => Err(ShareError::InvalidState { from, wanted }),
        }
    }

    /// Consumer: `proposed` → `active` at `answered` (the current version when `None`).
    /// Returns the version accepted.
    pub fn accept(&self, answered: Option<i64>, now: OffsetDateTime) -> Result<i64, ShareError> {
        let from = self.effective(now);
        if from != ShareStatus::Proposed {
            return Err(ShareError::InvalidState {
                from,
                wanted: "accepted",
            });
        }
        match answered {
            Some(v) if v != self.contract_version => Err(ShareError::ContractChanged {
                current: self.contract_version,
                answered: v,
            }),
            _ => Ok(self.contract_version),
        }
    }

    /// Consumer: `proposed` → `declined` (terminal).
    pub fn decline(&self, now: OffsetDateTime) -> Result<ShareStatus, ShareError> {
        match self.effective(now) {
            ShareStatus::Proposed => Ok(ShareStatus::Declined),
            from => Err(ShareError::InvalidState {
                from,
                wanted: "declined",
            }),
        }
    }

    /// Either side: `proposed | active` → `revoked` (terminal).
    pub fn revoke(&self, now: OffsetDateTime) -> Result<ShareStatus, ShareError> {
        self.live(now, "revoked").map(|_| ShareStatus::Revoked)
    }

    /// `side` sets (`paused`) or lifts its own flag; the other side's flag is not touched.
    pub fn set_paused(
        &self,
        side: ShareParty,
        paused: bool,
        now: OffsetDateTime,
    ) -> Result<ShareState, ShareError> {
        let wanted = if paused { "paused" } else { "resumed" };
        let from = self.live(now, wanted)?;
        let flag = match side {
            ShareParty::Provider => self.provider_paused,
            ShareParty::Consumer => self.consumer_paused,
        };
        if flag == paused {
            return Err(ShareError::InvalidState { from, wanted });
        }
        let mut next = *self;
        match side {
            ShareParty::Provider => next.provider_paused = paused,
            ShareParty::Consumer => next.consumer_paused = paused,
        }
        Ok(next)
    }

    /// Provider: new terms (prices or `ends_at`). The version moves on, an active share goes
    /// back to `proposed` (nothing is billed under terms the consumer did not accept) with a
    /// fresh answer deadline; pause flags are kept.
    pub fn new_terms(
        &self,
        ends_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<ShareState, ShareError> {
        self.live(now, "changed")?;
        Ok(ShareState {
            status: ShareStatus::Proposed,
            contract_version: self.contract_version + 1,
            ends_at,
            proposal_expires_at: Some(now + PROPOSAL_TTL),
            ..*self
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::ShareStatus::*;
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn at(status: ShareStatus) -> ShareState {
        ShareState {
            status,
            accepted_version: (status == Active).then_some(1),
            ..ShareState::proposed(NOW, None)
        }
    }

    #[test]
    fn statuses_round_trip() {
        for status in ShareStatus::ALL {
            assert_eq!(status.as_str().parse::<ShareStatus>(), Ok(status));
        }
        assert!("paused".parse::<ShareStatus>().is_err());
    }

    #[test]
    fn parties_round_trip_and_an_unknown_one_names_side() {
        for party in [ShareParty::Provider, ShareParty::Consumer] {
            assert_eq!(party.as_str().parse::<ShareParty>(), Ok(party));
        }
        assert_eq!("both".parse::<ShareParty>().unwrap_err().field, "side");
    }

    #[test]
    fn transitions_for_every_status() {
        // (status, accept, decline, revoke, change terms)
        let table = [
            (Proposed, true, true, true, true),
            (Active, false, false, true, true),
            (Declined, false, false, false, false),
            (Revoked, false, false, false, false),
            (Expired, false, false, false, false),
        ];
        for (status, accept, decline, revoke, terms) in table {
            let s = at(status);
            assert_eq!(s.accept(None, NOW).is_ok(), accept, "{status} accept");
            assert_eq!(s.decline(NOW).is_ok(), decline, "{status} decline");
            assert_eq!(s.revoke(NOW).is_ok(), revoke, "{status} revoke");
            assert_eq!(s.new_terms(None, NOW).is_ok(), terms, "{status} terms");
            for side in [ShareParty::Provider, ShareParty::Consumer] {
                assert_eq!(
                    s.set_paused(side, true, NOW).is_ok(),
                    status.is_live(),
                    "{status} pause"
                );
            }
        }
    }

    #[test]
    fn accept_only_the_current_version() {
        let s = at(Proposed)
            .new_terms(None, NOW)
            .unwrap()
            .new_terms(None, NOW)
            .unwrap();
        assert_eq!(s.contract_version, 3);
        assert_eq!(
            s.accept(Some(2), NOW),
            Err(ShareError::ContractChanged {
                current: 3,
                answered: 2
            })
        );
        assert_eq!(s.accept(Some(3), NOW), Ok(3));
        assert_eq!(s.accept(None, NOW), Ok(3));
    }

    #[test]
    fn new_terms_put_an_active_share_back_to_proposed_and_keep_the_pauses() {
        let s = at(Active)
            .set_paused(ShareParty::Consumer, true, NOW)
            .unwrap();
        assert!(!s.carries_traffic(NOW));
        let later = NOW + Duration::days(3);
        let end = Some(datetime!(2027-01-01 0:00 UTC));
        let next = s.new_terms(end, later).unwrap();
        assert_eq!(next.status, Proposed);
        assert_eq!(next.contract_version, 2);
        assert_eq!(next.accepted_version, Some(1));
        assert!(next.consumer_paused);
        assert_eq!(next.ends_at, end);
        assert_eq!(next.proposal_expires_at, Some(later + PROPOSAL_TTL));
        assert!(!next.accepted(later));
    }

    #[test]
    fn each_side_owns_its_pause_flag() {
        let s = at(Active);
        assert!(s.carries_traffic(NOW));
        let p = s.set_paused(ShareParty::Provider, true, NOW).unwrap();
        assert!(!p.carries_traffic(NOW));
        // The consumer cannot lift the provider's pause: its own flag is not set.
        assert!(p.set_paused(ShareParty::Consumer, false, NOW).is_err());
        let both = p.set_paused(ShareParty::Consumer, true, NOW).unwrap();
        let consumer_only = both.set_paused(ShareParty::Provider, false, NOW).unwrap();
        assert!(consumer_only.consumer_paused && !consumer_only.provider_paused);
        assert!(!consumer_only.carries_traffic(NOW));
        assert!(
            consumer_only
                .set_paused(ShareParty::Consumer, false, NOW)
                .unwrap()
                .carries_traffic(NOW)
        );
        // Pausing twice is refused, not silently ignored.
        assert!(p.set_paused(ShareParty::Provider, true, NOW).is_err());
    }

    #[test]
    fn live_shares_expire_at_their_end_or_unanswered() {
        let end = datetime!(2026-06-10 0:00 UTC);
        let active = ShareState {
            ends_at: Some(end),
            ..at(Active)
        };
        assert_eq!(active.effective(end - Duration::seconds(1)), Active);
        assert_eq!(active.effective(end), Expired);
        assert!(active.due_to_expire(end));
        assert!(!active.carries_traffic(end));
        // An active share has no answer deadline.
        assert_eq!(at(Active).effective(NOW + Duration::days(365)), Active);
        let proposed = at(Proposed);
        assert_eq!(
            proposed.effective(NOW + PROPOSAL_TTL - Duration::seconds(1)),
            Proposed
        );
        assert_eq!(proposed.effective(NOW + PROPOSAL_TTL), Expired);
        assert!(proposed.accept(None, NOW + PROPOSAL_TTL).is_err());
        // Terminal statuses are never re-derived.
        for status in [Declined, Revoked, Expired] {
            let s = ShareState {
                ends_at: None,
                ..at(status)
            };
            assert_eq!(s.effective(NOW + Duration::days(999)), status);
            assert!(!s.due_to_expire(NOW + Duration::days(999)));
        }
    }

    #[test]
    fn missing_activation_names_each_party() {
        use crate::ids::UserId;
        let none = Activation::default();
        let both = Activation {
            tech_by: Some(UserId::new()),
            eco_by: Some(UserId::new()),
        };
        assert_eq!(
            at(Proposed).missing_activation(&none, NOW),
            ["tech", "eco", "consumer_acceptance"]
        );
        assert_eq!(at(Active).missing_activation(&none, NOW), ["tech", "eco"]);
        assert!(at(Active).missing_activation(&both, NOW).is_empty());
        let repriced = at(Active).new_terms(None, NOW).unwrap();
        assert_eq!(
            repriced.missing_activation(&both, NOW),
            ["consumer_acceptance"]
        );
    }

    #[test]
    fn traffic_needs_acceptance_at_the_current_version_and_a_start() {
        let s = at(Active);
        assert!(s.carries_traffic(NOW));
        assert!(!s.carries_traffic(NOW - Duration::seconds(1)));
        let stale = ShareState {
            accepted_version: Some(0),
            ..s
        };
        assert!(!stale.carries_traffic(NOW));
        assert!(!at(Proposed).carries_traffic(NOW));
    }
}
