//! scan-gate: judge every completed ECR scan (basic: `ECR Image Scan`;
//! enhanced: `Inspector2 Scan`) against the repository's last-known-good
//! policy, emit `Shipgate Scan Verdict` for a new verdict and store it at
//! `verdicts/<repository>/<digest>.json`, marked announced.
//!
//! The findings always come from `DescribeImageScanFindings` (every page),
//! never from the event's counts, which are only a summary. The stored verdict
//! is replaced only by a later scan (or the same scan judged under a changed
//! policy), with a compare-and-swap, so duplicates and late deliveries cannot
//! lose or roll back an update. AWS errors that outlast the SDK's retries fail
//! the invocation, so Lambda retries it and, in the end, the dead-letter queue
//! holds it: a verdict is never silently missing.
//!
//! It also keeps running images' exposure current ([`exposure`]): an
//! `Inspector2 Finding` on an ECR image re-judges the services that run it,
//! and a `Shipgate Policy Accepted` event or the daily schedule re-judges
//! every running image (exceptions expire by the day).

pub mod event;
pub mod exposure;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipgate_aws::clients::OnFirstUse;
use shipgate_aws::ecr::ScanLookup;
use shipgate_aws::events::Bus;
use shipgate_aws::inspector::add_epss;
use shipgate_aws::policies::{PolicyLookup, load_policy};
use shipgate_aws::s3::{Bucket, Object, Updated};
use shipgate_aws::{AwsError, ErrorType, InvalidEvent};
use shipgate_core::digest::ImageDigest;
use shipgate_core::events::SCAN_VERDICT;
use shipgate_core::limits::RECORD_BYTES;
use shipgate_core::scan::Verdict;
use shipgate_core::verdict::{ScanVerdictEvent, VerdictRecord, judge, verdict_key};
use tracing::{info, instrument, warn};

pub use crate::event::ScanGateEvent;
use crate::exposure::{Rejudged, Scope, rejudge_running};

/// The function needs only what every Shipgate function has: the config
/// bucket and the event bus.
pub use shipgate_aws::env::FleetConfig as Config;

#[derive(Debug, Clone)]
pub struct Deps {
    pub bucket: Bucket,
    pub bus: Bus,
    pub ecr: shipgate_aws::ecr::Ecr,
    /// EPSS scores, read only for a policy that judges them.
    pub inspector: OnFirstUse<aws_sdk_inspector2::Client>,
}

impl Deps {
    pub fn new(sdk: &shipgate_aws::SdkConfig, config: &Config) -> Self {
        Self {
            bucket: Bucket::connect(sdk, &config.config_bucket),
            bus: Bus::connect(sdk, &config.event_bus),
            ecr: shipgate_aws::ecr::Ecr::connect(sdk),
            inspector: OnFirstUse::new(sdk, aws_sdk_inspector2::Client::new),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanGateError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    /// ECR has no scan for an image whose scan event arrived: its API is
    /// behind its events. Worth a retry.
    #[error("ECR has no scan yet for {repository}@{digest}")]
    ScanNotFound { repository: String, digest: ImageDigest },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ErrorType for ScanGateError {
    fn error_type(&self) -> &'static str {
        match self {
            ScanGateError::InvalidEvent(e) => e.error_type(),
            ScanGateError::ScanNotFound { .. } => "ScanNotFound",
            ScanGateError::Aws(e) => e.error_type(),
        }
    }
}

/// What one invocation did: judged an image's scan, or ignored an event that
/// is not one (with why, in one log line and the answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Handled {
    Judged(Outcome),
    Rejudged(Rejudged),
    Ignored { ignored: String },
}

/// A judged scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub repository: String,
    pub digest: ImageDigest,
    pub verdict: Verdict,
    /// A new verdict was stored.
    pub stored: bool,
    /// The `Shipgate Scan Verdict` event went out in this invocation.
    pub announced: bool,
}

