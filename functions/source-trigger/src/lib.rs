//! source-trigger: start the right pipeline on a push, exactly once, and only
//! for real pushes.
//!
//! Two entry points, told apart by the payload: EventBridge `CodeCommit
//! Repository State Change` events, and GitHub webhooks through a Lambda
//! Function URL. A webhook's `X-Hub-Signature-256` is verified over the raw
//! body before anything is parsed. Routes come from `routes.yaml` in the
//! config bucket. Each start carries a `clientRequestToken` derived from
//! (pipeline, commit), so a redelivered push starts nothing twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use serde_json::{Value, json};
use shipgate_aws::codepipeline::StartExecution;
use shipgate_aws::env::{ConfigError, optional, required};
use shipgate_aws::s3::Bucket;
use shipgate_aws::{AwsError, ErrorType, InvalidEvent, SdkConfig, decode};
use shipgate_core::limits::YAML_BYTES;
use shipgate_core::routes::{Matched, Push, Route, match_routes, parse_routes, request_token};
use shipgate_core::triggers::CodeCommitReferenceChange;
use shipgate_core::webhook::{GithubPush, WebhookSecret, delivery_json, verify_signature};
use tracing::{info, instrument, warn};

pub const ROUTES_KEY: &str = "routes.yaml";
const ROUTES_TTL: Duration = Duration::from_secs(60);
const ZERO_COMMIT: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Clone)]
pub struct Config {
    pub config_bucket: String,
    pub webhook_secret_arn: Option<String>,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            config_bucket: required("SHIPGATE_CONFIG_BUCKET")?,
            webhook_secret_arn: optional("SHIPGATE_WEBHOOK_SECRET_ARN"),
        })
    }
}

#[derive(Debug)]
pub struct Deps {
    pub codepipeline: shipgate_aws::codepipeline::CodePipeline,
    pub bucket: Bucket,
    /// Without a secret, every webhook is refused (401).
    webhook_secret: SecretSource,
    routes: Mutex<Option<(Instant, Arc<Vec<Route>>)>>,
}

/// Where the webhook secret comes from.
#[derive(Debug)]
enum SecretSource {
    None,
    Given(WebhookSecret),
    /// Read from Secrets Manager on the first webhook and kept: a cold start
    /// for a CodeCommit event never waits for it, and a failed read is tried
    /// again on the next webhook rather than kept.
    SecretsManager {
        sdk: Box<SdkConfig>,
        arn: String,
        secret: tokio::sync::OnceCell<WebhookSecret>,
    },
}

impl Deps {
    pub fn new(sdk: &SdkConfig, config: &Config, webhook_secret: Option<WebhookSecret>) -> Self {
        Self {
            codepipeline: shipgate_aws::codepipeline::CodePipeline::connect(sdk),
            bucket: Bucket::connect(sdk, &config.config_bucket),
            webhook_secret: webhook_secret.map_or(SecretSource::None, SecretSource::Given),
            routes: Mutex::new(None),
        }
    }

    /// The dependencies with the webhook secret read from Secrets Manager
    /// when its ARN is configured, on the first webhook that needs it.
    pub fn with_secret(sdk: &SdkConfig, config: &Config) -> Self {
        let mut deps = Self::new(sdk, config, None);
        if let Some(arn) = &config.webhook_secret_arn {
            deps.webhook_secret = SecretSource::SecretsManager {
                sdk: Box::new(sdk.clone()),
                arn: arn.clone(),
                secret: tokio::sync::OnceCell::new(),
            };
        }
        deps
    }

