//! release-gate: the CodePipeline Lambda invoke action that lets a release
//! through only when policy says so.
//!
//! Each invocation reports exactly one result for its job, before the Lambda
//! deadline: the decision runs inside the deadline guard, and whatever comes
//! out (a decision, an error, a panic, the deadline) is reported. Errors fail
//! closed. A scan still running makes the job continue (CodePipeline invokes
//! again with the continuation token) until the policy's `scan.wait`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use aws_lambda_events::codepipeline_job::CodePipelineJobEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipgate_aws::artifacts::{ArtifactCredentials, ArtifactError, ArtifactLocation, read_files};
use shipgate_aws::clients::OnFirstUse;
use shipgate_aws::codepipeline::{
    JobResult, MAX_CONTINUATION_TOKEN, MAX_FAILURE_MESSAGE, Reported, report_job,
};
use shipgate_aws::ecr::{ScanLookup, describe_scan, get_manifest, resolve_digest};
use shipgate_aws::env::{ConfigError, FleetConfig, positive_millis};
use shipgate_aws::events::Bus;
use shipgate_aws::inspector::add_epss;
use shipgate_aws::policies::{PolicyLookup, load_central_policy};
use shipgate_aws::s3::{Bucket, Condition, PutOutcome};
use shipgate_aws::{AwsError, Deadline, ErrorType, InvalidEvent, SdkConfig, decode};
use shipgate_core::events::GATE_DECISION;
use shipgate_core::gate::{
    Continuation, Decision, DecisionRecord, GateDecisionEvent, GateParameters, ImageDetail, ImageScan,
    Judgement, ReportedResult, combine, decision_id, failure_message, image_placeholders,
    substitute_image_placeholders,
};
use shipgate_core::hooks::{Provenance, provenance_key};
use shipgate_core::image::EcrImage;
use shipgate_core::lkg::NoPolicy;
use shipgate_core::policy::{Policy, UnknownEnvironment, layer};
use shipgate_core::rules::{check_task_definition, image_platform};
use shipgate_core::scan::{ScanVerdict, ScanViolation, Verdict, evaluate_scan};
use shipgate_core::taskdef::TaskDefinition;
use shipgate_core::validate::parse_policy;
use tracing::{info, instrument, warn};

#[derive(Debug, Clone)]
pub struct Config {
    pub fleet: FleetConfig,
    /// Time kept back from the Lambda deadline to report the result.
    pub report_margin: Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            fleet: FleetConfig::from_env()?,
            report_margin: positive_millis(
                "SHIPGATE_REPORT_MARGIN_MS",
                shipgate_aws::deadline::DEFAULT_MARGIN.as_millis() as u64,
            )?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub sdk: SdkConfig,
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub ecr: aws_sdk_ecr::Client,
    /// EPSS scores, read only for a policy that judges them.
    pub inspector: OnFirstUse<aws_sdk_inspector2::Client>,
    /// Image config blobs, through the URLs ECR gives (S3, HTTPS).
    pub http: shipgate_aws::http::Client,
    pub bucket: Bucket,
    pub bus: Bus,
}

