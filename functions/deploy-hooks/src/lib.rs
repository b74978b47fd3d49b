//! deploy-hooks: check a blue/green deployment in its lifecycle hooks, before
//! production traffic moves.
//!
//! CodeDeploy invokes it with `DeploymentId` and `LifecycleEventHookExecutionId`
//! and waits (up to an hour) for `PutLifecycleEventHookExecutionStatus`; this
//! function reports exactly once, before its own deadline, whatever happens.
//! ECS native blue/green invokes it synchronously and reads `hookStatus` from
//! the response. Both run the same checks:
//!
//! - provenance: every image digest of the target task definition has a
//!   passing release-gate decision (`provenance/<digest>.json`), unless the
//!   policy turns `deploy.require_gate_decision` off;
//! - the policy's `deploy.checks` due at this hook, as HTTP requests to the
//!   test listener configured for the function (never a host from the event
//!   or the policy).
//!
//! It also records what a completed deployment runs (`running/…`, for
//! exposure): on CodeDeploy's `SUCCESS` state change (an EventBridge rule)
//! and when it answers an ECS native `POST_PRODUCTION_TRAFFIC_SHIFT` hook
//! with `SUCCEEDED`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipgate_aws::codedeploy::{
    HookStatus as ReportStatus, current_hook, ecs_services, get_deployment, report_hook,
};
use shipgate_aws::codepipeline::Reported;
use shipgate_aws::ecr::{get_manifest, resolve_digest};
use shipgate_aws::ecs::{ServiceRevision, describe_task_definition, service_revision};
use shipgate_aws::env::{ConfigError, FleetConfig, millis, optional, positive_millis};
use shipgate_aws::events::Bus;
use shipgate_aws::exposure::{Recorded, record_deployment};
use shipgate_aws::policies::{PolicyLookup, load_policy};
use shipgate_aws::probe::Probe;
use shipgate_aws::s3::Bucket;
use shipgate_aws::{AwsError, Deadline, ErrorType, InvalidEvent, SdkConfig, decode};
use shipgate_core::events::HOOK_RESULT;
use shipgate_core::exposure::{RunningImage, RunningService, service_of_arn};
use shipgate_core::gate::{Decision, DecisionRecord};
use shipgate_core::hooks::{
    HookInvocation, HookResultEvent, HookStatus, Provenance, appspec_task_definition, hook_matches,
    provenance_key,
};
use shipgate_core::image::{EcrImage, is_pinned_digest, parse_image, short};
use shipgate_core::policy::{DeployPolicy, HttpCheck, Policy};
use shipgate_core::rules::image_platform;
use shipgate_core::taskdef::TaskDefinition;
use shipgate_core::triggers::{DeploymentStateChange, EcsHookResponse, EcsLifecycleHook};
use tracing::{info, instrument, warn};

pub const TEST_LISTENER_VAR: &str = "SHIPGATE_TEST_LISTENER_URL";

#[derive(Debug, Clone)]
pub struct Config {
    pub fleet: FleetConfig,
    /// The test listener's base URL; checks cannot run without it.
    pub test_listener: Option<String>,
    /// The environment overlay of the policy to apply (optional).
    pub environment: Option<String>,
    pub report_margin: Duration,
    pub check_backoff: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            fleet: FleetConfig::from_env()?,
            test_listener: optional(TEST_LISTENER_VAR),
            environment: optional("SHIPGATE_ENVIRONMENT"),
            report_margin: positive_millis(
                "SHIPGATE_REPORT_MARGIN_MS",
                shipgate_aws::deadline::DEFAULT_MARGIN.as_millis() as u64,
            )?,
            check_backoff: millis("SHIPGATE_CHECK_BACKOFF_MS", 1000)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub ecs: aws_sdk_ecs::Client,
    /// Image manifests and config blobs: which image a task really runs.
    pub ecr: aws_sdk_ecr::Client,
    pub http: shipgate_aws::http::Client,
    pub bucket: Bucket,
    pub bus: Bus,
    pub probe: Option<Probe>,
    pub environment: Option<String>,
}

