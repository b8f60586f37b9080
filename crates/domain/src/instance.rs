//! The instance lifecycle. Providers move an instance forward; users may terminate or
//! reinstall it. `terminated` is final.
//!
//! ```text
//! provisioning ──▶ booting ──▶ ready ◀──▶ booting   (health lost / regained)
//!      │              │          │
//!      └──────────────┴──────────┴──▶ failed (reason)
//! any but terminated ──terminate──▶ terminating ──▶ terminated
//! ready | failed ──reinstall──▶ provisioning
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::values::ValueError;

/// Where an instance is in its lifecycle. Serialized lowercase, as in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Provisioning,
    Booting,
    Ready,
    Terminating,
    Terminated,
    Failed,
}

/// Why a lifecycle request is refused (409 `invalid_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an instance that is {from} cannot be {wanted}")]
pub struct InvalidTransition {
    pub from: InstanceStatus,
    pub wanted: &'static str,
}

impl InstanceStatus {
    pub const ALL: [InstanceStatus; 6] = [
        InstanceStatus::Provisioning,
        InstanceStatus::Booting,
        InstanceStatus::Ready,
        InstanceStatus::Terminating,
        InstanceStatus::Terminated,
        InstanceStatus::Failed,
    ];

    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            InstanceStatus::Provisioning => "provisioning",
            InstanceStatus::Booting => "booting",
            InstanceStatus::Ready => "ready",
            InstanceStatus::Terminating => "terminating",
            InstanceStatus::Terminated => "terminated",
            InstanceStatus::Failed => "failed",
        }
    }

    /// Not terminated: the instance still exists at the provider (and still costs money,
    /// blocks its model's deletion, and its org's deletion).
    #[must_use]
    pub const fn is_live(&self) -> bool {
        match self {
            InstanceStatus::Provisioning
            | InstanceStatus::Booting
            | InstanceStatus::Ready
            | InstanceStatus::Terminating
            | InstanceStatus::Failed => true,
            InstanceStatus::Terminated => false,
        }
    }

    /// Answering requests: only a ready instance serves. An instance is *operational* when it
    /// serves and carries its approvals — a terminated one with both flags is not.
    #[must_use]
    pub const fn is_serving(&self) -> bool {
        matches!(self, InstanceStatus::Ready)
    }

    /// `POST /instances/{id}/terminate`: from anything but terminating/terminated.
    pub const fn terminate(self) -> Result<InstanceStatus, InvalidTransition> {
        match self {
            InstanceStatus::Provisioning
            | InstanceStatus::Booting
            | InstanceStatus::Ready
            | InstanceStatus::Failed => Ok(InstanceStatus::Terminating),
            InstanceStatus::Terminating | InstanceStatus::Terminated => Err(InvalidTransition {
                from: self,
                wanted: "terminated",
            }),
        }
    }

    /// `POST /instances/{id}/reinstall`: a ready or failed instance starts over.
    pub const fn reinstall(self) -> Result<InstanceStatus, InvalidTransition> {
        match self {
            InstanceStatus::Ready | InstanceStatus::Failed => Ok(InstanceStatus::Provisioning),
            InstanceStatus::Provisioning
            | InstanceStatus::Booting
            | InstanceStatus::Terminating
            | InstanceStatus::Terminated => Err(InvalidTransition {
                from: self,
                wanted: "reinstalled",
            }),
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstanceStatus {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ValueError {
                field: "status",
                reason: format!("unknown instance status {s:?}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::InstanceStatus::{self, *};

    #[test]
    fn terminate_and_reinstall_for_every_status() {
        let cases: [(InstanceStatus, bool, bool); 6] = [
            // (status, may terminate, may reinstall)
            (Provisioning, true, false),
            (Booting, true, false),
            (Ready, true, true),
            (Terminating, false, false),
            (Terminated, false, false),
            (Failed, true, true),
        ];
        for (status, terminate, reinstall) in cases {
            assert_eq!(status.terminate().is_ok(), terminate, "{status} terminate");
            assert_eq!(status.reinstall().is_ok(), reinstall, "{status} reinstall");
            assert_eq!(status.as_str().parse::<InstanceStatus>(), Ok(status));
        }
        assert_eq!(Ready.terminate(), Ok(Terminating));
        assert_eq!(Failed.reinstall(), Ok(Provisioning));
        assert!(!Terminated.is_live() && Failed.is_live());
        assert!(Ready.is_serving());
        for status in [Provisioning, Booting, Terminating, Terminated, Failed] {
            assert!(!status.is_serving(), "{status:?}");
        }
    }
}