    /// The webhook secret, `None` when none is configured.
    async fn webhook_secret(&self) -> Result<Option<&WebhookSecret>, AwsError> {
        match &self.webhook_secret {
            SecretSource::None => Ok(None),
            SecretSource::Given(secret) => Ok(Some(secret)),
            SecretSource::SecretsManager { sdk, arn, secret } => {
                secret.get_or_try_init(|| shipgate_aws::secrets::webhook_secret(sdk, arn)).await.map(Some)
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error("routes.yaml is invalid: {0}")]
    InvalidRoutes(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ErrorType for TriggerError {
    fn error_type(&self) -> &'static str {
        match self {
            TriggerError::InvalidEvent(e) => e.error_type(),
            TriggerError::InvalidRoutes(_) => "InvalidRoutes",
            TriggerError::Aws(e) => e.error_type(),
        }
    }
}

/// The Lambda handler: a Function URL request gets an HTTP response; a
/// CodeCommit event gets a summary of what started.
pub async fn handle(deps: &Deps, payload: Value) -> Result<Value, TriggerError> {
    if payload.get("requestContext").is_some() && payload.get("headers").is_some() {
        let request: LambdaFunctionUrlRequest =
            decode(payload).map_err(|e| InvalidEvent(format!("not a Function URL request: {}", e.0)))?;
        let response = handle_webhook(deps, &request).await;
        return Ok(json!({
            "statusCode": response.status,
            "headers": {"content-type": "application/json"},
            "body": response.body.to_string(),
        }));
    }
    match payload.get("detail-type").and_then(Value::as_str) {
        Some("CodeCommit Repository State Change") => {
            let event: EventBridgeEvent<CodeCommitReferenceChange> = decode(payload)?;
            handle_codecommit(deps, &event.detail).await
        }
        other => Err(TriggerError::from(InvalidEvent(format!(
            "expected a Function URL request or a CodeCommit Repository State Change, got detail-type {other:?}"
        )))),
    }
}

/// An HTTP answer to a webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Value,
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse { status, body }
}

fn header<'a>(request: &'a LambdaFunctionUrlRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// A GitHub webhook: verified first, parsed only after. The HTTP handler as
/// a value, callable without a server.
#[instrument(skip_all, fields(delivery))]
pub async fn handle_webhook(deps: &Deps, request: &LambdaFunctionUrlRequest) -> HttpResponse {
    tracing::Span::current().record("delivery", header(request, "x-github-delivery").unwrap_or_default());
    let raw = request.body.as_deref().unwrap_or_default();
    let body = if request.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(bytes) => bytes,
            Err(_) => return answer(400, json!({"error": "body is not valid base64"})),
        }
    } else {
        raw.as_bytes().to_vec()
    };
    let secret = match deps.webhook_secret().await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            warn!("webhook refused: no webhook secret is configured");
            return answer(401, json!({"error": "webhooks are not configured"}));
        }
        Err(e) => {
            warn!(error = %e, "webhook refused: the webhook secret cannot be read");
            return answer(503, json!({"error": "the webhook secret cannot be read; redeliver later"}));
        }
    };
    if let Err(e) = verify_signature(secret, &body, header(request, "x-hub-signature-256")) {
        warn!(reason = %e, "webhook refused");
        return answer(401, json!({"error": e.to_string()}));
    }
    let event = header(request, "x-github-event").unwrap_or_default();
    match event {
        "ping" => return answer(200, json!({"message": "pong"})),
        "push" => {}
        other => return ignored(format!("event {other:?} is not a push")),
    }
    let json = match delivery_json(header(request, "content-type"), &body) {
        Ok(json) => json,
        Err(e) => return answer(400, json!({"error": format!("malformed push body: {e}")})),
    };
    let push: GithubPush = match serde_json::from_slice(&json) {
        Ok(p) => p,
        Err(e) => return answer(400, json!({"error": format!("malformed push body: {e}")})),
    };
    let Some(branch) = push.reference.strip_prefix("refs/heads/") else {
        return ignored(format!("{} is not a branch push", push.reference));
    };
    if push.deleted || push.after == ZERO_COMMIT {
        return ignored(format!("branch {branch} was deleted"));
    }
    let push = Push {
        repository: push.repository.full_name.clone(),
        branch: branch.to_owned(),
        commit: push.after.clone(),
        pusher: push.pusher.as_ref().map(|p| p.name.clone()),
        changed_paths: Some(push.changed_paths()),
    };
    match start_matching(deps, &push).await {
        Ok(Started::Executions(executions)) => answer(200, json!({"started": executions})),
        Ok(Started::Ignored(reason)) => ignored(reason),
        Err(TriggerError::InvalidRoutes(e)) => {
            answer(500, json!({"error": format!("routes.yaml is invalid: {e}")}))
        }
        Err(e) => answer(502, json!({"error": e.to_string()})),
    }
}