impl Deps {
    pub fn new(sdk: &SdkConfig, config: &Config) -> Result<Self, ConfigError> {
        let http = shipgate_aws::http::client(shipgate_aws::http::public_roots())
            .map_err(|e| ConfigError::Invalid { name: "TLS", reason: e.to_string() })?;
        Ok(Self {
            sdk: sdk.clone(),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            inspector: OnFirstUse::new(sdk, aws_sdk_inspector2::Client::new),
            http,
            bucket: Bucket::connect(sdk, &config.fleet.config_bucket),
            bus: Bus::connect(sdk, &config.fleet.event_bus),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Without a job id there is nothing to report to.
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    /// Reporting the result failed; Lambda's retry will decide and report again.
    #[error("could not report job {job_id}: {source}")]
    Report {
        job_id: String,
        #[source]
        source: AwsError,
    },
}

impl ErrorType for GateError {
    fn error_type(&self) -> &'static str {
        match self {
            GateError::InvalidEvent(e) => e.error_type(),
            GateError::Report { .. } => "ReportFailed",
        }
    }
}

/// What one invocation reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub job_id: String,
    /// `succeeded`, `continue` or `failed`.
    pub result: String,
    /// False when CodePipeline already had a result for the job.
    pub reported_now: bool,
    pub summary: String,
}

/// The Lambda handler: decide, then report exactly once.
#[instrument(skip_all, fields(job_id))]
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    deadline: Deadline,
    now: DateTime<Utc>,
) -> Result<Outcome, GateError> {
    let job_id = payload
        .pointer("/CodePipeline.job/id")
        .and_then(|v| v.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            InvalidEvent::new("no CodePipeline.job.id: not a CodePipeline job, nothing to report to")
        })?
        .to_owned();
    tracing::Span::current().record("job_id", job_id.as_str());
    // Boxed: the decision is a deep future, and a small handler future keeps
    // the runtime's own future (and compile-time layout work) small.
    let mut to_announce = None;
    let work = Box::pin(decide(deps, &job_id, payload, now, &mut to_announce));
    let outcome = run_job(&deps.codepipeline, &job_id, deadline, work).await?;
    if let Some(record) = to_announce {
        // Only what this invocation reported is announced: when CodePipeline
        // already had a result (an earlier run that ran out of time, say),
        // the record may not say what the job shows, so nothing goes out.
        if outcome.reported_now {
            match deadline.after_report(announce(deps, &record)).await {
                Some(Ok(())) => {}
                Some(Err(e)) => warn!(error = %e, "could not announce the decision"),
                None => warn!("no time left to announce the decision"),
            }
        } else {
            info!("CodePipeline already had a result for the job; announcing nothing");
        }
    }
    Ok(outcome)
}

/// Runs `work` within the deadline and reports what it produced; if it
/// panics or runs out of time, reports a failure instead. The one place a
/// job's result is reported.
pub async fn run_job(
    codepipeline: &aws_sdk_codepipeline::Client,
    job_id: &str,
    deadline: Deadline,
    work: impl Future<Output = JobResult>,
) -> Result<Outcome, GateError> {
    tracing::debug!(budget_ms = deadline.budget().as_millis() as u64, "deciding");
    let result = match deadline.run(work).await {
        Ok(result) => result,
        Err(interrupted) => {
            warn!(%interrupted, "decision interrupted; failing the job");
            JobResult::Failed {
                message: format!(
                    "Release blocked: the gate could not decide ({interrupted}); failing closed"
                ),
            }
        }
    };
    // A token CodePipeline would refuse cannot be reported as a
    // continuation: the job fails instead of staying unreported.
    let result = match result {
        JobResult::Continue { token, .. } if token.len() > MAX_CONTINUATION_TOKEN => JobResult::Failed {
            message: format!(
                "Release blocked: the gate's continuation token is {} characters, over CodePipeline's {MAX_CONTINUATION_TOKEN}; failing closed",
                token.len()
            ),
        },
        other => other,
    };
    let reported = report_job(codepipeline, job_id, &result, deadline.report_budget())
        .await
        .map_err(|source| GateError::Report { job_id: job_id.to_owned(), source })?;
    let (kind, summary) = match &result {
        JobResult::Succeeded { summary, .. } => ("succeeded", summary.clone()),
        JobResult::Continue { summary, .. } => ("continue", summary.clone()),
        JobResult::Failed { message } => ("failed", message.clone()),
    };
    info!(result = kind, already_reported = reported == Reported::AlreadyDone, "job reported");
    Ok(Outcome {
        job_id: job_id.to_owned(),
        result: kind.into(),
        reported_now: reported == Reported::Now,
        summary,
    })
}

/// Where the job runs, from `GetJobDetails` (the invoke event does not say).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PipelineContext {
    pipeline: String,
    execution_id: String,
    stage: Option<String>,
    action: Option<String>,
}

async fn pipeline_context(deps: &Deps, job_id: &str) -> PipelineContext {
    let details = deps.codepipeline.get_job_details().job_id(job_id).send().await;
    let context =
        details.ok().and_then(|d| d.job_details).and_then(|j| j.data).and_then(|d| d.pipeline_context);
    match context {
        Some(c) => PipelineContext {
            pipeline: c.pipeline_name.unwrap_or_else(|| "unknown-pipeline".into()),
            execution_id: c.pipeline_execution_id.unwrap_or_else(|| job_id.to_owned()),
            stage: c.stage.and_then(|s| s.name),
            action: c.action.and_then(|a| a.name),
        },
        None => {
            warn!("GetJobDetails gave no pipeline context; recording the decision under unknown-pipeline");
            PipelineContext {
                pipeline: "unknown-pipeline".into(),
                execution_id: job_id.to_owned(),
                stage: None,
                action: None,
            }
        }
    }
}