impl Deps {
    pub fn new(sdk: &SdkConfig, config: &Config) -> Result<Self, ConfigError> {
        // One client for image config blobs and the test listener.
        let http = shipgate_aws::http::client(shipgate_aws::http::public_roots())
            .map_err(|e| ConfigError::Invalid { name: "TLS", reason: e.to_string() })?;
        let probe = config
            .test_listener
            .as_deref()
            .map(|url| Probe::with_client(TEST_LISTENER_VAR, url, config.check_backoff, http.clone()))
            .transpose()?;
        Ok(Self {
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            http,
            bucket: Bucket::connect(sdk, &config.fleet.config_bucket),
            bus: Bus::connect(sdk, &config.fleet.event_bus),
            probe,
            environment: config.environment.clone(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    /// Reporting failed; Lambda's retry will check and report again.
    #[error("could not report hook {hook_execution_id} of {deployment_id}: {source}")]
    Report {
        deployment_id: String,
        hook_execution_id: String,
        #[source]
        source: AwsError,
    },
    /// What a completed deployment runs could not be recorded; Lambda's
    /// retry (then the dead-letter queue) has the event.
    #[error("could not record what deployment {deployment} runs: {reason}")]
    Record { deployment: String, reason: String },
}

impl ErrorType for HookError {
    fn error_type(&self) -> &'static str {
        match self {
            HookError::InvalidEvent(e) => e.error_type(),
            HookError::Report { .. } => "ReportFailed",
            HookError::Record { .. } => "RecordFailed",
        }
    }
}

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: HookStatus,
    pub hook: String,
    pub reasons: Vec<String>,
    pub digests: Vec<String>,
    pub repository: Option<String>,
    pub owner: Option<String>,
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    /// ECS native: the invocation was a rollback, answered without checks.
    pub rollback: bool,
}

impl Verdict {
    fn failed(hook: &str, reason: impl Into<String>) -> Self {
        Self {
            status: HookStatus::Failed,
            hook: hook.to_owned(),
            reasons: vec![reason.into()],
            digests: vec![],
            repository: None,
            owner: None,
            application: None,
            deployment_group: None,
            rollback: false,
        }
    }
}

/// What the handler answers: for CodeDeploy, a summary of what it reported;
/// for ECS, the hook response ECS reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    CodeDeploy(CodeDeployOutcome),
    Ecs(EcsHookResponse),
    Recorded(Recording),
}

/// What recording a completed deployment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub deployment: String,
    /// The running record's key, when one was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    /// The digests it runs (each container's image for its platform).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    /// Why nothing was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeDeployOutcome {
    pub deployment_id: String,
    pub hook: String,
    pub status: String,
    pub reasons: Vec<String>,
    /// False when CodeDeploy already had a status for this hook execution,
    /// or does not know the deployment.
    pub reported_now: bool,
}

#[instrument(skip_all, fields(kind))]
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    deadline: Deadline,
) -> Result<Response, HookError> {
    if payload.get("detail-type").is_some() {
        tracing::Span::current().record("kind", "deployment-state");
        return deployment_completed(deps, payload).await.map(Response::Recorded);
    }
    match HookInvocation::from_payload(payload).map_err(InvalidEvent)? {
        HookInvocation::CodeDeploy { deployment_id, hook_execution_id } => {
            tracing::Span::current().record("kind", "codedeploy");
            let work = Box::pin(check_codedeploy(deps, &deployment_id));
            run_hook(deps, &deployment_id, &hook_execution_id, deadline, work).await.map(Response::CodeDeploy)
        }
        HookInvocation::Ecs(hook) => {
            tracing::Span::current().record("kind", "ecs");
            Ok(Response::Ecs(run_ecs_hook(deps, &hook, deadline).await))
        }
    }
}

