//! Completed CodeDeploy deployments (an EventBridge rule on their state
//! changes): what a successful one runs is recorded for exposure.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use shipgate_core::hooks::{appspec_task_definition, deploys_ecs};
use shipgate_core::triggers::DeploymentStateChange;
use tracing::info;

use crate::record::{RecordError, record_running};
use crate::{Deps, HookError, Recording};

/// A CodeDeploy deployment completed: records what its task definition
/// runs in the deployment group's ECS service.
pub(crate) async fn deployment_completed(
    deps: &Deps,
    event: EventBridgeEvent<DeploymentStateChange>,
) -> Result<Recording, HookError> {
    let deployed_at = event.time.unwrap_or_else(Utc::now);
    let change = event.detail;
    let deployment = change.deployment_id.clone();
    let recording = record_codedeploy(deps, change, deployed_at)
        .await
        .map_err(|source| HookError::Record { deployment: deployment.clone(), source })?;
    if let Some(reason) = &recording.ignored {
        info!(%deployment, %reason, "nothing recorded");
    }
    Ok(recording)
}

/// What a successful CodeDeploy deployment runs, recorded; `Err` says why
/// it could not be read or written (worth a retry).
async fn record_codedeploy(
    deps: &Deps,
    change: DeploymentStateChange,
    deployed_at: DateTime<Utc>,
) -> Result<Recording, RecordError> {
    let id = change.deployment_id;
    let ignored = |reason: &str| Recording {
        deployment: id.clone(),
        recorded: None,
        digests: vec![],
        ignored: Some(reason.to_owned()),
    };
    if change.state != "SUCCESS" {
        return Ok(ignored(&format!("the deployment's state is {}, not SUCCESS", change.state)));
    }
    let Some(deployment) = deps.codedeploy.get_deployment(&id).await? else {
        return Ok(ignored("CodeDeploy does not know the deployment"));
    };
    let Some(appspec) = &deployment.appspec else {
        return Ok(ignored("the deployment has no AppSpec content to read its task definition from"));
    };
    // The rule hears every deployment in the Region: a Lambda deployment
    // runs nothing of ours, and failing on it would fill the dead-letter queue.
    if !deploys_ecs(appspec) {
        return Ok(ignored("not an ECS deployment: its AppSpec deploys no AWS::ECS::Service"));
    }
    let task_definition = appspec_task_definition(appspec).map_err(RecordError::AppSpec)?;
    let application = change.application.or(deployment.application).unwrap_or_default();
    let group = change.deployment_group.or(deployment.deployment_group).unwrap_or_default();
    let services = deps.codedeploy.ecs_services(&application, &group).await?;
    // An ECS deployment group deploys exactly one service; a group that
    // names none is named by its application and group.
    let service = services.into_iter().next().unwrap_or_else(|| format!("{application}/{group}"));
    record_running(deps, &id, service, &task_definition, &Default::default(), deployed_at).await
}
