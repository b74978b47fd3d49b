//! notifier: one clear SNS message per outcome, to the people and chat rooms
//! that need it.
//!
//! Inputs: CodePipeline execution and action state changes, CodeDeploy
//! deployment state changes, every `Shipgate *` event, a daily schedule
//! that lists exceptions about to expire, per policy owner, and a
//! minute-by-minute schedule that sends the exposure digests whose window
//! closed (`Shipgate Exposure Changed` events are gathered per owner per
//! window, `SHIPGATE_EXPOSURE_WINDOW_MINUTES`, 15 by default, so a CVE that
//! flips hundreds of running images sends each owner one message). Rendering is in
//! `shipgate_core::notify`; this function picks which outcomes to send
//! (`SHIPGATE_NOTIFY`) and sends each exactly once, whatever the redeliveries,
//! with a conditional marker in S3.

pub mod event;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shipgate_aws::env::{ConfigError, optional, required};
use shipgate_aws::s3::{Bucket, Condition, PutOutcome, Updated};
use shipgate_aws::sns::{Message as SnsMessage, Topic};
use shipgate_aws::{AwsError, ErrorType, InvalidEvent, SdkConfig};
use shipgate_core::exposure::{
    Added, ExposureChanged, ExposureWindow, WINDOW_PREFIX, window_key, window_start,
};
use shipgate_core::limits::RECORD_BYTES;
use shipgate_core::lkg::{LastKnownGood, sha256_hex};
use shipgate_core::notify::{
    Category, Context, Expiring, Message, Outcome, expiring_exceptions, render, render_chat, render_email,
};
use shipgate_core::triggers::PipelineStateChange;
use tracing::{error, info, instrument, warn};

pub use crate::event::{Notice, NotifierEvent, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text for email (and anything else that reads text).
    Email,
    /// Amazon Q Developer in chat applications' custom-notification JSON.
    Chat,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub config_bucket: String,
    pub topic_arn: String,
    pub categories: BTreeSet<Category>,
    pub format: Format,
    /// How long exposure flips are gathered before their owner hears.
    pub exposure_window: chrono::Duration,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let categories = categories(optional("SHIPGATE_NOTIFY").as_deref())?;
        let format = match optional("SHIPGATE_MESSAGE_FORMAT").as_deref() {
            None | Some("email") => Format::Email,
            Some("chat") => Format::Chat,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "SHIPGATE_MESSAGE_FORMAT",
                    reason: format!("expected email or chat, got {other:?}"),
                });
            }
        };
        Ok(Self {
            config_bucket: required("SHIPGATE_CONFIG_BUCKET")?,
            topic_arn: required("SHIPGATE_TOPIC_ARN")?,
            categories,
            format,
            exposure_window: exposure_window(optional("SHIPGATE_EXPOSURE_WINDOW_MINUTES").as_deref())?,
        })
    }
}

/// `SHIPGATE_EXPOSURE_WINDOW_MINUTES`: whole minutes, 1 to 1440 (15 unset).
fn exposure_window(value: Option<&str>) -> Result<chrono::Duration, ConfigError> {
    let Some(value) = value else { return Ok(chrono::Duration::minutes(15)) };
    match value.trim().parse::<i64>() {
        Ok(minutes @ 1..=1440) => Ok(chrono::Duration::minutes(minutes)),
        _ => Err(ConfigError::Invalid {
            name: "SHIPGATE_EXPOSURE_WINDOW_MINUTES",
            reason: format!("expected whole minutes from 1 to 1440, got {value:?}"),
        }),
    }
}