/// Runs `work` within the deadline and reports its verdict to CodeDeploy,
/// exactly once; a panic or the deadline reports `Failed`. Then tells
/// everyone (`Shipgate Hook Result`).
pub async fn run_hook(
    deps: &Deps,
    deployment_id: &str,
    hook_execution_id: &str,
    deadline: Deadline,
    work: impl Future<Output = Verdict>,
) -> Result<CodeDeployOutcome, HookError> {
    let verdict = match deadline.run(work).await {
        Ok(v) => v,
        Err(interrupted) => {
            Verdict::failed("unknown", format!("the hook could not decide ({interrupted}); failing closed"))
        }
    };
    let status =
        if verdict.status == HookStatus::Succeeded { ReportStatus::Succeeded } else { ReportStatus::Failed };
    let reported = match report_hook(
        &deps.codedeploy,
        deployment_id,
        hook_execution_id,
        status,
        deadline.report_budget(),
    )
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
    info!(deployment_id, hook = %verdict.hook, status = ?verdict.status, reasons = ?verdict.reasons, reported, "hook reported");
    // Only the status this invocation reported is announced: a duplicate
    // delivery whose report CodeDeploy refused as already completed says
    // nothing, whatever it would have decided.
    if reported {
        let announced =
            deadline.after_report(announce(deps, "codedeploy", deployment_id, hook_execution_id, &verdict));
        if announced.await.is_none() {
            warn!("no time left to announce the hook result");
        }
    }
    Ok(CodeDeployOutcome {
        deployment_id: deployment_id.to_owned(),
        hook: verdict.hook.clone(),
        status: if verdict.status == HookStatus::Succeeded { "Succeeded".into() } else { "Failed".into() },
        reasons: verdict.reasons,
        reported_now: reported,
    })
}

/// Emits `Shipgate Hook Result`; a failure to emit is logged, never turned
/// into a different hook status.
async fn announce(deps: &Deps, kind: &str, deployment: &str, execution: &str, verdict: &Verdict) {
    let detail = HookResultEvent {
        kind: kind.to_owned(),
        deployment: deployment.to_owned(),
        execution: execution.to_owned(),
        hook: verdict.hook.clone(),
        status: verdict.status,
        application: verdict.application.clone(),
        deployment_group: verdict.deployment_group.clone(),
        repository: verdict.repository.clone(),
        owner: verdict.owner.clone(),
        digests: verdict.digests.clone(),
        reasons: verdict.reasons.clone(),
        rollback: verdict.rollback,
    };
    if let Err(e) = deps.bus.put(HOOK_RESULT, &[], &detail).await {
        warn!(error = %e, "could not emit the hook result");
    }
}

async fn check_codedeploy(deps: &Deps, deployment_id: &str) -> Verdict {
    let deployment = match get_deployment(&deps.codedeploy, deployment_id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Verdict::failed(
                "unknown",
                format!("CodeDeploy does not know deployment {deployment_id}"),
            );
        }
        Err(e) => return Verdict::failed("unknown", e.to_string()),
    };
    let hook = match current_hook(&deps.codedeploy, deployment_id).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Verdict::failed(
                "unknown",
                format!("cannot tell which lifecycle hook deployment {deployment_id} is in"),
            );
        }
        Err(e) => return Verdict::failed("unknown", e.to_string()),
    };
    let Some(appspec) = &deployment.appspec else {
        return Verdict::failed(
            &hook,
            format!("deployment {deployment_id} has no AppSpec content to read the task definition from"),
        );
    };
    let task_definition = match appspec_task_definition(appspec) {
        Ok(td) => td,
        Err(e) => return Verdict::failed(&hook, e),
    };
    let mut verdict = check_task_definition(deps, &hook, &task_definition, &BTreeMap::new()).await;
    verdict.application = deployment.application;
    verdict.deployment_group = deployment.deployment_group;
    verdict
}

