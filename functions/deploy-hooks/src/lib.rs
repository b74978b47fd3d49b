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

mod checks;
mod codedeploy;
mod completed;
mod ecs;
mod record;

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use shipgate_aws::env::{ConfigError, FleetConfig, millis, optional, positive_millis};
use shipgate_aws::events::Bus;
use shipgate_aws::probe::Probe;
use shipgate_aws::s3::Bucket;
use shipgate_aws::{AwsError, Deadline, ErrorType, EventKind, InvalidEvent, SdkConfig, decode};
use shipgate_core::events::HOOK_RESULT;
use shipgate_core::hooks::{HookInvocation, HookResultEvent, HookStatus};
use shipgate_core::triggers::{DeploymentStateChange, EcsHookResponse};
use tracing::{instrument, warn};

pub use codedeploy::run_hook;
pub use record::RecordError;

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
    pub codedeploy: shipgate_aws::codedeploy::CodeDeploy,
    pub ecs: shipgate_aws::ecs::Ecs,
    /// Image manifests and config blobs: which image a task really runs.
    pub ecr: shipgate_aws::ecr::Ecr,
    /// EPSS scores, for a policy with `scan.fail_on.epss_at_least`.
    pub inspector: shipgate_aws::clients::OnFirstUse<aws_sdk_inspector2::Client>,
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
            codedeploy: shipgate_aws::codedeploy::CodeDeploy::connect(sdk),
            ecs: shipgate_aws::ecs::Ecs::connect(sdk),
            ecr: shipgate_aws::ecr::Ecr::connect(sdk),
            inspector: shipgate_aws::clients::OnFirstUse::new(sdk, aws_sdk_inspector2::Client::new),
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
    #[error("could not record what deployment {deployment} runs: {source}")]
    Record {
        deployment: String,
        #[source]
        source: RecordError,
    },
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

/// What a hook's checks found: the status to answer and everything the
/// `Shipgate Hook Result` event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub status: HookStatus,
    pub hook: String,
    pub reasons: Vec<String>,
    pub digests: Vec<String>,
    pub repository: Option<String>,
    pub owner: Option<String>,
    pub application: Option<String>,
    pub deployment_group: Option<String>,
    /// The invocation was for a rollback, answered without checks.
    pub rollback: bool,
}

impl HookOutcome {
    /// A rollback, answered at once: blocking it would keep the failed
    /// revision serving. `why` says what rolls back.
    pub(crate) fn rollback(hook: &str, why: &str) -> Self {
        Self {
            status: HookStatus::Succeeded,
            rollback: true,
            reasons: vec![format!("{why}; Shipgate never blocks a rollback")],
            ..Self::failed(hook, "")
        }
    }

    pub(crate) fn failed(hook: &str, reason: impl Into<String>) -> Self {
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
    pub status: HookStatus,
    pub reasons: Vec<String>,
    /// False when CodeDeploy already had a status for this hook execution,
    /// or does not know the deployment.
    pub reported_now: bool,
}

/// What deploy-hooks is invoked with.
#[derive(Debug, Clone)]
pub enum DeployHooksEvent {
    /// A lifecycle hook, CodeDeploy's or ECS's.
    Hook(HookInvocation),
    /// A CodeDeploy deployment's state changed (an EventBridge rule): a
    /// successful one's images are recorded as running.
    DeploymentState(Box<EventBridgeEvent<DeploymentStateChange>>),
}

impl DeployHooksEvent {
    /// Hooks carry no `detail-type`; an EventBridge event must be a
    /// CodeDeploy deployment state change.
    pub fn decode(payload: serde_json::Value) -> Result<Self, InvalidEvent> {
        let kind = EventKind::of(&payload);
        match kind.pair() {
            (_, "") => HookInvocation::from_payload(payload).map(Self::Hook).map_err(InvalidEvent),
            ("aws.codedeploy", "CodeDeploy Deployment State-change Notification") => {
                Ok(Self::DeploymentState(Box::new(decode(payload)?)))
            }
            _ => Err(InvalidEvent(format!("not a CodeDeploy deployment state change: {kind}"))),
        }
    }
}

#[instrument(skip_all, fields(kind))]
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    deadline: Deadline,
) -> Result<Response, HookError> {
    let invocation = match DeployHooksEvent::decode(payload)? {
        DeployHooksEvent::DeploymentState(event) => {
            tracing::Span::current().record("kind", "deployment-state");
            return completed::deployment_completed(deps, *event).await.map(Response::Recorded);
        }
        DeployHooksEvent::Hook(invocation) => invocation,
    };
    match invocation {
        HookInvocation::CodeDeploy { deployment_id, hook_execution_id } => {
            tracing::Span::current().record("kind", "codedeploy");
            let work = Box::pin(codedeploy::check(deps, &deployment_id));
            run_hook(deps, &deployment_id, &hook_execution_id, deadline, work).await.map(Response::CodeDeploy)
        }
        HookInvocation::Ecs(hook) => {
            tracing::Span::current().record("kind", "ecs");
            Ok(Response::Ecs(ecs::run_hook(deps, &hook, deadline).await))
        }
    }
}

/// Emits `Shipgate Hook Result`; a failure to emit is logged, never turned
/// into a different hook status.
async fn announce(deps: &Deps, kind: &str, deployment: &str, execution: &str, outcome: &HookOutcome) {
    let detail = HookResultEvent {
        kind: kind.to_owned(),
        deployment: deployment.to_owned(),
        execution: execution.to_owned(),
        hook: outcome.hook.clone(),
        status: outcome.status,
        application: outcome.application.clone(),
        deployment_group: outcome.deployment_group.clone(),
        repository: outcome.repository.clone(),
        owner: outcome.owner.clone(),
        digests: outcome.digests.clone(),
        reasons: outcome.reasons.clone(),
        rollback: outcome.rollback,
    };
    if let Err(e) = deps.bus.put(HOOK_RESULT, &[], &detail).await {
        warn!(error = %e, "could not emit the hook result");
    }
}
