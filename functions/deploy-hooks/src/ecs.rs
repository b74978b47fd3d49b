//! The ECS native path: ECS invokes synchronously and reads the answer
//! (`hookStatus`) from the response.

use chrono::Utc;
use shipgate_aws::Deadline;
use shipgate_aws::ecs::ServiceRevision;
use shipgate_core::exposure::service_of_arn;
use shipgate_core::hooks::HookStatus;
use shipgate_core::triggers::{EcsHookResponse, EcsLifecycleHook};
use tracing::{error, info, warn};

use crate::checks::check_task_definition;
use crate::record::{RecordError, record_running};
use crate::{Deps, HookOutcome, Recording, announce};

/// The ECS native path: same checks, answered in the response. Running out
/// of time asks ECS to call again (up to a few times) rather than fail a
/// deployment whose checks are merely slow.
pub(crate) async fn run_hook(deps: &Deps, hook: &EcsLifecycleHook, deadline: Deadline) -> EcsHookResponse {
    const MAX_CALLBACKS: u64 = 5;
    let callbacks = hook
        .hook_details
        .as_ref()
        .and_then(|d| d.get("shipgateCallbacks"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let stage = hook.lifecycle_stage.clone();
    let deployment = hook.resource_arn.clone().unwrap_or_else(|| hook.execution_id.clone());
    if hook.is_rollback() {
        // Blocking a rollback would keep the broken revision serving.
        let why = format!("ECS is rolling back from this revision at {stage}");
        let outcome = HookOutcome::rollback(&stage, &why);
        info!(%deployment, hook = %stage, "rollback: answered SUCCEEDED without running checks");
        announce_ecs(deps, &deployment, hook, &outcome, deadline).await;
        return EcsHookResponse {
            hook_status: HookStatus::Succeeded,
            call_back_delay: None,
            hook_details: None,
        };
    }
    // Production traffic moved in an earlier call, whose checks passed and
    // whose record could not be written: only the record is left to do.
    let record_only = hook
        .hook_details
        .as_ref()
        .and_then(|d| d.get("shipgateRecordOnly"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    if record_only {
        let revision = &hook.execution_details.target_service_revision_arn;
        let recorded = match deps.ecs.service_revision(revision).await {
            Ok(Some(r)) => deadline.after_report(record_ecs(deps, hook, &r, &deployment)).await,
            Ok(None) => Some(Err(RecordError::NoRevision(revision.clone()))),
            Err(e) => Some(Err(e.into())),
        };
        return answer_recorded(recorded, callbacks, MAX_CALLBACKS);
    }
    // The revision is kept: after production traffic moves, it is what the
    // service runs (recorded below without reading it again).
    let mut checked = None;
    let work = Box::pin(async {
        let revision = &hook.execution_details.target_service_revision_arn;
        match deps.ecs.service_revision(revision).await {
            Ok(Some(r)) => {
                let outcome = check_task_definition(deps, &stage, &r.task_definition, &r.image_digests).await;
                checked = Some(r);
                outcome
            }
            Ok(None) => HookOutcome::failed(&stage, format!("ECS does not know service revision {revision}")),
            Err(e) => HookOutcome::failed(&stage, e.to_string()),
        }
    });
    let outcome = match deadline.run(work).await {
        Ok(v) => v,
        Err(shipgate_aws::Interrupted::DeadlineReached { .. }) if callbacks < MAX_CALLBACKS => HookOutcome {
            status: HookStatus::InProgress,
            ..HookOutcome::failed(&stage, "checks did not finish in this invocation; ECS will call again")
        },
        Err(interrupted) => {
            HookOutcome::failed(&stage, format!("the hook could not decide ({interrupted}); failing closed"))
        }
    };
    info!(%deployment, hook = %outcome.hook, status = ?outcome.status, reasons = ?outcome.reasons, "ECS hook answered");
    announce_ecs(deps, &deployment, hook, &outcome, deadline).await;
    // Production traffic has moved and stays: what the service runs now.
    // Traffic is already on the new revision, so a failure to record is
    // never a failed hook (which would roll back a good deployment over a
    // bookkeeping write): ECS is asked to call again, for the record only.
    if let Some(revision) = checked
        .filter(|_| outcome.status == HookStatus::Succeeded && stage == "POST_PRODUCTION_TRAFFIC_SHIFT")
    {
        let recorded = deadline.after_report(record_ecs(deps, hook, &revision, &deployment)).await;
        return answer_recorded(recorded, callbacks, MAX_CALLBACKS);
    }
    match outcome.status {
        status @ (HookStatus::Succeeded | HookStatus::Failed) => {
            EcsHookResponse { hook_status: status, call_back_delay: None, hook_details: None }
        }
        HookStatus::InProgress => EcsHookResponse {
            hook_status: HookStatus::InProgress,
            call_back_delay: Some(30),
            hook_details: Some(serde_json::json!({"shipgateCallbacks": callbacks + 1})),
        },
    }
}

/// The answer once the checks passed at POST_PRODUCTION_TRAFFIC_SHIFT and
/// recording was tried: SUCCEEDED when recorded; otherwise, while callbacks
/// remain, IN_PROGRESS for ECS to call again for the record alone; at the
/// last, SUCCEEDED with the loss logged (the deployment is good).
fn answer_recorded(
    recorded: Option<Result<Recording, RecordError>>,
    callbacks: u64,
    max_callbacks: u64,
) -> EcsHookResponse {
    let succeeded =
        EcsHookResponse { hook_status: HookStatus::Succeeded, call_back_delay: None, hook_details: None };
    let why = match recorded {
        Some(Ok(recording)) => {
            info!(recorded = ?recording.recorded, "running images recorded");
            return succeeded;
        }
        Some(Err(e)) => e.to_string(),
        None => "no time left".to_owned(),
    };
    if callbacks >= max_callbacks {
        error!(reason = %why, "what the service runs could not be recorded; exposure will not know it");
        return succeeded;
    }
    warn!(reason = %why, "could not record what the service runs; ECS will call again for the record");
    EcsHookResponse {
        hook_status: HookStatus::InProgress,
        call_back_delay: Some(30),
        hook_details: Some(
            serde_json::json!({"shipgateCallbacks": callbacks + 1, "shipgateRecordOnly": true}),
        ),
    }
}

/// The ECS answer is the invocation's response, so the announcement may only
/// use what is left before the response must go: it is cut short, never the
/// answer. An `IN_PROGRESS` answer is not an outcome and is not announced.
async fn announce_ecs(
    deps: &Deps,
    deployment: &str,
    hook: &EcsLifecycleHook,
    outcome: &HookOutcome,
    deadline: Deadline,
) {
    if outcome.status == HookStatus::InProgress {
        return;
    }
    if deadline.after_report(announce(deps, "ecs", deployment, &hook.execution_id, outcome)).await.is_none() {
        warn!("no time left to announce the hook result; answering ECS first");
    }
}

/// The ECS native path: the service revision production traffic moved to.
async fn record_ecs(
    deps: &Deps,
    hook: &EcsLifecycleHook,
    revision: &ServiceRevision,
    deployment: &str,
) -> Result<Recording, RecordError> {
    let details = &hook.execution_details;
    let service = service_of_arn(&details.service_arn)
        .ok_or_else(|| RecordError::NotAServiceArn(details.service_arn.clone()))?;
    record_running(deps, deployment, service, &revision.task_definition, &revision.image_digests, Utc::now())
        .await
}