/// The ECS native path: same checks, answered in the response. Running out
/// of time asks ECS to call again (up to a few times) rather than fail a
/// deployment whose checks are merely slow.
async fn run_ecs_hook(deps: &Deps, hook: &EcsLifecycleHook, deadline: Deadline) -> EcsHookResponse {
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
        let verdict = Verdict {
            status: HookStatus::Succeeded,
            rollback: true,
            reasons: vec![format!(
                "ECS is rolling back from this revision at {stage}; Shipgate never blocks a rollback"
            )],
            ..Verdict::failed(&stage, "")
        };
        info!(%deployment, hook = %stage, "rollback: answered SUCCEEDED without running checks");
        announce_ecs(deps, &deployment, hook, &verdict, deadline).await;
        return EcsHookResponse {
            hook_status: "SUCCEEDED".into(),
            call_back_delay: None,
            hook_details: None,
        };
    }
    // The revision is kept: after production traffic moves, it is what the
    // service runs (recorded below without reading it again).
    let mut checked = None;
    let work = Box::pin(async {
        let revision = &hook.execution_details.target_service_revision_arn;
        match service_revision(&deps.ecs, revision).await {
            Ok(Some(r)) => {
                let verdict = check_task_definition(deps, &stage, &r.task_definition, &r.image_digests).await;
                checked = Some(r);
                verdict
            }
            Ok(None) => Verdict::failed(&stage, format!("ECS does not know service revision {revision}")),
            Err(e) => Verdict::failed(&stage, e.to_string()),
        }
    });
    let verdict = match deadline.run(work).await {
        Ok(v) => v,
        Err(shipgate_aws::Interrupted::DeadlineReached { .. }) if callbacks < MAX_CALLBACKS => Verdict {
            status: HookStatus::InProgress,
            ..Verdict::failed(&stage, "checks did not finish in this invocation; ECS will call again")
        },
        Err(interrupted) => {
            Verdict::failed(&stage, format!("the hook could not decide ({interrupted}); failing closed"))
        }
    };
    info!(%deployment, hook = %verdict.hook, status = ?verdict.status, reasons = ?verdict.reasons, "ECS hook answered");
    announce_ecs(deps, &deployment, hook, &verdict, deadline).await;
    // Production traffic has moved and stays: what the service runs now.
    // Traffic is already on the new revision, so a failure to record is
    // logged, never turned into a failed hook (which would roll back a
    // good deployment over a bookkeeping write).
    if let Some(revision) = checked
        .filter(|_| verdict.status == HookStatus::Succeeded && stage == "POST_PRODUCTION_TRAFFIC_SHIFT")
    {
        match deadline.after_report(record_ecs(deps, hook, &revision, &deployment)).await {
            Some(Ok(recording)) => info!(recorded = ?recording.recorded, "running images recorded"),
            Some(Err(e)) => warn!(error = %e, "could not record what the service runs"),
            None => warn!("no time left to record what the service runs"),
        }
    }
    match verdict.status {
        HookStatus::Succeeded => {
            EcsHookResponse { hook_status: "SUCCEEDED".into(), call_back_delay: None, hook_details: None }
        }
        HookStatus::Failed => {
            EcsHookResponse { hook_status: "FAILED".into(), call_back_delay: None, hook_details: None }
        }
        HookStatus::InProgress => EcsHookResponse {
            hook_status: "IN_PROGRESS".into(),
            call_back_delay: Some(30),
            hook_details: Some(serde_json::json!({"shipgateCallbacks": callbacks + 1})),
        },
    }
}

/// The ECS answer is the invocation's response, so the announcement may only
/// use what is left before the response must go: it is cut short, never the
/// answer. An `IN_PROGRESS` answer is not an outcome and is not announced.
async fn announce_ecs(
    deps: &Deps,
    deployment: &str,
    hook: &EcsLifecycleHook,
    verdict: &Verdict,
    deadline: Deadline,
) {
    if verdict.status == HookStatus::InProgress {
        return;
    }
    if deadline.after_report(announce(deps, "ecs", deployment, &hook.execution_id, verdict)).await.is_none() {
        warn!("no time left to announce the hook result; answering ECS first");
    }
}

