//! policy-validator: on every `appsec.yaml` put in the config bucket, validate
//! it; keep the newest valid version as the last-known-good
//! (`appsec.lkg.json` next to it); tell everyone with `Shipgate Policy
//! Accepted` or `Shipgate Policy Rejected`.
//!
//! Idempotent: a redelivered event finds its outcome recorded and does
//! nothing; an older upload arriving late never replaces a newer
//! last-known-good.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shipgate_aws::events::Bus;
use shipgate_aws::s3::{Bucket, TOO_LARGE, Updated};
use shipgate_aws::{AwsError, ErrorType, InvalidEvent};
use shipgate_core::events::{POLICY_ACCEPTED, POLICY_REJECTED, PolicyAccepted, PolicyRejected};
use shipgate_core::limits::{YAML_BYTES, too_large};
use shipgate_core::lkg::{Judged, LastKnownGood, PolicySource, judge_too_large, judge_upload, lkg_key};
use shipgate_core::triggers::{S3Object, S3ObjectCreated};
use tracing::{info, instrument, warn};

/// The function needs only what every Shipgate function has: the config
/// bucket and the event bus.
pub use shipgate_aws::env::FleetConfig as Config;

/// What the handler talks to.
#[derive(Debug, Clone)]
pub struct Deps {
    pub bucket: Bucket,
    pub bus: Bus,
}

