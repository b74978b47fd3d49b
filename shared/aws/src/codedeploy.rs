//! Reporting a CodeDeploy lifecycle hook's status.

use aws_sdk_codedeploy::types::LifecycleEventStatus;

use crate::codepipeline::Reported;
use crate::error::{AwsError, aws_err};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStatus {
    Succeeded,
    Failed,
}

/// Reports the hook's status. A hook already completed (a duplicate
/// delivery, or CodeDeploy timed it out) counts as done.
pub async fn report_hook(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
    hook_execution_id: &str,
    status: HookStatus,
) -> Result<Reported, AwsError> {
    const OP: &str = "PutLifecycleEventHookExecutionStatus";
    let status = match status {
        HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
        HookStatus::Failed => LifecycleEventStatus::Failed,
    };
    let result = client
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(deployment_id)
        .lifecycle_event_hook_execution_id(hook_execution_id)
        .status(status)
        .send()
        .await
        .map_err(aws_err("CodeDeploy", OP));
    match result {
        Ok(_) => Ok(Reported::Now),
        Err(err) if err.is("LifecycleEventAlreadyCompletedException") => Ok(Reported::AlreadyDone),
        Err(err) => Err(err),
    }
}