fn ignored(reason: String) -> HttpResponse {
    info!(%reason, "push ignored");
    answer(202, json!({"ignored": reason}))
}

#[instrument(skip_all, fields(repository = %change.repository_name))]
async fn handle_codecommit(deps: &Deps, change: &CodeCommitReferenceChange) -> Result<Value, TriggerError> {
    let reason = match (change.event.as_str(), change.reference_type.as_str(), &change.commit_id) {
        (_, "tag", _) => Some(format!("{} is a tag", change.reference_name)),
        ("referenceDeleted", _, _) | ("referenceCreated" | "referenceUpdated", _, None) => {
            Some(format!("branch {} was deleted", change.reference_name))
        }
        ("referenceCreated" | "referenceUpdated", "branch", Some(_)) => None,
        (event, "", _) => Some(format!("{event} changes no branch")),
        (event, kind, _) => Some(format!("{event} of a {kind} is not a push")),
    };
    if let Some(reason) = reason {
        info!(%reason, "push ignored");
        return Ok(json!({"ignored": reason}));
    }
    let push = Push {
        repository: change.repository_name.clone(),
        branch: change.reference_name.clone(),
        commit: change.commit_id.clone().unwrap_or_default(),
        pusher: change.caller_user_arn.as_deref().and_then(|a| a.rsplit('/').next()).map(str::to_owned),
        changed_paths: None,
    };
    Ok(match start_matching(deps, &push).await? {
        Started::Executions(executions) => json!({"started": executions}),
        Started::Ignored(reason) => {
            info!(%reason, "push ignored");
            json!({"ignored": reason})
        }
    })
}

enum Started {
    Executions(Vec<Value>),
    Ignored(String),
}

async fn start_matching(deps: &Deps, push: &Push) -> Result<Started, TriggerError> {
    let Some(routes) = routes(deps).await? else {
        return Ok(Started::Ignored(format!("no {ROUTES_KEY} in the config bucket")));
    };
    let matched = match match_routes(&routes, push) {
        Matched::Routes(r) => r,
        Matched::None(reason) => return Ok(Started::Ignored(reason)),
    };
    let mut started = Vec::new();
    for route in matched {
        let mut variables = vec![
            ("commit".to_owned(), push.commit.clone()),
            ("branch".to_owned(), push.branch.clone()),
            ("repository".to_owned(), push.repository.clone()),
        ];
        if let Some(pusher) = &push.pusher {
            variables.push(("pusher".to_owned(), pusher.clone()));
        }
        let start = StartExecution {
            pipeline: route.pipeline.clone(),
            source_action: route.source_action.clone(),
            commit: push.commit.clone(),
            variables,
            client_request_token: request_token(&route.pipeline, &push.commit),
        };
        let execution_id = deps.codepipeline.start_execution(&start).await?;
        info!(pipeline = %route.pipeline, %execution_id, commit = %push.commit, "pipeline started");
        started.push(json!({"pipeline": route.pipeline, "executionId": execution_id}));
    }
    Ok(Started::Executions(started))
}

/// The routes, read from the config bucket at most once a minute.
async fn routes(deps: &Deps) -> Result<Option<Arc<Vec<Route>>>, TriggerError> {
    if let Ok(cache) = deps.routes.lock()
        && let Some((at, routes)) = cache.as_ref()
        && at.elapsed() < ROUTES_TTL
    {
        return Ok(Some(routes.clone()));
    }
    let Some(object) = deps.bucket.get(ROUTES_KEY, YAML_BYTES).await? else { return Ok(None) };
    let text = String::from_utf8_lossy(&object.body);
    let routes = Arc::new(parse_routes(&text).map_err(|invalid| {
        TriggerError::InvalidRoutes(
            invalid.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
        )
    })?);
    if let Ok(mut cache) = deps.routes.lock() {
        *cache = Some((Instant::now(), routes.clone()));
    }
    Ok(Some(routes))
}