/// A CodeDeploy deployment completed: records what its task definition
/// runs in the deployment group's ECS service.
async fn deployment_completed(deps: &Deps, payload: serde_json::Value) -> Result<Recording, HookError> {
    let event: EventBridgeEvent<DeploymentStateChange> = decode(payload)?;
    if event.source != "aws.codedeploy"
        || event.detail_type != "CodeDeploy Deployment State-change Notification"
    {
        return Err(InvalidEvent(format!(
            "not a CodeDeploy deployment state change: {} / {}",
            event.source, event.detail_type
        ))
        .into());
    }
    let deployed_at = event.time.unwrap_or_else(Utc::now);
    let change = event.detail;
    let deployment = change.deployment_id.clone();
    let recording = record_codedeploy(deps, change, deployed_at)
        .await
        .map_err(|reason| HookError::Record { deployment: deployment.clone(), reason })?;
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
) -> Result<Recording, String> {
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
    let Some(deployment) = get_deployment(&deps.codedeploy, &id).await.map_err(|e| e.to_string())? else {
        return Ok(ignored("CodeDeploy does not know the deployment"));
    };
    let Some(appspec) = &deployment.appspec else {
        return Ok(ignored("the deployment has no AppSpec content to read its task definition from"));
    };
    let task_definition = appspec_task_definition(appspec)?;
    let application = change.application.or(deployment.application).unwrap_or_default();
    let group = change.deployment_group.or(deployment.deployment_group).unwrap_or_default();
    let services = ecs_services(&deps.codedeploy, &application, &group).await.map_err(|e| e.to_string())?;
    // An ECS deployment group deploys exactly one service; a group that
    // names none is named by its application and group.
    let service = services.into_iter().next().unwrap_or_else(|| format!("{application}/{group}"));
    record_running(deps, &id, service, &task_definition, &BTreeMap::new(), deployed_at).await
}

/// The ECS native path: the service revision production traffic moved to.
async fn record_ecs(
    deps: &Deps,
    hook: &EcsLifecycleHook,
    revision: &ServiceRevision,
    deployment: &str,
) -> Result<Recording, String> {
    let details = &hook.execution_details;
    let service = service_of_arn(&details.service_arn).ok_or_else(|| {
        format!("executionDetails.serviceArn {:?} is not an ECS service ARN", details.service_arn)
    })?;
    record_running(deps, deployment, service, &revision.task_definition, &revision.image_digests, Utc::now())
        .await
}

/// Records that `service` runs `task_definition`'s ECR images (each as the
/// image its platform runs) since `deployed_at`.
async fn record_running(
    deps: &Deps,
    deployment: &str,
    service: String,
    task_definition: &str,
    resolved: &BTreeMap<String, String>,
    deployed_at: DateTime<Utc>,
) -> Result<Recording, String> {
    let td = describe_task_definition(&deps.ecs, task_definition).await.map_err(|e| e.to_string())?;
    let mut images = Vec::new();
    for c in &td.container_definitions {
        let image = c.image.trim();
        // Inspector scans ECR images only: nothing else can be re-judged.
        let Some(ecr) = EcrImage::parse(image) else { continue };
        let digest = match (resolved.get(&c.name), &ecr.digest, &ecr.tag) {
            (Some(d), _, _) | (None, Some(d), _) => d.clone(),
            (None, None, Some(tag)) => {
                resolve_digest(&deps.ecr, Some(&ecr.registry_id), &ecr.repository, tag)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("ECR has no image {}:{tag}", ecr.repository))?
            }
            (None, None, None) => return Err(format!("image {image} names neither a tag nor a digest")),
        };
        let runs = image_that_runs(deps, &td, &c.name, image, &digest).await?;
        images.push(RunningImage {
            container: c.name.clone(),
            image: image.to_owned(),
            repository: ecr.repository,
            digest: runs,
            exposure: Default::default(),
        });
    }
    let running = RunningService {
        environment: deps.environment.clone(),
        service,
        deployment: deployment.to_owned(),
        deployed_at,
        images,
    };
    let key = running.key();
    let digests: Vec<String> = running.digests().into_iter().map(str::to_owned).collect();
    Ok(match record_deployment(&deps.bucket, running).await.map_err(|e| e.to_string())? {
        Recorded::Written(_) => {
            info!(%key, ?digests, "running images recorded");
            Recording { deployment: deployment.to_owned(), recorded: Some(key), digests, ignored: None }
        }
        Recorded::Kept => Recording {
            deployment: deployment.to_owned(),
            recorded: None,
            digests,
            ignored: Some(format!("{key} already records this or a later deployment")),
        },
    })
}