/// What the decision was made with, for the record and the event.
#[derive(Debug, Clone, Default)]
struct Basis {
    environment: Option<String>,
    repository: Option<String>,
    image: Option<String>,
    digest: Option<String>,
    policy_key: Option<String>,
    policy_sha256: Option<String>,
    owner: Option<String>,
    repository_policy: bool,
    notes: Vec<String>,
}

/// Decides the job and turns the decision into the result to report. The
/// first decision recorded for a job id is the job's decision: the record is
/// written only if absent, so a later invocation (a redelivery, or a
/// duplicate running at the same time) loses the write and reports what is
/// recorded, whatever it decided itself. A recorded decision not yet
/// announced is left in `to_announce`.
async fn decide(
    deps: &Deps,
    job_id: &str,
    payload: serde_json::Value,
    now: DateTime<Utc>,
    to_announce: &mut Option<DecisionRecord>,
) -> JobResult {
    let (basis, judged) = Box::pin(judge_job(deps, payload, now)).await;
    let (judgement, continuation) = match judged {
        Ok(judged) => judged,
        Err(refusal) => (Judgement::refused(refusal.to_string()), None),
    };
    if judgement.decision == Decision::Wait {
        let token = continuation.map_or_else(|| Continuation::start(now), Continuation::next).to_token();
        return JobResult::Continue { token, summary: judgement.reasons.join("; ") };
    }
    let context = pipeline_context(deps, job_id).await;
    let result = job_result(&judgement, &basis, &decision_id(job_id));
    let record = decision_record(job_id, &context, &judgement, &basis, &result, now);
    let key = record.key();
    let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
    match deps.bucket.put(&key, body, "application/json", Condition::IfAbsent).await {
        Ok(PutOutcome::Written { .. }) => {
            info!(decision = ?judgement.decision, pipeline = %context.pipeline, decision_id = %record.decision_id, "decided");
            *to_announce = Some(record);
            result
        }
        Ok(PutOutcome::ConditionFailed) => match deps.bucket.get_json::<DecisionRecord>(&key).await {
            Ok(Some(first)) => {
                info!(decision = ?first.decision, "another invocation decided the job first");
                recorded_result(first, to_announce)
            }
            _ => JobResult::Failed {
                message: "Release blocked: another invocation decided this job and its decision cannot be read; failing closed".into(),
            },
        },
        Err(e) => {
            warn!(error = %e, "could not record the decision");
            match judgement.decision {
                Decision::Pass => JobResult::Failed {
                    message: format!(
                        "Release blocked: the passing decision could not be recorded ({e}); failing closed"
                    ),
                },
                _ => result,
            }
        }
    }
}

/// The result a recorded decision reports; an unannounced one is left to announce.
fn recorded_result(recorded: DecisionRecord, to_announce: &mut Option<DecisionRecord>) -> JobResult {
    let ReportedResult { summary, output_variables } = recorded.reported.clone();
    let result = match recorded.decision {
        Decision::Pass => JobResult::Succeeded { summary, output_variables },
        _ => JobResult::Failed { message: summary },
    };
    if !recorded.announced {
        *to_announce = Some(recorded);
    }
    result
}

/// What a decision reports to CodePipeline.
fn job_result(judgement: &Judgement, basis: &Basis, decision_id: &str) -> JobResult {
    match judgement.decision {
        Decision::Pass => {
            let mut summary = format!(
                "PASS: {} under {}",
                basis.image.as_deref().unwrap_or("the image"),
                basis.policy_key.as_deref().unwrap_or("policy")
            );
            if let Some(env) = &basis.environment {
                summary.push_str(&format!(" ({env})"));
            }
            let excepted = judgement.excepted().len();
            if excepted > 0 {
                summary.push_str(&format!("; {excepted} finding(s) excepted"));
            }
            for note in &basis.notes {
                summary.push_str(&format!("; {note}"));
            }
            JobResult::Succeeded {
                summary,
                output_variables: vec![
                    ("IMAGE_DIGEST".into(), basis.digest.clone().unwrap_or_default()),
                    ("DECISION_ID".into(), decision_id.to_owned()),
                    ("POLICY_SHA256".into(), basis.policy_sha256.clone().unwrap_or_default()),
                ],
            }
        }
        _ => JobResult::Failed {
            message: failure_message(basis.policy_key.as_deref(), &judgement.reasons, MAX_FAILURE_MESSAGE),
        },
    }
}