/// The categories `SHIPGATE_NOTIFY` names (the defaults when unset).
fn categories(list: Option<&str>) -> Result<BTreeSet<Category>, ConfigError> {
    let Some(list) = list else { return Ok(Category::DEFAULTS.into_iter().collect()) };
    let categories = list
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(|w| {
            Category::parse(w).ok_or_else(|| ConfigError::Invalid {
                name: "SHIPGATE_NOTIFY",
                reason: format!(
                    "unknown category {:?}; use failure, block, rollback, policy, expiring, exposure, recovery, success, action",
                    w.trim()
                ),
            })
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    // "," would otherwise mean: tell nobody anything, silently.
    if categories.is_empty() {
        return Err(ConfigError::Invalid {
            name: "SHIPGATE_NOTIFY",
            reason: format!("{list:?} names no category"),
        });
    }
    Ok(categories)
}

#[derive(Debug, Clone)]
pub struct Deps {
    pub bucket: Bucket,
    pub topic: Topic,
    /// To learn whether a deployment was rolled back, or is a rollback.
    pub codedeploy: shipgate_aws::codedeploy::CodeDeploy,
    pub categories: BTreeSet<Category>,
    pub format: Format,
    pub exposure_window: chrono::Duration,
    /// For links in messages no event stands behind (the exposure digests).
    pub region: String,
}

impl Deps {
    pub fn new(sdk: &SdkConfig, config: &Config) -> Self {
        Self {
            bucket: Bucket::connect(sdk, &config.config_bucket),
            topic: Topic::connect(sdk, &config.topic_arn),
            codedeploy: shipgate_aws::codedeploy::CodeDeploy::connect(sdk),
            categories: config.categories.clone(),
            format: config.format,
            exposure_window: config.exposure_window,
            region: sdk.region().map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// Another invocation claimed the message less than [`STALE_CLAIM`] ago
    /// and has not sent it yet: this invocation fails, so Lambda retries it
    /// later, when the message is either sent or the claim is stale.
    #[error("{subject}: another invocation is sending it; retry later")]
    InFlight { subject: String },
}

impl ErrorType for NotifierError {
    fn error_type(&self) -> &'static str {
        match self {
            NotifierError::InvalidEvent(e) => e.error_type(),
            NotifierError::Aws(e) => e.error_type(),
            NotifierError::InFlight { .. } => "MessageInFlight",
        }
    }
}

/// What one invocation did, message by message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Subjects of the messages published now.
    pub sent: Vec<String>,
    /// Why the rest were not.
    pub skipped: Vec<String>,
    /// Exposure flips gathered into their owner's window (its key).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queued: Vec<String>,
}

#[instrument(skip_all, fields(detail_type))]
pub async fn handle(deps: &Deps, payload: Value, now: DateTime<Utc>) -> Result<Report, NotifierError> {
    let (origin, notice) = match NotifierEvent::decode(payload)? {
        NotifierEvent::FlushExposure(flush) => return flush_exposure(deps, flush.scheduled_time).await,
        NotifierEvent::Event { origin, notice } => (origin, notice),
    };
    tracing::Span::current().record("detail_type", origin.kind.detail_type.as_str());
    let mut report = Report::default();
    if let Notice::ExposureChanged(change) = &*notice {
        report.queued.push(queue_exposure(deps, change, now).await?);
        info!(flip = %change.id(), window = ?report.queued, "exposure flip gathered");
        return Ok(report);
    }
    let outcomes = Box::pin(outcomes(deps, *notice, now)).await?;
    if outcomes.is_empty() {
        report
            .skipped
            .push(format!("{} from {}: nothing to tell", origin.kind.detail_type, origin.kind.source));
    }
    send_outcomes(deps, &origin.context, &origin.kind.detail_type, outcomes, now, &mut report).await?;
    info!(sent = report.sent.len(), skipped = ?report.skipped, "notifications handled");
    Ok(report)
}

/// Renders each outcome and sends those of a configured category, once.
async fn send_outcomes(
    deps: &Deps,
    cx: &Context,
    what: &str,
    outcomes: Vec<Outcome>,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), NotifierError> {
    for outcome in outcomes {
        let Some(message) = render(&outcome, cx) else {
            report.skipped.push(format!("{what}: not a final outcome"));
            continue;
        };
        if !deps.categories.contains(&message.category) {
            report.skipped.push(format!("{}: category {:?} is not sent", message.subject, message.category));
            continue;
        }
        if Box::pin(send_once(deps, &message, now)).await? {
            report.sent.push(message.subject.clone());
        } else {
            report.skipped.push(format!("{}: already sent", message.subject));
        }
    }
    Ok(())
}

/// How far back a window is still looked at: one unsent for a day is in the
/// dead-letter queue's hands, and older windows are not read every minute.
const WINDOW_HORIZON: chrono::Duration = chrono::Duration::days(1);

/// Puts a flip in its owner's window: the one its time falls in, or, when
/// that window has closed (its digest is going out) or is beyond the
/// horizon, the next open one. Returns the window's key.
async fn queue_exposure(
    deps: &Deps,
    change: &ExposureChanged,
    now: DateTime<Utc>,
) -> Result<String, NotifierError> {
    let length = deps.exposure_window;
    let owner = change.owner();
    let mut start = window_start(change.since.max(now - WINDOW_HORIZON), length);
    // Each closed window moves the flip one window on; after the current
    // one, windows are open (they close only once their end has passed).
    for _ in 0..8 {
        let key = window_key(start, owner);
        let mut closed = false;
        deps.bucket
            .update_json(&key, |stored: Option<&ExposureWindow>| {
                match ExposureWindow::add(stored, ExposureWindow::new(owner, start, length), change) {
                    Added::Added(window) => Some(window),
                    Added::AlreadyThere => None,
                    Added::Closed => {
                        closed = true;
                        None
                    }
                }
            })
            .await?;
        if !closed {
            return Ok(key);
        }
        start = (start + length).max(window_start(now, length));
    }
    Err(InvalidEvent(format!("flip {}: no open window found", change.id())).into())
}

/// Sends every window whose end has passed at `at` (the schedule's time):
/// closes it (no more additions), sends its digest once, marks it sent.
async fn flush_exposure(deps: &Deps, at: DateTime<Utc>) -> Result<Report, NotifierError> {
    let mut report = Report::default();
    let horizon = at - WINDOW_HORIZON - deps.exposure_window;
    let cx = Context { region: deps.region.clone(), account: String::new() };
    for key in deps.bucket.list_keys(WINDOW_PREFIX).await? {
        // `state/notifier/exposure/<start>/<owner>.json`: old windows are not read.
        let start = key
            .strip_prefix(WINDOW_PREFIX)
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(start, _)| chrono::NaiveDateTime::parse_from_str(start, "%Y%m%dT%H%M%SZ").ok())
            .map(|t| t.and_utc());
        if start.is_none_or(|s| s < horizon || s + deps.exposure_window > at) {
            continue;
        }
        let closed = deps
            .bucket
            .update_json(&key, |stored: Option<&ExposureWindow>| {
                let window = stored?;
                (window.is_due(at) && !window.closed)
                    .then(|| ExposureWindow { closed: true, ..window.clone() })
            })
            .await?;
        let window = match closed {
            Updated::Written(window) => window,
            Updated::Unchanged(Some(window)) if window.is_due(at) => window,
            Updated::Unchanged(_) => continue,
        };
        let what = format!("exposure window {key}");
        send_outcomes(deps, &cx, &what, vec![Outcome::Exposure(window)], at, &mut report).await?;
        deps.bucket
            .update_json(&key, |stored: Option<&ExposureWindow>| {
                let window = stored?;
                (!window.sent).then(|| ExposureWindow { sent: true, ..window.clone() })
            })
            .await?;
    }
    info!(sent = report.sent.len(), skipped = ?report.skipped, "exposure digests flushed");
    Ok(report)
}

/// The outcomes a notice stands for (none, one, or one per owner).
async fn outcomes(deps: &Deps, notice: Notice, now: DateTime<Utc>) -> Result<Vec<Outcome>, NotifierError> {
    Ok(match notice {
        Notice::PipelineExecution(change) => {
            let recovered = track_pipeline(deps, &change).await?;
            vec![Outcome::Pipeline {
                pipeline: change.pipeline,
                execution_id: change.execution_id,
                state: change.state,
                recovered,
            }]
        }
        Notice::ActionExecution(change) => vec![Outcome::Action {
            pipeline: change.pipeline,
            execution_id: change.execution_id,
            stage: change.stage.unwrap_or_default(),
            action: change.action.unwrap_or_default(),
            state: change.state,
            summary: change.execution_result.and_then(|r| r.summary),
        }],
        Notice::Deployment(d) => {
            // The event does not say whether a rollback is involved; the
            // deployment's rollbackInfo does.
            let deployment = match deps.codedeploy.get_deployment(&d.deployment_id).await {
                Ok(found) => found,
                Err(e) => {
                    warn!(error = %e, "could not read the deployment's rollback; telling without it");
                    None
                }
            };
            vec![Outcome::Deployment {
                deployment_id: d.deployment_id,
                application: d.application,
                group: d.deployment_group,
                state: d.state,
                rollback_id: deployment.as_ref().and_then(|d| d.rolled_back_by.clone()),
                rolls_back: deployment.and_then(|d| d.rolls_back),
            }]
        }
        Notice::Shipgate(outcome) => vec![outcome],
        Notice::Daily => expiring_digest(deps, now).await?,
        // Gathered into a window by the handler, told when it closes.
        Notice::ExposureChanged(_) | Notice::Other => Vec::new(),
    })
}

/// Remembers each pipeline's last final state, with compare-and-swap so
/// concurrent final states each see the one before them; true when this
/// success follows a failure.
async fn track_pipeline(deps: &Deps, change: &PipelineStateChange) -> Result<bool, NotifierError> {
    #[derive(Debug, Serialize, Deserialize)]
    struct Last {
        state: String,
        execution_id: String,
    }
    if !matches!(change.state.as_str(), "SUCCEEDED" | "FAILED") {
        return Ok(false);
    }
    let key = format!("state/notifier/pipelines/{}.json", change.pipeline);
    let mut recovered = false;
    deps.bucket
        .update_json::<Last, _>(&key, |last| {
            // A redelivery is judged as the first delivery was: not again.
            if last.is_some_and(|l| l.execution_id == change.execution_id && l.state == change.state) {
                recovered = false;
                return None;
            }
            recovered = change.state == "SUCCEEDED" && last.is_some_and(|l| l.state == "FAILED");
            Some(Last { state: change.state.clone(), execution_id: change.execution_id.clone() })
        })
        .await?;
    Ok(recovered)
}

/// The daily digest: every accepted policy's exceptions that expire within
/// its warning window, one outcome per owner.
async fn expiring_digest(deps: &Deps, now: DateTime<Utc>) -> Result<Vec<Outcome>, NotifierError> {
    let mut by_owner: BTreeMap<String, Vec<Expiring>> = BTreeMap::new();
    for key in deps.bucket.list_keys("policies/").await? {
        if !key.ends_with("appsec.lkg.json") {
            continue;
        }
        let Some(lkg) = deps.bucket.get_json::<LastKnownGood>(&key).await? else {
            warn!(%key, "unreadable last-known-good policy skipped");
            continue;
        };
        let owner = lkg.document.policy.owner.clone().unwrap_or_else(|| "unowned policies".into());
        let expiring = by_owner.entry(owner).or_default();
        for policy in std::iter::once(&lkg.document.policy).chain(lkg.document.environments.values()) {
            for e in expiring_exceptions(&key, policy, now) {
                if !expiring.contains(&e) {
                    expiring.push(e);
                }
            }
        }
    }
    Ok(by_owner
        .into_iter()
        .filter(|(_, exceptions)| !exceptions.is_empty())
        .map(|(owner, exceptions)| Outcome::ExpiringExceptions { owner, day: now.date_naive(), exceptions })
        .collect())
}

/// The marker that makes a message go out once: claimed, then sent, or
/// released when the publish failed.
#[derive(Debug, Serialize, Deserialize)]
struct Sent {
    key: String,
    sent: bool,
    claimed_at: DateTime<Utc>,
    /// The claimer could not publish and gave the message back.
    #[serde(default)]
    released: bool,
}

impl Sent {
    /// The marker's body for `message` at `now`: a claim (neither flag), sent,
    /// or released. (Serialising these four plain fields cannot fail.)
    fn body(message: &Message, now: DateTime<Utc>, sent: bool, released: bool) -> Vec<u8> {
        let marker = Sent { key: message.dedupe_key.clone(), sent, claimed_at: now, released };
        serde_json::to_vec(&marker).unwrap_or_default()
    }
}

/// A claim older than this is taken over: its sender died before sending.
/// Twice the notifier's `Timeout` (30 s, `infra/template.yaml`, held by
/// `tests/tests/infra.rs`): no invocation that claimed it can still be running.
pub const STALE_CLAIM: chrono::Duration = chrono::Duration::seconds(60);

/// What claiming a message found.
enum Claim {
    /// This invocation holds the claim (the marker's ETag): it sends.
    Ours(Option<String>),
    AlreadySent,
    /// Claimed by an invocation that may still send it.
    InFlight,
}

/// Claims `message`'s marker: a conditional create, or the conditional
/// takeover (`If-Match`) of a claim that was released or went stale, so of
/// concurrent claimers exactly one wins.
async fn claim(
    deps: &Deps,
    marker: &str,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<Claim, NotifierError> {
    let claim = Sent::body(message, now, false, false);
    if let PutOutcome::Written { etag } =
        deps.bucket.put(marker, claim.clone(), "application/json", Condition::IfAbsent).await?
    {
        return Ok(Claim::Ours(etag));
    }
    let Some(object) = deps.bucket.get(marker, RECORD_BYTES).await? else { return Ok(Claim::InFlight) };
    match serde_json::from_slice::<Sent>(&object.body) {
        Ok(existing) if existing.sent => return Ok(Claim::AlreadySent),
        Ok(existing) if !existing.released && now - existing.claimed_at < STALE_CLAIM => {
            return Ok(Claim::InFlight);
        }
        _ => warn!(key = %message.dedupe_key, "taking over a released or stale claim"),
    }
    let Some(etag) = object.etag else { return Ok(Claim::InFlight) };
    Ok(match deps.bucket.put(marker, claim, "application/json", Condition::IfMatch(etag)).await? {
        PutOutcome::Written { etag } => Claim::Ours(etag),
        PutOutcome::ConditionFailed => Claim::InFlight,
    })
}

/// Publishes `message` unless it went out before; true when this invocation
/// sent it. A publish that fails releases the claim, so Lambda's retry sends.
async fn send_once(deps: &Deps, message: &Message, now: DateTime<Utc>) -> Result<bool, NotifierError> {
    let marker = format!("state/notifier/sent/{}.json", sha256_hex(message.dedupe_key.as_bytes()));
    let etag = match claim(deps, &marker, message, now).await? {
        Claim::Ours(etag) => etag,
        Claim::AlreadySent => return Ok(false),
        Claim::InFlight => return Err(NotifierError::InFlight { subject: message.subject.clone() }),
    };
    let body = match deps.format {
        Format::Email => render_email(message),
        Format::Chat => render_chat(message),
    };
    let sns = SnsMessage { subject: message.subject.clone(), body, attributes: message.attributes.clone() };
    let mine = |etag: Option<String>| etag.map_or(Condition::Always, Condition::IfMatch);
    if let Err(e) = deps.topic.publish(&sns).await {
        let released = Sent::body(message, now, false, true);
        if let Err(release) = deps.bucket.put(&marker, released, "application/json", mine(etag)).await {
            warn!(error = %release, "could not release the claim; it goes stale in a minute");
        }
        return Err(e.into());
    }
    // The message is out: failing now would have Lambda's retry send it
    // again once the claim goes stale. The marker is retried here; if it
    // still cannot be written, the invocation succeeds anyway, and only a
    // redelivery of this same event after STALE_CLAIM could send a second
    // copy (ARCHITECTURE.md, "Exactly once").
    let sent = Sent::body(message, now, true, false);
    let mut attempt = 0;
    while let Err(e) = deps.bucket.put(&marker, sent.clone(), "application/json", mine(etag.clone())).await {
        attempt += 1;
        if attempt >= MARKER_ATTEMPTS {
            error!(error = %e, key = %message.dedupe_key, "sent, but the sent marker could not be written");
            break;
        }
        warn!(error = %e, attempt, "sent; retrying the sent marker");
        tokio::time::sleep(MARKER_BACKOFF * attempt).await;
    }
    Ok(true)
}

/// Writes of the sent marker after a message went out (each already
/// retried by the SDK), and the pause before the next.
const MARKER_ATTEMPTS: u32 = 3;
const MARKER_BACKOFF: std::time::Duration = std::time::Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notify_list_naming_no_category_is_a_start_up_error() {
        let err = categories(Some(",")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable SHIPGATE_NOTIFY is invalid: \",\" names no category"
        );
        assert_eq!(categories(None).unwrap().len(), Category::DEFAULTS.len());
        assert_eq!(categories(Some("block, ")).unwrap(), [Category::Block].into());
    }
}
