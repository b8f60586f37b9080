//! Background lifecycle: provisioning → booting → ready (or failed), terminating → terminated,
//! and the periodic health check of ready instances. Each step is one transaction holding a
//! compare-and-set transition and its audit event, so a concurrent terminate (or a second
//! replica's reconciler driving the same instance) can never apply a stale step.
//!
//! Leases (issue 16 item 10): the replica driving an instance holds a lease on it in the
//! database (`instances.worker_id`, `lease_expires_at`), renewed by [`spawn_lease_keeper`]
//! while the work goes on. When a replica dies (SIGKILL, machine lost), its leases lapse after
//! `providers.lease_seconds` and any live replica's keeper takes the work over and finishes it:
//! nothing waits for a restart.

use super::providers::Provider;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::InstanceId;
use inventiv_domain::InstanceStatus;
use inventiv_persistence::repo::instances::LeaseJob;
use inventiv_persistence::repo::instances::{self, InstanceRecord, Transition};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// This process's leases: who it is in `instances.worker_id`, how long a lease lasts without a
/// renewal, and which jobs it is doing right now (the leases it renews).
#[derive(Debug)]
pub struct Leases {
    worker: String,
    ttl: Duration,
    driving: Mutex<HashSet<(InstanceId, LeaseJob)>>,
}

impl Leases {
    /// A fresh worker id: a restarted process does not inherit its predecessor's leases (they
    /// lapse and are taken over like any dead replica's).
    pub fn new(ttl: Duration) -> Self {
        Self {
            worker: uuid::Uuid::now_v7().simple().to_string(),
            ttl: ttl.max(Duration::from_secs(1)),
            driving: Mutex::new(HashSet::new()),
        }
    }

    /// This process's id in `instances.worker_id` (before `:<job>`).
    pub fn worker(&self) -> &str {
        &self.worker
    }