fn decision_record(
    job_id: &str,
    context: &PipelineContext,
    judgement: &Judgement,
    basis: &Basis,
    result: &JobResult,
    now: DateTime<Utc>,
) -> DecisionRecord {
    let reported = match result {
        JobResult::Succeeded { summary, output_variables } => {
            ReportedResult { summary: summary.clone(), output_variables: output_variables.clone() }
        }
        JobResult::Continue { summary, .. } => {
            ReportedResult { summary: summary.clone(), output_variables: vec![] }
        }
        JobResult::Failed { message } => {
            ReportedResult { summary: message.clone(), output_variables: vec![] }
        }
    };
    DecisionRecord {
        decision_id: decision_id(job_id),
        job_id: job_id.to_owned(),
        pipeline: context.pipeline.clone(),
        execution_id: context.execution_id.clone(),
        stage: context.stage.clone(),
        action: context.action.clone(),
        decided_at: now,
        decision: judgement.decision,
        environment: basis.environment.clone(),
        repository: basis.repository.clone(),
        image: basis.image.clone(),
        digests: judgement.digests(),
        policy_key: basis.policy_key.clone(),
        policy_sha256: basis.policy_sha256.clone(),
        repository_policy: basis.repository_policy,
        owner: basis.owner.clone(),
        reasons: judgement.reasons.clone(),
        violations: judgement.violations.clone(),
        exceptions_used: judgement.excepted().into_iter().cloned().collect(),
        reported,
        announced: false,
    }
}

/// Announces a recorded decision whose result this invocation reported: for a
/// pass, the provenance deploy-hooks checks; then `Shipgate Gate Decision`;
/// then the record marked announced.
async fn announce(deps: &Deps, record: &DecisionRecord) -> Result<(), AwsError> {
    let key = record.key();
    if record.decision == Decision::Pass {
        // The index deploy-hooks checks provenance with: this digest passed.
        for digest in record.digests.keys() {
            let provenance = Provenance {
                digest: digest.clone(),
                decision_id: record.decision_id.clone(),
                decision_key: key.clone(),
                pipeline: record.pipeline.clone(),
                execution_id: record.execution_id.clone(),
                decided_at: record.decided_at,
                environment: record.environment.clone(),
            };
            deps.bucket.put_json(&provenance_key(digest, record.environment.as_deref()), &provenance).await?;
        }
    }
    let resources = [format!("codepipeline:{}/{}", record.pipeline, record.execution_id)];
    deps.bus.put(GATE_DECISION, &resources, &GateDecisionEvent::from_record(record)).await?;
    deps.bucket.put_json(&key, &DecisionRecord { announced: true, ..record.clone() }).await
}

const FILES: [&str; 3] = ["imageDetail.json", "taskdef.json", "appsec.yaml"];

