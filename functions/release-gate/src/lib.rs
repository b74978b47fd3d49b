//! release-gate: the CodePipeline Lambda invoke action that lets a release
//! through only when policy says so.
//!
//! Each invocation reports exactly one result for its job, before the Lambda
//! deadline: the decision runs inside the deadline guard, and whatever comes
//! out (a decision, an error, a panic, the deadline) is reported. Errors fail
//! closed. A scan still running makes the job continue (CodePipeline invokes
//! again with the continuation token) until the policy's `scan.wait`.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipgate_aws::clients::OnFirstUse;
use shipgate_aws::codepipeline::{
    JobResult, JobStatus, MAX_CONTINUATION_TOKEN, MAX_FAILURE_MESSAGE, Reported,
};
use shipgate_aws::env::{ConfigError, FleetConfig, positive_millis};
use shipgate_aws::events::Bus;
use shipgate_aws::s3::{Bucket, Condition, PutOutcome};
use shipgate_aws::{AwsError, Deadline, ErrorType, InvalidEvent, SdkConfig};
use shipgate_core::digest::Digest;
use shipgate_core::events::GATE_DECISION;
use shipgate_core::gate::{
    Continuation, Decision, DecisionRecord, GateDecisionEvent, JobClaim, Judgement, ReportedResult,
    decision_id, failure_message, job_claim_key,
};
use shipgate_core::hooks::{Provenance, provenance_key};
use tracing::{info, instrument, warn};

mod judge;

use judge::judge_job;

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
    pub codepipeline: shipgate_aws::codepipeline::CodePipeline,
    pub ecr: shipgate_aws::ecr::Ecr,
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
            codepipeline: shipgate_aws::codepipeline::CodePipeline::connect(sdk),
            ecr: shipgate_aws::ecr::Ecr::connect(sdk),
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
    pub result: JobStatus,
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
    codepipeline: &shipgate_aws::codepipeline::CodePipeline,
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
    let reported = codepipeline
        .report_job(job_id, &result, deadline.report_budget())
        .await
        .map_err(|source| GateError::Report { job_id: job_id.to_owned(), source })?;
    let summary = match &result {
        JobResult::Succeeded { summary, .. } | JobResult::Continue { summary, .. } => summary.clone(),
        JobResult::Failed { message } => message.clone(),
    };
    info!(
        result = result.status().as_str(),
        already_reported = reported == Reported::AlreadyDone,
        "job reported"
    );
    Ok(Outcome {
        job_id: job_id.to_owned(),
        result: result.status(),
        reported_now: reported == Reported::Now,
        summary,
    })
}

/// Where the job runs, for the decision's key and record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PipelineContext {
    pipeline: String,
    /// Whether CodePipeline named the pipeline (else `unknown-pipeline`).
    known: bool,
    execution_id: String,
    stage: Option<String>,
    action: Option<String>,
}

/// The job's pipeline context; when `GetJobDetails` fails or gives none, the
/// decision is recorded under `unknown-pipeline`, and the log says why.
async fn pipeline_context(deps: &Deps, job_id: &str) -> PipelineContext {
    let context = match deps.codepipeline.job_context(job_id).await {
        Ok(Some(context)) => Some(context),
        Ok(None) => {
            warn!("GetJobDetails gave no pipeline context; recording the decision under unknown-pipeline");
            None
        }
        Err(error) => {
            warn!(%error, "GetJobDetails failed; recording the decision under unknown-pipeline");
            None
        }
    }
    .unwrap_or_default();
    PipelineContext {
        known: context.pipeline.is_some(),
        pipeline: context.pipeline.unwrap_or_else(|| "unknown-pipeline".into()),
        execution_id: context.execution_id.unwrap_or_else(|| job_id.to_owned()),
        stage: context.stage,
        action: context.action,
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
    let context = pipeline_context(deps, job_id).await;
    let pipeline = context.known.then_some(context.pipeline.as_str());
    let (basis, judged) = Box::pin(judge_job(deps, payload, pipeline, now)).await;
    let (judgement, continuation) = match judged {
        Ok(judged) => judged,
        Err(refusal) => (Judgement::refused(refusal.to_string()), None),
    };
    if judgement.decision == Decision::Wait {
        let token = continuation.map_or_else(|| Continuation::start(now), Continuation::next).to_token();
        return JobResult::Continue { token, summary: judgement.reasons.join("; ") };
    }
    let result = job_result(&judgement, &basis, &decision_id(job_id));
    let mut record = decision_record(job_id, &context, &judgement, &basis, &result, now);
    // The job's claim, keyed by the job alone, is the commit point: the
    // record's own key names the pipeline, which GetJobDetails may have
    // failed to say this time and say the next. A claim whose record never
    // came (its invocation stopped in between) is where this one goes.
    let key = match claim(deps, &record).await {
        Ok(key) => key,
        Err(e) => return unrecorded(&judgement, result, &e),
    };
    if let Some((pipeline, execution_id)) = where_recorded(&key).filter(|_| key != record.key()) {
        (record.pipeline, record.execution_id) = (pipeline, execution_id);
    }
    let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
    match deps.bucket.put(&key, body, "application/json", Condition::IfAbsent).await {
        Ok(PutOutcome::Written { .. }) => {
            info!(decision = ?judgement.decision, pipeline = %record.pipeline, decision_id = %record.decision_id, "decided");
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
        Err(e) => unrecorded(&judgement, result, &e),
    }
}

/// Claims the job for `record` (`decisions/jobs/<decision-id>.json`, written
/// only if absent) and returns where the job's decision is recorded: this
/// record's key, or the one an earlier invocation claimed.
async fn claim(deps: &Deps, record: &DecisionRecord) -> Result<String, AwsError> {
    let claim_key = job_claim_key(&record.decision_id);
    let body = serde_json::to_vec(&JobClaim { record: record.key() }).unwrap_or_default();
    match deps.bucket.put(&claim_key, body, "application/json", Condition::IfAbsent).await? {
        PutOutcome::Written { .. } => Ok(record.key()),
        PutOutcome::ConditionFailed => Ok(deps
            .bucket
            .get_json::<JobClaim>(&claim_key)
            .await?
            .map_or_else(|| record.key(), |claimed| claimed.record)),
    }
}

/// The pipeline and execution a decision key names
/// (`decisions/<pipeline>/<execution-id>/<decision-id>.json`).
fn where_recorded(key: &str) -> Option<(String, String)> {
    let mut parts = key.strip_prefix("decisions/")?.split('/');
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// A decision that could not be recorded: a PASS is not reported (failing
/// closed), anything else is.
fn unrecorded(judgement: &Judgement, result: JobResult, e: &AwsError) -> JobResult {
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
        // An image judged without a digest (no scan) has nothing to index.
        for digest in record.digests.keys().filter_map(|d| Digest::parse(d).ok()) {
            let provenance = Provenance {
                digest: digest.clone(),
                decision_id: record.decision_id.clone(),
                decision_key: key.clone(),
                pipeline: record.pipeline.clone(),
                execution_id: record.execution_id.clone(),
                decided_at: record.decided_at,
                environment: record.environment.clone(),
            };
            deps.bucket
                .put_json(&provenance_key(&provenance.digest, record.environment.as_deref()), &provenance)
                .await?;
        }
    }
    let resources = [format!("codepipeline:{}/{}", record.pipeline, record.execution_id)];
    deps.bus.put(GATE_DECISION, &resources, &GateDecisionEvent::from_record(record)).await?;
    deps.bucket.put_json(&key, &DecisionRecord { announced: true, ..record.clone() }).await
}
