//! The CodeDeploy path: CodeDeploy waits (up to an hour) for
//! `PutLifecycleEventHookExecutionStatus`, which is sent exactly once.

use std::future::Future;

use shipgate_aws::Deadline;
use shipgate_aws::codepipeline::Reported;
use shipgate_core::hooks::appspec_task_definition;
use tracing::{info, warn};

use crate::checks::check_task_definition;
use crate::{CodeDeployOutcome, Deps, HookError, HookOutcome, announce};

/// Runs `work` within the deadline and reports its outcome to CodeDeploy,
/// exactly once; a panic or the deadline reports `Failed`. Then tells
/// everyone (`Shipgate Hook Result`).
pub async fn run_hook(
    deps: &Deps,
    deployment_id: &str,
    hook_execution_id: &str,
    deadline: Deadline,
    work: impl Future<Output = HookOutcome>,
) -> Result<CodeDeployOutcome, HookError> {
    let outcome = match deadline.run(work).await {
        Ok(v) => v,
        Err(interrupted) => HookOutcome::failed(
            "unknown",
            format!("the hook could not decide ({interrupted}); failing closed"),
        ),
    };
    let status = outcome.status.settled();
    let reported = match deps
        .codedeploy
        .report_hook(deployment_id, hook_execution_id, status, deadline.report_budget())
        .await
    {
        Ok(r) => r == Reported::Now,
        // Nothing to report to: CodeDeploy does not know this deployment.
        Err(e) if e.is("DeploymentDoesNotExistException") => false,
        Err(source) => {
            return Err(HookError::Report {
                deployment_id: deployment_id.to_owned(),
                hook_execution_id: hook_execution_id.to_owned(),
                source,
            });
        }
    };
    info!(deployment_id, hook = %outcome.hook, status = ?outcome.status, reasons = ?outcome.reasons, reported, "hook reported");
    // Only the status this invocation reported is announced: a duplicate
    // delivery whose report CodeDeploy refused as already completed says
    // nothing, whatever it would have decided.
    if reported {
        let announced =
            deadline.after_report(announce(deps, "codedeploy", deployment_id, hook_execution_id, &outcome));
        if announced.await.is_none() {
            warn!("no time left to announce the hook result");
        }
    }
    Ok(CodeDeployOutcome {
        deployment_id: deployment_id.to_owned(),
        hook: outcome.hook.clone(),
        status,
        reasons: outcome.reasons,
        reported_now: reported,
    })
}

/// The checks for the task definition the deployment's AppSpec names.
pub(crate) async fn check(deps: &Deps, deployment_id: &str) -> HookOutcome {
    let deployment = match deps.codedeploy.get_deployment(deployment_id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return HookOutcome::failed(
                "unknown",
                format!("CodeDeploy does not know deployment {deployment_id}"),
            );
        }
        Err(e) => return HookOutcome::failed("unknown", e.to_string()),
    };
    let hook = match deps.codedeploy.current_hook(deployment_id).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            return HookOutcome::failed(
                "unknown",
                format!("cannot tell which lifecycle hook deployment {deployment_id} is in"),
            );
        }
        Err(e) => return HookOutcome::failed("unknown", e.to_string()),
    };
    // A rollback restores what ran before; blocking it would keep the
    // failed revision serving (as on the ECS native path).
    if let Some(failed) = &deployment.rolls_back {
        info!(deployment_id, %hook, rolls_back = %failed, "rollback: answered Succeeded without running checks");
        return HookOutcome {
            application: deployment.application,
            deployment_group: deployment.deployment_group,
            ..HookOutcome::rollback(&hook, &format!("deployment {deployment_id} rolls back {failed}"))
        };
    }
    let Some(appspec) = &deployment.appspec else {
        return HookOutcome::failed(
            &hook,
            format!(
                "deployment {deployment_id} has no AppSpec content to read the task definition from (its revision \
                 is {}; deploy-hooks reads AppSpecContent or String revisions)",
                deployment.revision_type.as_deref().unwrap_or("unknown")
            ),
        );
    };
    let task_definition = match appspec_task_definition(appspec) {
        Ok(td) => td,
        Err(e) => return HookOutcome::failed(&hook, e),
    };
    let mut outcome = check_task_definition(deps, &hook, &task_definition, &Default::default()).await;
    outcome.application = deployment.application;
    outcome.deployment_group = deployment.deployment_group;
    outcome
}