    fn driving(&self, job: LeaseJob) -> Vec<InstanceId> {
        self.driving
            .lock()
            .map(|d| {
                d.iter()
                    .filter(|(_, j)| *j == job)
                    .map(|(id, _)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_driving(&self, id: InstanceId, job: LeaseJob) -> bool {
        self.driving.lock().is_ok_and(|d| d.contains(&(id, job)))
    }

    fn expiry(&self, deps: &Deps) -> time::OffsetDateTime {
        deps.clock.now() + self.ttl
    }
}

/// Marks a job as done by this process while alive; dropped (even by a panicking task), the
/// process stops renewing its lease, which then lapses and is taken over.
struct Driving {
    leases: Arc<Leases>,
    id: InstanceId,
    job: LeaseJob,
}

impl Drop for Driving {
    fn drop(&mut self) {
        if let Ok(mut driving) = self.leases.driving.lock() {
            driving.remove(&(self.id, self.job));
        }
    }
}

/// Claims the lease of `instance` for `job` (None: another live replica holds it, this process
/// is already on it, or the instance needs that job no more).
async fn claim(deps: &Deps, instance: &InstanceRecord, job: LeaseJob) -> Option<Driving> {
    let leases = deps.providers.leases.clone();
    if !leases.driving.lock().ok()?.insert((instance.id, job)) {
        return None;
    }
    let guard = Driving {
        leases: leases.clone(),
        id: instance.id,
        job,
    };
    let now = deps.clock.now();
    let expires = leases.expiry(deps);
    match instances::claim_lease(&deps.db, instance.id, &leases.worker, job, now, expires).await {
        Ok(true) => Some(guard),
        Ok(false) => None,
        Err(err) => {
            tracing::warn!(instance = %instance.id, error = %err, "claiming an instance lease failed");
            None
        }
    }
}

/// Gives the lease back once the work is over.
async fn release(deps: &Deps, driving: Driving) {
    let leases = &driving.leases;
    if let Err(err) =
        instances::release_lease(&deps.db, driving.id, &leases.worker, driving.job).await
    {
        // Not fatal: unrenewed, the lease lapses and the next takeover finds nothing to do.
        tracing::warn!(instance = %driving.id, error = %err, "releasing an instance lease failed");
    }
}

/// One lifecycle step: from one of `from` to `to`, with what the provider reported.
pub(crate) struct Step<'a> {
    pub from: &'a [InstanceStatus],
    pub to: InstanceStatus,
    pub endpoint_url: Option<&'a str>,
    pub failure_reason: Option<&'a str>,
}

/// Applies one step; returns whether it applied (false: the instance moved on meanwhile).
pub(crate) async fn step(
    deps: &Deps,
    instance: &InstanceRecord,
    change: Step<'_>,
    actor: AuditActor,
    meta: &RequestMeta,
) -> Result<bool, ServiceError> {
    let Step {
        from,
        to,
        endpoint_url,
        failure_reason,
    } = change;
    let Some(scope) = instance.scope() else {
        return Ok(false);
    };
    let now = deps.clock.now();
    let tx = deps.db.begin_write().await?;
    let moved = instances::transition(
        &tx,
        scope,
        instance.id,
        Transition {
            from,
            to,
            endpoint_url,
            failure_reason,
            now,
        },
    )
    .await?;
    if !moved {
        return Ok(false);
    }
    record(
        &tx,
        now,
        actor,
        meta,
        AuditEntry {
            action: "instance.status_changed",
            organization: instance.organization_id,
            target_type: "instance",
            target_id: instance.id.to_string(),
            before: Some(json!({"status": from.first().map(InstanceStatus::as_str)})),
            after: Some(json!({"status": to.as_str(), "reason": failure_reason})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

async fn system_step(
    deps: &Deps,
    instance: &InstanceRecord,
    from: InstanceStatus,
    to: InstanceStatus,
    endpoint: Option<&str>,
    reason: Option<&str>,
) -> bool {
    let change = Step {
        from: &[from],
        to,
        endpoint_url: endpoint,
        failure_reason: reason,
    };
    match step(
        deps,
        instance,
        change,
        AuditActor::default(),
        &RequestMeta::default(),
    )
    .await
    {
        Ok(moved) => moved,
        Err(err) => {
            tracing::warn!(instance = %instance.id, error = %err, "instance lifecycle step failed");
            false
        }
    }
}

fn provider_of(deps: &Deps, instance: &InstanceRecord) -> Option<Arc<dyn Provider>> {
    deps.providers.get(&instance.provider)
}

/// Drives a `provisioning` (or `booting`) instance to `ready`, or to `failed` with a reason,
/// under this process's lease (nothing happens if another live replica holds it).
pub fn spawn_bring_up(deps: Deps, instance: InstanceRecord) {
    tokio::spawn(async move {
        let Some(driving) = claim(&deps, &instance, LeaseJob::BringUp).await else {
            return;
        };
        bring_up(&deps, &instance).await;
        release(&deps, driving).await;
    });
}

async fn bring_up(deps: &Deps, instance: &InstanceRecord) {
    let Some(provider) = provider_of(deps, instance) else {
        system_step(
            deps,
            instance,
            instance.status,
            InstanceStatus::Failed,
            None,
            Some("unknown provider"),
        )
        .await;
        return;
    };
    if instance.status == InstanceStatus::Provisioning {
        if let Err(failure) = provider.provision().await {
            system_step(
                deps,
                instance,
                InstanceStatus::Provisioning,
                InstanceStatus::Failed,
                None,
                Some(&failure.0),
            )
            .await;
            return;
        }
        if !system_step(
            deps,
            instance,
            InstanceStatus::Provisioning,
            InstanceStatus::Booting,
            None,
            None,
        )
        .await
        {
            return;
        }
    }
    match provider.wait_ready(instance.endpoint_url.as_deref()).await {
        Ok(endpoint) => {
            system_step(
                deps,
                instance,
                InstanceStatus::Booting,
                InstanceStatus::Ready,
                Some(&endpoint),
                None,
            )
            .await;
        }
        Err(failure) => {
            system_step(
                deps,
                instance,
                InstanceStatus::Booting,
                InstanceStatus::Failed,
                None,
                Some(&failure.0),
            )
            .await;
        }
    }
}

/// Drives a `terminating` instance to `terminated`, under this process's lease.
pub fn spawn_tear_down(deps: Deps, instance: InstanceRecord) {
    tokio::spawn(async move {
        let Some(driving) = claim(&deps, &instance, LeaseJob::TearDown).await else {
            return;
        };
        if let Some(provider) = provider_of(&deps, &instance)
            && let Err(failure) = provider.tear_down().await
        {
            tracing::warn!(instance = %instance.id, reason = %failure, "provider tear-down failed; marking terminated");
        }
        system_step(
            &deps,
            &instance,
            InstanceStatus::Terminating,
            InstanceStatus::Terminated,
            None,
            None,
        )
        .await;
        release(&deps, driving).await;
    });
}

/// At start-up: resumes every instance left mid-way by a previous process (whose lease is not
/// held: a replica still alive keeps its own; a dead one's is taken over by
/// [`spawn_lease_keeper`] once it lapses).
pub async fn reconcile(deps: &Deps) -> Result<usize, ServiceError> {
    take_over(deps).await
}

/// Starts driving every instance whose lease is not held (never claimed, released, or lapsed:
/// its replica died). Returns how many it tried to claim (each claim is a compare-and-set:
/// with several replicas scanning, one drives each instance).
async fn take_over(deps: &Deps) -> Result<usize, ServiceError> {
    let unsettled = instances::unleased(&deps.db, deps.clock.now()).await?;
    let mut resumed = 0;
    for instance in unsettled {
        let job = if instance.status == InstanceStatus::Terminating {
            LeaseJob::TearDown
        } else {
            LeaseJob::BringUp
        };
        if deps.providers.leases.is_driving(instance.id, job) {
            continue;
        }
        match instance.status {
            InstanceStatus::Provisioning | InstanceStatus::Booting => {
                spawn_bring_up(deps.clone(), instance)
            }
            InstanceStatus::Terminating => spawn_tear_down(deps.clone(), instance),
            InstanceStatus::Ready | InstanceStatus::Terminated | InstanceStatus::Failed => continue,
        }
        resumed += 1;
    }
    Ok(resumed)
}

/// Every third of the lease: renews the leases of the instances this process drives, and takes
/// over the ones whose lease lapsed (a dead replica's).
pub fn spawn_lease_keeper(deps: Deps) {
    tokio::spawn(async move {
        let leases = deps.providers.leases.clone();
        let mut ticker = tokio::time::interval(leases.ttl / 3);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            for job in [LeaseJob::BringUp, LeaseJob::TearDown] {
                let driving = leases.driving(job);
                let expires = leases.expiry(&deps);
                if let Err(err) =
                    instances::renew_leases(&deps.db, &driving, &leases.worker, job, expires).await
                {
                    tracing::warn!(error = %err, "renewing instance leases failed");
                }
            }
            match take_over(&deps).await {
                Ok(0) => {}
                Ok(taken) => tracing::info!(taken, "taking over instances whose lease lapsed"),
                Err(err) => {
                    tracing::warn!(error = %err, "scanning for lapsed instance leases failed")
                }
            }
        }
    });
}

/// Every `health_interval`: a ready instance that stops answering goes back to `booting` (no
/// traffic), and one that answers again returns to `ready`.
pub fn spawn_health_checks(deps: Deps) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(deps.providers.health_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Ok(instances) = instances::in_flight(&deps.db).await else {
                continue;
            };
            for instance in instances {
                // Only instances that were ready once; bring-up tasks own the others.
                let (Some(endpoint), Some(_)) =
                    (instance.endpoint_url.as_deref(), instance.ready_at)
                else {
                    continue;
                };
                let Some(provider) = provider_of(&deps, &instance) else {
                    continue;
                };
                let healthy = provider.healthy(endpoint).await;
                match (instance.status, healthy) {
                    (InstanceStatus::Ready, false) => {
                        system_step(
                            &deps,
                            &instance,
                            InstanceStatus::Ready,
                            InstanceStatus::Booting,
                            None,
                            Some("health check failed"),
                        )
                        .await;
                    }
                    (InstanceStatus::Booting, true) => {
                        system_step(
                            &deps,
                            &instance,
                            InstanceStatus::Booting,
                            InstanceStatus::Ready,
                            None,
                            None,
                        )
                        .await;
                    }
                    _ => {}
                }
            }
        }
    });
}
