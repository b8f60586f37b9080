//! Background lifecycle: provisioning → booting → ready (or failed), terminating → terminated,
//! and the periodic health check of ready instances. Each step is one transaction holding a
//! compare-and-set transition and its audit event, so a concurrent terminate (or a second
//! replica's reconciler driving the same instance) can never apply a stale step.

use super::providers::Provider;
use crate::audit::{AuditActor, AuditEntry, record};
use crate::{Deps, RequestMeta, ServiceError};
use inventiv_domain::InstanceStatus;
use inventiv_persistence::repo::instances::{self, InstanceRecord, Transition};
use serde_json::json;
use std::sync::Arc;

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

/// Drives a `provisioning` (or `booting`) instance to `ready`, or to `failed` with a reason.
pub fn spawn_bring_up(deps: Deps, instance: InstanceRecord) {
    tokio::spawn(async move {
        let Some(provider) = provider_of(&deps, &instance) else {
            system_step(
                &deps,
                &instance,
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
                    &deps,
                    &instance,
                    InstanceStatus::Provisioning,
                    InstanceStatus::Failed,
                    None,
                    Some(&failure.0),
                )
                .await;
                return;
            }
            if !system_step(
                &deps,
                &instance,
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
                    &deps,
                    &instance,
                    InstanceStatus::Booting,
                    InstanceStatus::Ready,
                    Some(&endpoint),
                    None,
                )
                .await;
            }
            Err(failure) => {
                system_step(
                    &deps,
                    &instance,
                    InstanceStatus::Booting,
                    InstanceStatus::Failed,
                    None,
                    Some(&failure.0),
                )
                .await;
            }
        }
    });
}

/// Drives a `terminating` instance to `terminated`.
pub fn spawn_tear_down(deps: Deps, instance: InstanceRecord) {
    tokio::spawn(async move {
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
    });
}

/// At start-up: resumes every instance left mid-way by a previous process.
pub async fn reconcile(deps: &Deps) -> Result<usize, ServiceError> {
    let unsettled = instances::in_flight(&deps.db).await?;
    let mut resumed = 0;
    for instance in unsettled {
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