/// Provenance and HTTP checks for the task definition being deployed.
/// `resolved` holds the digests ECS resolved container images to (ECS native
/// service revisions): those are what runs, whatever the image string says.
async fn check_task_definition(
    deps: &Deps,
    hook: &str,
    task_definition: &str,
    resolved: &BTreeMap<String, String>,
) -> Verdict {
    let td = match describe_task_definition(&deps.ecs, task_definition).await {
        Ok(td) => td,
        Err(e) => return Verdict::failed(hook, e.to_string()),
    };
    let images: Vec<String> = td.container_definitions.iter().map(|c| c.image.trim().to_owned()).collect();
    // (container, image as written, the digest it runs as)
    let running: Vec<(String, String, Option<String>)> = td
        .container_definitions
        .iter()
        .map(|c| {
            let image = c.image.trim().to_owned();
            let digest =
                resolved.get(&c.name).cloned().or_else(|| parse_image(&image).digest.map(str::to_owned));
            (c.name.clone(), image, digest)
        })
        .collect();
    let digests: Vec<String> = running.iter().filter_map(|(_, _, d)| d.clone()).collect();
    let repository = images.iter().find_map(|i| EcrImage::parse(i)).map(|i| i.repository);
    let mut verdict =
        Verdict { digests: digests.clone(), repository: repository.clone(), ..Verdict::failed(hook, "") };
    verdict.reasons.clear();

    if repository.is_none() {
        verdict
            .reasons
            .push(format!("task definition {task_definition} has no ECR image to find a policy for"));
        return verdict;
    }
    // Each image is judged by its own repository's policy (an image from
    // outside ECR by the default policy), so one lenient repository cannot
    // waive provenance for the others.
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for (container, image, digest) in &running {
        let scope = EcrImage::parse(image).map_or_else(|| "default".to_owned(), |i| i.repository);
        if !policies.contains_key(&scope) {
            match image_policy(deps, &scope).await {
                Ok((policy, owner)) => {
                    verdict.owner = verdict.owner.take().or(owner);
                    policies.insert(scope.clone(), policy);
                }
                Err(reason) => {
                    verdict.reasons.push(reason);
                    return verdict;
                }
            }
        }
        if !policies[&scope].deploy.require_gate_decision {
            continue;
        }
        match digest.as_deref().filter(|d| is_pinned_digest(d)) {
            None => verdict.reasons.push(format!(
                "image {image} is not pinned by digest, so its gate decision cannot be checked"
            )),
            Some(digest) => {
                // What the task runs: for an image index, its image for the
                // task's platform, which must have passed the gate itself (a
                // pass for arm64 opens nothing for amd64).
                let runs = match image_that_runs(deps, &td, container, image, digest).await {
                    Ok(runs) => runs,
                    Err(reason) => {
                        verdict.reasons.push(reason);
                        continue;
                    }
                };
                match gate_decision(deps, &runs).await {
                    Ok(true) => {}
                    Ok(false) if runs != digest => verdict.reasons.push(format!(
                        "image {} runs {} on this task's platform, which has no passing release-gate decision (was the index gated for another platform?)",
                        short(digest),
                        short(&runs)
                    )),
                    Ok(false) => verdict.reasons.push(format!(
                        "image {} has no passing release-gate decision (was it deployed without the pipeline?)",
                        short(digest)
                    )),
                    Err(e) => verdict.reasons.push(e.to_string()),
                }
            }
        }
    }
    // An ungated image is stopped before any traffic reaches it.
    if !verdict.reasons.is_empty() {
        return verdict;
    }
    // The checks every image's policy asks for, each once.
    let mut checks: Vec<HttpCheck> = Vec::new();
    for policy in policies.values() {
        for check in &policy.deploy.checks {
            if !checks.contains(check) {
                checks.push(check.clone());
            }
        }
    }
    let policy = Policy { deploy: DeployPolicy { checks, ..Policy::default().deploy }, ..Policy::default() };
    verdict.reasons.extend(run_checks(deps, &policy, hook).await);
    if verdict.reasons.is_empty() {
        verdict.status = HookStatus::Succeeded;
    }
    verdict
}