impl Deps {
    pub fn new(sdk: &shipgate_aws::SdkConfig, config: &Config) -> Self {
        Self {
            bucket: Bucket::connect(sdk, &config.config_bucket),
            bus: Bus::connect(sdk, &config.event_bus),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ValidatorError {
    #[error(transparent)]
    InvalidEvent(#[from] InvalidEvent),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("policy object {key} (version {version}) no longer exists")]
    ObjectGone { key: String, version: String },
}

impl ErrorType for ValidatorError {
    fn error_type(&self) -> &'static str {
        match self {
            ValidatorError::InvalidEvent(e) => e.error_type(),
            ValidatorError::Aws(e) => e.error_type(),
            ValidatorError::ObjectGone { .. } => "ObjectGone",
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// Valid, and now the last-known-good.
    Accepted {
        key: String,
        lkg_key: String,
    },
    /// Valid, but a newer upload is already the last-known-good.
    Superseded {
        key: String,
    },
    Rejected {
        key: String,
        errors: Vec<String>,
    },
    /// This upload was handled before (a redelivery).
    AlreadyHandled {
        key: String,
    },
    Ignored {
        reason: String,
    },
}

/// The record of an upload's outcome, so a redelivery does nothing twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Handled {
    outcome: Outcome,
    announced: bool,
}

/// The one event the function receives: S3 `Object Created`, through EventBridge.
pub type Event = EventBridgeEvent<S3ObjectCreated>;

#[instrument(skip_all, fields(event_id))]
pub async fn handle(deps: &Deps, event: Event, now: DateTime<Utc>) -> Result<Outcome, ValidatorError> {
    tracing::Span::current().record("event_id", event.id.as_deref().unwrap_or_default());
    let object = &event.detail.object;
    if event.detail.bucket.name != deps.bucket.name() {
        let reason =
            format!("bucket {} is not the config bucket {}", event.detail.bucket.name, deps.bucket.name());
        warn!(%reason, "ignored");
        return Ok(Outcome::Ignored { reason });
    }
    let Some(lkg_key) = lkg_key(&object.key) else {
        let reason = format!("{} does not end with appsec.yaml", object.key);
        info!(%reason, "ignored");
        return Ok(Outcome::Ignored { reason });
    };
    let source = PolicySource {
        bucket: event.detail.bucket.name.clone(),
        key: object.key.clone(),
        version_id: object.version_id.clone(),
        sequencer: object.sequencer.clone(),
        uploaded_at: event.time.unwrap_or(now),
    };
    let marker = marker_key(&source);
    if let Some(done) = deps.bucket.get_json::<Handled>(&marker).await?
        && done.announced
    {
        info!(key = %object.key, "upload already handled");
        return Ok(Outcome::AlreadyHandled { key: object.key.clone() });
    }

    let judged = match read_upload(deps, object, &source).await? {
        Upload::Read(body) => judge_upload(&body, source.clone(), now),
        Upload::TooLarge(why) => judge_too_large(why),
    };
    let outcome = match &judged {
        Judged::Valid(lkg) => {
            if store_if_newer(&deps.bucket, &lkg_key, lkg).await? {
                Outcome::Accepted { key: object.key.clone(), lkg_key: lkg_key.clone() }
            } else {
                Outcome::Superseded { key: object.key.clone() }
            }
        }
        Judged::Invalid { errors, .. } => Outcome::Rejected {
            key: object.key.clone(),
            errors: errors.iter().map(ToString::to_string).collect(),
        },
    };
    deps.bucket.put_json(&marker, &Handled { outcome: outcome.clone(), announced: false }).await?;
    announce(deps, &source, &judged, &outcome, &lkg_key).await?;
    deps.bucket.put_json(&marker, &Handled { outcome: outcome.clone(), announced: true }).await?;
    info!(key = %object.key, outcome = ?outcome_name(&outcome), "policy upload handled");
    Ok(outcome)
}

enum Upload {
    Read(Vec<u8>),
    /// Refused before its body was read: why.
    TooLarge(String),
}

/// The uploaded version's bytes, refused by size before they are read: by the
/// event's `object.size`, else by GetObject's `Content-Length` (or the stream).
async fn read_upload(
    deps: &Deps,
    object: &S3Object,
    source: &PolicySource,
) -> Result<Upload, ValidatorError> {
    if let Some(size) = object.size.filter(|size| *size > YAML_BYTES) {
        return Ok(Upload::TooLarge(format!("{}: {}", object.key, too_large(size, YAML_BYTES))));
    }
    let stored = match &source.version_id {
        Some(version) => deps.bucket.get_version(&object.key, version, YAML_BYTES).await,
        None => deps.bucket.get(&object.key, YAML_BYTES).await,
    };
    match stored {
        Ok(Some(stored)) => Ok(Upload::Read(stored.body)),
        Ok(None) => Err(ValidatorError::ObjectGone {
            key: object.key.clone(),
            version: source.version_id.clone().unwrap_or_else(|| "latest".into()),
        }),
        Err(e) if e.is(TOO_LARGE) => Ok(Upload::TooLarge(e.message)),
        Err(e) => Err(e.into()),
    }
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Accepted { .. } => "accepted",
        Outcome::Superseded { .. } => "superseded",
        Outcome::Rejected { .. } => "rejected",
        Outcome::AlreadyHandled { .. } => "already_handled",
        Outcome::Ignored { .. } => "ignored",
    }
}

/// Where the outcome of one upload is recorded.
fn marker_key(source: &PolicySource) -> String {
    let id = source
        .version_id
        .clone()
        .or_else(|| source.sequencer.clone())
        .unwrap_or_else(|| source.uploaded_at.timestamp_millis().to_string());
    format!("state/policy-validator/{}/{id}.json", source.key)
}

/// Writes `lkg` unless the current last-known-good is the same upload or a
/// newer one (a compare-and-swap, so concurrent validators are safe).
/// Returns whether `lkg` is (now) current.
async fn store_if_newer(bucket: &Bucket, key: &str, lkg: &LastKnownGood) -> Result<bool, ValidatorError> {
    let updated = bucket
        .update_json(key, |current: Option<&LastKnownGood>| match current {
            Some(existing) if !lkg.source.is_newer_than(&existing.source) => None,
            _ => Some(lkg.clone()),
        })
        .await?;
    Ok(match updated {
        Updated::Written(_) => true,
        Updated::Unchanged(current) => current.is_some_and(|c| c.source.is_same_upload(&lkg.source)),
    })
}

async fn announce(
    deps: &Deps,
    source: &PolicySource,
    judged: &Judged,
    outcome: &Outcome,
    lkg_key: &str,
) -> Result<(), ValidatorError> {
    let resources = [format!("arn:aws:s3:::{}/{}", source.bucket, source.key)];
    match (outcome, judged) {
        (Outcome::Accepted { .. }, Judged::Valid(lkg)) => {
            let detail = PolicyAccepted {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
                version_id: source.version_id.clone(),
                sha256: lkg.sha256.clone(),
                owner: lkg.document.policy.owner.clone(),
                warnings: lkg.warnings.clone(),
            };
            deps.bus.put(POLICY_ACCEPTED, &resources, &detail).await?;
        }
        (Outcome::Rejected { errors, .. }, Judged::Invalid { warnings, .. }) => {
            let warnings = warnings.iter().map(ToString::to_string).collect();
            let owner = deps
                .bucket
                .get_json::<LastKnownGood>(lkg_key)
                .await?
                .and_then(|lkg| lkg.document.policy.owner);
            let detail = PolicyRejected {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
                version_id: source.version_id.clone(),
                owner,
                errors: errors.clone(),
                warnings,
            };
            deps.bus.put(POLICY_REJECTED, &resources, &detail).await?;
        }
        _ => {}
    }
    Ok(())
}