/// Why the gate refuses to judge a job. The job fails closed, with this as
/// its reason.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("invalid CodePipeline job event: {0}")]
    Event(String),
    /// `UserParameters` or the continuation token is unusable (the message
    /// names which).
    #[error("{0}")]
    Parameters(String),
    #[error("the job carries no artifactCredentials")]
    NoCredentials,
    #[error("the action has no input artifact: give it the build output (imageDetail.json, taskdef.json)")]
    NoInputArtifact,
    #[error("input artifact {0} has no S3 location")]
    NoArtifactLocation(String),
    #[error("{file} is missing from the input artifact(s) {artifacts}")]
    MissingFile { file: &'static str, artifacts: String },
    /// `imageDetail.json` is unusable (the message says how).
    #[error("{0}")]
    ImageDetail(String),
    #[error("imageDetail.json ImageURI {0} is not an ECR image; set UserParameters.repository")]
    NotEcr(String),
    #[error("ECR has no image {repository}:{tag}")]
    NoSuchImage { repository: String, tag: String },
    #[error("ECR has no image {repository}@{digest}")]
    NoSuchDigest { repository: String, digest: String },
    #[error(transparent)]
    NoPolicy(#[from] NoPolicy),
    #[error(transparent)]
    UnknownEnvironment(#[from] UnknownEnvironment),
    #[error("the repository's appsec.yaml is invalid: {0}")]
    RepositoryPolicy(String),
    #[error("taskdef.json: {0}")]
    TaskDefinition(String),
    /// More images than the gate can tell apart.
    #[error("{0}")]
    AmbiguousImages(String),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The job as the invoke event gives it.
struct Job {
    params: GateParameters,
    continuation: Option<Continuation>,
    credentials: ArtifactCredentials,
    artifacts: Vec<ArtifactLocation>,
}

/// What the build produced, as read from the input artifacts.
struct BuildOutput {
    image_detail: ImageDetail,
    taskdef: String,
    repository_policy: Option<String>,
}

/// The image the build pushed, resolved to its digest.
struct BuiltImage {
    uri: String,
    repository: String,
    digest: String,
}

/// Judges the job in its steps: read the job, read the build output,
/// resolve the image, resolve the policy, judge each container and image.
/// The basis says what was known when it stopped, refusal or not.
async fn judge_job(
    deps: &Deps,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> (Basis, Result<(Judgement, Option<Continuation>), Refusal>) {
    let mut basis = Basis::default();
    let judged = async {
        let job = read_job(payload)?;
        basis.environment = job.params.environment.clone();
        // Parameters that name the policy or the repository say which policy
        // applies before the artifact is read: one wait for both.
        let (output, central) = match (&job.params.policy, &job.params.repository) {
            (None, None) => (read_build_output(deps, &job).await?, None),
            (named, repository) => {
                let scope = repository.as_deref().unwrap_or_default();
                let (output, central) = tokio::join!(
                    read_build_output(deps, &job),
                    load_central_policy(&deps.bucket, named.as_deref(), scope)
                );
                (output?, Some(central?))
            }
        };
        basis.image = Some(output.image_detail.image_uri.trim().to_owned());
        let image = resolve_image(deps, &job.params, &output, &mut basis).await?;
        let policy = resolve_policy(deps, &job.params, &image, &output, central, now, &mut basis).await?;
        let judgement = judge_images(deps, &job, &output, &image, &policy, now).await?;
        Ok((judgement, job.continuation))
    }
    .await;
    (basis, judged)
}

/// Step 1: the job's parameters, continuation and input artifacts.
fn read_job(payload: serde_json::Value) -> Result<Job, Refusal> {
    let event: CodePipelineJobEvent = decode(payload).map_err(|e| Refusal::Event(e.0))?;
    let data = event.code_pipeline_job.data;
    let params = GateParameters::parse(data.action_configuration.configuration.user_parameters.as_deref())
        .map_err(Refusal::Parameters)?;
    let continuation = data
        .continuation_token
        .as_deref()
        .map(Continuation::from_token)
        .transpose()
        .map_err(Refusal::Parameters)?;
    let credentials = ArtifactCredentials {
        access_key_id: data.artifact_credentials.access_key_id.clone().unwrap_or_default(),
        secret_access_key: data.artifact_credentials.secret_access_key.clone().unwrap_or_default(),
        session_token: data.artifact_credentials.session_token.clone(),
    };
    if credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty() {
        return Err(Refusal::NoCredentials);
    }
    if data.input_artifacts.is_empty() {
        return Err(Refusal::NoInputArtifact);
    }
    let artifacts = data
        .input_artifacts
        .iter()
        .map(|artifact| {
            let name = artifact.name.clone().unwrap_or_else(|| "input".into());
            let s3 = &artifact.location.s3_location;
            match (s3.bucket_name.clone(), s3.object_key.clone()) {
                (Some(bucket), Some(key)) => Ok(ArtifactLocation { name, bucket, key }),
                _ => Err(Refusal::NoArtifactLocation(name)),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Job { params, continuation, credentials, artifacts })
}

/// Step 2: the build output, read with the job's own credentials. A file in
/// an earlier artifact wins over the same file in a later one.
async fn read_build_output(deps: &Deps, job: &Job) -> Result<BuildOutput, Refusal> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let mut image_details: Vec<(String, String)> = Vec::new();
    for location in &job.artifacts {
        for (file, text) in read_files(&deps.sdk, &job.credentials, location, &FILES).await? {
            if file == "imageDetail.json" {
                image_details.push((location.name.clone(), text.clone()));
            }
            files.entry(file).or_insert(text);
        }
    }
    // Every image the deployment runs is judged, or the job fails: with
    // several images the gate cannot tell which fills which placeholder.
    if image_details.len() > 1 {
        let artifacts: Vec<&str> = image_details.iter().map(|(name, _)| name.as_str()).collect();
        return Err(Refusal::AmbiguousImages(format!(
            "the input artifacts {} each carry an imageDetail.json; the gate cannot tell which image fills which \
             <IMAGEn_NAME>, so it cannot judge every image the deployment runs",
            artifacts.join(", ")
        )));
    }
    let mut take = |file: &'static str| {
        files.remove(file).ok_or_else(|| Refusal::MissingFile {
            file,
            artifacts: job.artifacts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    };
    let image_detail = ImageDetail::parse(&take("imageDetail.json")?).map_err(Refusal::ImageDetail)?;
    let taskdef = take("taskdef.json")?;
    let placeholders = image_placeholders(&taskdef);
    if placeholders.len() > 1 {
        let names: Vec<String> = placeholders.iter().map(|p| format!("<{p}>")).collect();
        return Err(Refusal::AmbiguousImages(format!(
            "taskdef.json names {} images ({}) but the build output has one imageDetail.json; the gate cannot \
             tell which image is which, so it cannot judge every image the deployment runs",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(BuildOutput { image_detail, taskdef, repository_policy: take("appsec.yaml").ok() })
}

/// Step 3: the built image's repository and digest (a tag is resolved in ECR).
async fn resolve_image(
    deps: &Deps,
    params: &GateParameters,
    output: &BuildOutput,
    basis: &mut Basis,
) -> Result<BuiltImage, Refusal> {
    let uri = output.image_detail.image_uri.trim().to_owned();
    let ecr_image = EcrImage::parse(&uri);
    let repository = params
        .repository
        .clone()
        .or_else(|| ecr_image.as_ref().map(|i| i.repository.clone()))
        .ok_or_else(|| Refusal::NotEcr(uri.clone()))?;
    basis.repository = Some(repository.clone());
    let digest = match ecr_image.as_ref().and_then(|i| i.digest.clone()) {
        Some(d) => d,
        None => {
            let registry_id = ecr_image.as_ref().map(|i| i.registry_id.as_str());
            let tag = ecr_image.as_ref().and_then(|i| i.tag.clone()).unwrap_or_else(|| "latest".into());
            resolve_digest(&deps.ecr, registry_id, &repository, &tag)
                .await?
                .ok_or(Refusal::NoSuchImage { repository: repository.clone(), tag })?
        }
    };
    basis.digest = Some(digest.clone());
    Ok(BuiltImage { uri, repository, digest })
}

/// Step 4: the named central policy (or the repository's, else the
/// default; `central` when already read), its environment overlay, and the
/// repository's own file.
async fn resolve_policy(
    deps: &Deps,
    params: &GateParameters,
    image: &BuiltImage,
    output: &BuildOutput,
    central: Option<PolicyLookup>,
    now: DateTime<Utc>,
    basis: &mut Basis,
) -> Result<Policy, Refusal> {
    let lookup = match central {
        Some(lookup) => lookup,
        None => load_central_policy(&deps.bucket, params.policy.as_deref(), &image.repository).await?,
    };
    let (key, lkg) = lookup.found()?;
    basis.policy_key = Some(key.clone());
    basis.policy_sha256 = Some(lkg.sha256.clone());
    basis.owner = lkg.document.policy.owner.clone();
    let central = lkg.document.environment(params.environment.as_deref())?;
    if let Some(env) = &params.environment
        && lkg.document.environments.is_empty()
    {
        basis.notes.push(format!("{key} defines no environments; the base policy applied for {env}"));
    }
    let policy = match &output.repository_policy {
        None => central.clone(),
        Some(text) => {
            let repo_doc = parse_policy(text, Some(now)).map_err(|invalid| {
                let errors: Vec<String> = invalid.errors.iter().map(|d| format!("appsec.yaml:{d}")).collect();
                Refusal::RepositoryPolicy(errors.join("; "))
            })?;
            basis.repository_policy = true;
            let (repo_policy, _) = repo_doc.document.for_environment(params.environment.as_deref());
            layer(central, repo_policy)
        }
    };
    Ok(policy)
}

/// Step 5: the task-definition rules, and each distinct ECR image's scan,
/// judged at decision time from its current findings in ECR.
async fn judge_images(
    deps: &Deps,
    job: &Job,
    output: &BuildOutput,
    image: &BuiltImage,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Judgement, Refusal> {
    let taskdef = TaskDefinition::from_json(&substitute_image_placeholders(&output.taskdef, &image.uri))
        .map_err(|e| Refusal::TaskDefinition(e.to_string()))?;
    let mut violations = check_task_definition(policy, &taskdef);

    let mut scans = Vec::new();
    let mut seen = BTreeSet::new();
    for container in &taskdef.container_definitions {
        let reference = container.image.trim();
        let target = match EcrImage::parse(reference) {
            None => None,
            Some(i) if reference == image.uri => {
                Some((i.repository, Some(image.digest.clone()), i.registry_id))
            }
            Some(i) => Some((i.repository, i.digest, i.registry_id)),
        };
        let verdict = match &target {
            None => unscannable(policy, format!("image {reference} is not in ECR, so it has no scan")),
            Some((_, None, _)) => unscannable(
                policy,
                format!("image {reference} is not pinned by digest, so its scan cannot be found"),
            ),
            Some((repo, Some(d), registry)) => {
                if !seen.insert((repo.clone(), d.clone())) {
                    continue;
                }
                // ECR scans each platform's image, never an index: an index
                // is judged by the child ECS pulls for the task's platform.
                let manifest = get_manifest(&deps.ecr, &deps.http, Some(registry), repo, d)
                    .await?
                    .ok_or_else(|| Refusal::NoSuchDigest { repository: repo.clone(), digest: d.clone() })?;
                let child = match image_platform(&taskdef, &container.name, reference, d, &manifest) {
                    Ok(child) => child.to_owned(),
                    Err(violation) => {
                        violations.push(violation);
                        continue;
                    }
                };
                // Judged now, from the image's current findings: a stored
                // verdict could honour an exception that has since expired,
                // or miss a finding reported after the scan.
                let verdict = match describe_scan(&deps.ecr, Some(registry), repo, &child).await? {
                    ScanLookup::Found(mut report) => {
                        if policy.scan.fail_on.reads_epss() {
                            add_epss(deps.inspector.get(), repo, &child, &mut report).await?;
                        }
                        evaluate_scan(policy, repo, &report, now)
                    }
                    ScanLookup::NotFound => not_started(),
                };
                let mut scan = scan_of(container.name.clone(), reference, repo, &child, "ecr", verdict);
                scan.index_digest = manifest.is_index().then(|| d.clone());
                scans.push(scan);
                continue;
            }
        };
        scans.push(scan_of(container.name.clone(), reference, "", reference, "ecr", verdict));
    }
    Ok(combine(policy, violations, scans, job.continuation, now))
}

fn scan_of(
    container: String,
    image: &str,
    repository: &str,
    digest: &str,
    source: &str,
    verdict: ScanVerdict,
) -> ImageScan {
    ImageScan {
        container,
        image: image.to_owned(),
        repository: repository.to_owned(),
        digest: digest.to_owned(),
        source: source.to_owned(),
        index_digest: None,
        verdict,
    }
}

/// No scan to judge: FAIL when the policy requires one, else PASS, warning.
fn unscannable(policy: &Policy, message: String) -> ScanVerdict {
    let mut verdict = not_started();
    if policy.scan.required {
        verdict.verdict = Verdict::Fail;
        verdict.violations.push(ScanViolation { rule: "scan_status".into(), severity: None, message });
    } else {
        verdict.verdict = Verdict::Pass;
        verdict.warnings.push(message);
    }
    verdict
}

/// A scan that ECR has not started (or not yet recorded): pending.
fn not_started() -> ScanVerdict {
    ScanVerdict::empty(Verdict::Pending, "")
}