/// The policy an image from `scope` (its repository, or `default`) must meet
/// in this hook's environment, and the policy's owner; or why there is none.
async fn image_policy(deps: &Deps, scope: &str) -> Result<(Policy, Option<String>), String> {
    match load_policy(&deps.bucket, scope).await {
        Ok(PolicyLookup::Found { lkg, .. }) => {
            let owner = lkg.document.policy.owner.clone();
            let policy = lkg.document.environment(deps.environment.as_deref()).map_err(|e| e.to_string())?;
            Ok((policy.clone(), owner))
        }
        Ok(PolicyLookup::None(why)) => Err(format!("{why}; failing closed")),
        Err(e) => Err(e.to_string()),
    }
}

/// The digest a container of `td` runs for `digest`: an ECR image index's
/// image for the task's `runtimePlatform`, or the image itself (after its
/// config says it runs there); images outside ECR as they are. `Err` says
/// why the image cannot run or be read.
async fn image_that_runs(
    deps: &Deps,
    td: &TaskDefinition,
    container: &str,
    image: &str,
    digest: &str,
) -> Result<String, String> {
    let Some(ecr) = EcrImage::parse(image) else {
        return Ok(digest.to_owned());
    };
    let manifest = get_manifest(&deps.ecr, &deps.http, Some(&ecr.registry_id), &ecr.repository, digest)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("ECR has no image {}@{digest}", ecr.repository))?;
    image_platform(td, container, image, digest, &manifest)
        .map(str::to_owned)
        .map_err(|v| format!("{} ({})", v.message, v.rule))
}

/// True when the digest has a passing decision on record for this hook's
/// environment (the decision's own environment must be this one).
async fn gate_decision(deps: &Deps, digest: &str) -> Result<bool, AwsError> {
    let key = provenance_key(digest, deps.environment.as_deref());
    let Some(provenance) = deps.bucket.get_json::<Provenance>(&key).await? else {
        return Ok(false);
    };
    let record = deps.bucket.get_json::<DecisionRecord>(&provenance.decision_key).await?;
    Ok(record.is_some_and(|r| {
        r.decision == Decision::Pass && r.digests.contains_key(digest) && r.environment == deps.environment
    }))
}

/// Runs the checks due at `hook`, returning why any failed.
async fn run_checks(deps: &Deps, policy: &Policy, hook: &str) -> Vec<String> {
    let due: Vec<_> = policy.deploy.checks.iter().filter(|c| hook_matches(&c.hook, hook)).collect();
    if due.is_empty() {
        return Vec::new();
    }
    let Some(probe) = &deps.probe else {
        return vec![format!(
            "{} check(s) are due at {hook} but {TEST_LISTENER_VAR} is not configured",
            due.len()
        )];
    };
    let mut failures = Vec::new();
    for check in due {
        let timeout = Duration::from_secs(check.timeout.seconds);
        let outcome = probe.check(&check.path, check.expect_status, timeout, check.attempts).await;
        if !outcome.passed {
            failures.push(format!(
                "check GET {} failed after {} attempt(s): {}",
                outcome.path, outcome.attempts, outcome.last
            ));
        }
    }
    failures
}
