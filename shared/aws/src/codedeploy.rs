//! Reporting a CodeDeploy lifecycle hook's status.

use aws_sdk_codedeploy::types::LifecycleEventStatus;

use shipgate_core::hooks::HookStatus;

use crate::codepipeline::Reported;
use crate::error::{AwsError, aws_err};

/// What Shipgate needs of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    /// The AppSpec (YAML or JSON) when the revision carries it inline: an
    /// `AppSpecContent` or a `String` revision. AWS does not document which
    /// of the two CodePipeline's `CodeDeployToECS` action creates, so both
    /// are read; an `S3` or `GitHub` revision has none here.
    pub appspec: Option<String>,
    /// The revision's type as CodeDeploy names it (`AppSpecContent`, `S3`, ...).
    pub revision_type: Option<String>,
    /// The rollback deployment this one's failure started (`rollbackInfo`).
    pub rolled_back_by: Option<String>,
    /// The deployment this one rolls back, when it is a rollback.
    pub rolls_back: Option<String>,
}

/// AWS CodeDeploy: deployments, their targets and hook reports.
#[derive(Debug, Clone)]
pub struct CodeDeploy {
    client: aws_sdk_codedeploy::Client,
}

impl CodeDeploy {
    pub fn new(client: aws_sdk_codedeploy::Client) -> Self {
        Self { client }
    }

    pub fn connect(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_codedeploy::Client::new(sdk))
    }

    /// The deployment, or `None` when CodeDeploy does not know it.
    pub async fn get_deployment(&self, id: &str) -> Result<Option<Deployment>, AwsError> {
        let client = &self.client;
        let result = client.get_deployment().deployment_id(id).send().await;
        let output = match result {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_deployment_does_not_exist_exception()) => {
                return Ok(None);
            }
            Err(e) => return Err(aws_err("CodeDeploy", "GetDeployment")(e)),
        };
        let info = output.deployment_info;
        let revision = info.as_ref().and_then(|i| i.revision.as_ref());
        let rollback = info.as_ref().and_then(|i| i.rollback_info.as_ref());
        Ok(Some(Deployment {
            id: id.to_owned(),
            application: info.as_ref().and_then(|i| i.application_name.clone()),
            deployment_group: info.as_ref().and_then(|i| i.deployment_group_name.clone()),
            rolled_back_by: rollback.and_then(|r| r.rollback_deployment_id.clone()),
            rolls_back: rollback.and_then(|r| r.rollback_triggering_deployment_id.clone()),
            revision_type: revision.and_then(|r| r.revision_type.as_ref()).map(|t| t.as_str().to_owned()),
            // `String` revisions are deprecated in the SDK's model (in favour
            // of `AppSpecContent`), but a deployment made with one still
            // carries its AppSpec there.
            #[allow(deprecated)]
            appspec: revision.and_then(|r| {
                r.app_spec_content
                    .as_ref()
                    .and_then(|c| c.content.clone())
                    .or_else(|| r.string.as_ref().and_then(|s| s.content.clone()))
            }),
        }))
    }

    /// The ECS services (`<cluster>/<service>`) a deployment group deploys:
    /// the deployment itself does not name them.
    pub async fn ecs_services(&self, application: &str, group: &str) -> Result<Vec<String>, AwsError> {
        let client = &self.client;
        let output = client
            .get_deployment_group()
            .application_name(application)
            .deployment_group_name(group)
            .send()
            .await
            .map_err(aws_err("CodeDeploy", "GetDeploymentGroup"))?;
        Ok(output
            .deployment_group_info()
            .map(|g| {
                g.ecs_services()
                    .iter()
                    .filter_map(|s| Some(format!("{}/{}", s.cluster_name()?, s.service_name()?)))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The lifecycle hook the deployment's ECS target is in now (the event whose
    /// status is `InProgress`): the invocation payload does not say which hook.
    pub async fn current_hook(&self, id: &str) -> Result<Option<String>, AwsError> {
        let client = &self.client;
        let targets = client
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(aws_err("CodeDeploy", "ListDeploymentTargets"))?;
        for target in targets.target_ids() {
            let output = client
                .get_deployment_target()
                .deployment_id(id)
                .target_id(target)
                .send()
                .await
                .map_err(aws_err("CodeDeploy", "GetDeploymentTarget"))?;
            let events = output
                .deployment_target
                .and_then(|t| t.ecs_target)
                .and_then(|t| t.lifecycle_events)
                .unwrap_or_default();
            let current = events
                .into_iter()
                .find(|e| e.status == Some(LifecycleEventStatus::InProgress))
                .and_then(|e| e.lifecycle_event_name);
            if current.is_some() {
                return Ok(current);
            }
        }
        Ok(None)
    }

    /// Reports the hook's status within `budget` (retries included). A hook
    /// already completed (a duplicate delivery, or CodeDeploy timed it out)
    /// counts as done.
    pub async fn report_hook(
        &self,
        deployment_id: &str,
        hook_execution_id: &str,
        status: HookStatus,
        budget: std::time::Duration,
    ) -> Result<Reported, AwsError> {
        let client = &self.client;
        const OP: &str = "PutLifecycleEventHookExecutionStatus";
        // CodeDeploy waits for a final status: anything but success fails.
        let status = match status.settled() {
            HookStatus::Succeeded => LifecycleEventStatus::Succeeded,
            HookStatus::Failed | HookStatus::InProgress => LifecycleEventStatus::Failed,
        };
        // The same client (connection pool, credentials), with the report's timeouts.
        let config =
            client.config().to_builder().timeout_config(crate::clients::report_timeouts(budget)).build();
        let result = aws_sdk_codedeploy::Client::from_conf(config)
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
}