#[instrument(skip_all, fields(event_id, repository, digest))]
pub async fn handle(
    deps: &Deps,
    payload: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Handled, ScanGateError> {
    let event = match ScanGateEvent::decode(payload)? {
        ScanGateEvent::Scanned(event) => event,
        ScanGateEvent::Finding(event) => {
            let Some((repository, digest)) = event.detail.image() else {
                return Ok(ignore("the finding is not on an ECR image".into()));
            };
            let digest = ImageDigest::parse(digest).map_err(|e| {
                InvalidEvent(format!("detail.resources[].details.awsEcrContainerImage.imageHash {e}"))
            })?;
            let trigger =
                format!("finding {} on {repository}@{digest}", event.detail.title.as_deref().unwrap_or("?"));
            return Ok(Handled::Rejudged(rejudge_running(deps, Scope::Digest(&digest), trigger, now).await?));
        }
        ScanGateEvent::PolicyAccepted(accepted) => {
            let trigger = format!("policy {} accepted", accepted.key);
            return Ok(Handled::Rejudged(rejudge_running(deps, Scope::All, trigger, now).await?));
        }
        ScanGateEvent::Daily => {
            return Ok(Handled::Rejudged(rejudge_running(deps, Scope::All, "daily".into(), now).await?));
        }
    };
    let detail = &event.detail;
    let Some((repository, digest)) = detail.image() else {
        // Inspector scans EC2 instances, Lambda functions and machine images
        // too, under the same detail-type; the rule narrows to ECR, but a
        // wider rule must not fill the dead-letter queue.
        let resources = event.resources.clone().unwrap_or_default().join(", ");
        return Ok(ignore(format!("the scan of {resources} is not of an ECR image")));
    };
    let span = tracing::Span::current();
    span.record("event_id", event.id.as_deref().unwrap_or_default());
    span.record("repository", repository);
    span.record("digest", digest);
    let repository = repository.to_owned();
    let digest = ImageDigest::parse(digest).map_err(|e| InvalidEvent(format!("detail.image-digest {e}")))?;
    let event_time = event.time.unwrap_or(now);

    // The policy, the findings and the stored verdict do not depend on each
    // other: one wait for all three.
    let key = verdict_key(&repository, &digest);
    let (lookup, scan, stored) = tokio::join!(
        load_policy(&deps.bucket, &repository),
        deps.ecr.describe_scan(event.account.as_deref(), &repository, &digest),
        deps.bucket.get(&key, RECORD_BYTES)
    );
    let (lookup, mut object) = (lookup?, stored?);
    let mut report = match scan? {
        ScanLookup::Found(report) => report,
        ScanLookup::NotFound => {
            return Err(ScanGateError::ScanNotFound { repository, digest });
        }
    };
    if let PolicyLookup::Found { lkg, .. } = &lookup
        && lkg.document.reads_epss()
    {
        add_epss(deps.inspector.get(), &repository, &digest, &mut report).await?;
    }
    let (policy, owner) = match &lookup {
        PolicyLookup::Found { key, lkg } => {
            (Some((key.as_str(), lkg.as_ref())), lkg.document.policy.owner.clone())
        }
        PolicyLookup::None(why) => {
            warn!(reason = %why, "no policy applies; failing closed");
            (None, None)
        }
    };
    let record = judge(&repository, &digest, detail.image_tags.clone(), &report, event_time, policy, now);

    // A new verdict is announced first and then stored already marked
    // announced, in one conditional write: one wait fewer than storing,
    // announcing and marking. Should the write fail, or lose its race to a
    // newer scan's verdict, the event is out for a verdict that is not the
    // stored one; the retry announces again, and the notifier sends each
    // verdict's message once (its marker is keyed on the repository, digest,
    // scan time and verdict), as it must for EventBridge's duplicates anyway.
    let resources = event.resources.clone().unwrap_or_default();
    let stored_record: Option<VerdictRecord> =
        object.as_ref().and_then(|o| serde_json::from_slice(&o.body).ok());
    let is_new = stored_record.as_ref().is_none_or(|stored| record.supersedes(stored));
    let (current, stored) = if is_new {
        deps.bus
            .put(SCAN_VERDICT, &resources, &ScanVerdictEvent::from_record(&record, owner.clone()))
            .await?;
        let marked = VerdictRecord { announced: true, ..record };
        let updated = deps
            .bucket
            .update_json_at(&key, &mut object, |stored: Option<&VerdictRecord>| match stored {
                Some(stored) if !marked.supersedes(stored) => None,
                _ => Some(marked.clone()),
            })
            .await?;
        match updated {
            Updated::Written(record) => (record, true),
            Updated::Unchanged(existing) => (existing.unwrap_or(marked), false),
        }
    } else {
        (stored_record.unwrap_or(record), false)
    };
    // A verdict stored but not announced (by a version that stored first
    // and announced after, and failed in between) is announced now.
    let late = !current.announced && announce(deps, &key, object, &current, &resources, owner).await?;
    let announced = is_new || late;
    info!(verdict = current.verdict.verdict.as_str(), stored, announced, "scan judged");
    Ok(Handled::Judged(Outcome { repository, digest, verdict: current.verdict.verdict, stored, announced }))
}

fn ignore(reason: String) -> Handled {
    info!(%reason, "ignored");
    Handled::Ignored { ignored: reason }
}

/// Emits the verdict event, then marks the record announced (only if it is
/// still the same verdict: a newer one will be announced by its own writer),
/// starting from `stored`, the record as this invocation last saw it: no
/// read before the write, unless someone wrote in between.
async fn announce(
    deps: &Deps,
    key: &str,
    stored: Option<Object>,
    record: &VerdictRecord,
    resources: &[String],
    owner: Option<String>,
) -> Result<bool, ScanGateError> {
    deps.bus.put(SCAN_VERDICT, resources, &ScanVerdictEvent::from_record(record, owner)).await?;
    deps.bucket
        .update_json_from(key, stored, |stored: Option<&VerdictRecord>| match stored {
            Some(s)
                if s.scanned_at == record.scanned_at
                    && s.policy_sha256 == record.policy_sha256
                    && !s.announced =>
            {
                Some(VerdictRecord { announced: true, ..s.clone() })
            }
            _ => None,
        })
        .await?;
    Ok(true)
}
