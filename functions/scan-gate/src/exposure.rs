//! Re-judging running images: when Inspector reports a finding on an image
//! (created, updated or closed), when a policy is accepted, and daily (for
//! exceptions that expire), every running image concerned is judged again
//! against its current findings and today's policy for its environment. A
//! flip between passing and failing is written with compare-and-swap, so of
//! concurrent judges exactly one records it, and is announced as
//! `Shipgate Exposure Changed` (once: the record says whether it went out,
//! and a retry announces what an earlier invocation could not).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use shipgate_aws::AwsError;
use shipgate_aws::ecr::ScanLookup;
use shipgate_aws::exposure::{running_keys, services_running};
use shipgate_aws::inspector::add_epss;
use shipgate_aws::policies::{PolicyLookup, load_policy};
use shipgate_aws::s3::{Object, Updated};
use shipgate_core::digest::ImageDigest;
use shipgate_core::events::EXPOSURE_CHANGED;
use shipgate_core::exposure::{ExposureChanged, Judged, RunningService, rejudge};
use shipgate_core::limits::RECORD_BYTES;
use shipgate_core::scan::{ScanRule, ScanVerdict, ScanViolation, Verdict, evaluate_scan};
use shipgate_core::verdict::no_policy;
use tracing::{info, warn};

use crate::Deps;

/// How many records, scans and policies are read at once: enough to hide
/// latency, few enough to stay a good neighbour of the gates' own reads.
const CONCURRENCY: usize = 8;

/// What re-judging did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejudged {
    /// Why: the finding's image, a policy, or the daily schedule.
    pub trigger: String,
    /// Running records read.
    pub services: usize,
    /// Images judged again.
    pub images: usize,
    /// Flips announced in this invocation (`environment/service/container/digest/seq`).
    pub announced: Vec<String>,
}

/// Which running images to judge again.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// The images with this digest (an Inspector finding on it).
    Digest(&'a ImageDigest),
    /// Every running image (a policy changed, or a day passed).
    All,
}

pub async fn rejudge_running(
    deps: &Deps,
    scope: Scope<'_>,
    trigger: String,
    now: DateTime<Utc>,
) -> Result<Rejudged, AwsError> {
    let (keys, only) = match scope {
        Scope::Digest(digest) => (services_running(&deps.bucket, digest).await?, Some(digest)),
        Scope::All => (running_keys(&deps.bucket).await?, None),
    };
    // Each record with the object it was read from: `apply` starts its
    // compare-and-swap there, not from a second read.
    let records: Vec<(String, RunningService, Object)> = stream::iter(keys)
        .map(|key| async move {
            let object = deps.bucket.get(&key, RECORD_BYTES).await?;
            let record = object.and_then(|o| Some((serde_json::from_slice(&o.body).ok()?, o)));
            Ok::<_, AwsError>(record.map(|(r, o)| (key, r, o)))
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;
    // Each (environment, repository, digest) once, however many services run it.
    let wanted: BTreeSet<(Option<String>, String, ImageDigest)> = records
        .iter()
        .flat_map(|(_, r, _)| {
            r.images
                .iter()
                .filter(|i| only.is_none_or(|d| i.digest == *d))
                .map(|i| (r.environment.clone(), i.repository.clone(), i.digest.clone()))
        })
        .collect();
    let repositories: BTreeSet<String> = wanted.iter().map(|(_, repo, _)| repo.clone()).collect();
    let policies: BTreeMap<String, PolicyLookup> = stream::iter(repositories)
        .map(|repo| async move { Ok::<_, AwsError>((repo.clone(), load_policy(&deps.bucket, &repo).await?)) })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let policies = &policies;
    let judgements: BTreeMap<(Option<String>, String, ImageDigest), Judgement> = stream::iter(wanted)
        .map(|key| async move {
            let judgement = judge(deps, &policies[&key.1], key.0.as_deref(), &key.1, &key.2, now).await?;
            Ok::<_, AwsError>(judgement.map(|j| (key, j)))
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await?;
    let judgements = &judgements;
    let services = records.len();
    let announced: Vec<Vec<String>> = stream::iter(records)
        .map(|(key, record, object)| async move {
            apply(deps, &key, object, record.environment.as_deref(), judgements, now).await
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let rejudged = Rejudged {
        trigger,
        services,
        images: judgements.len(),
        announced: announced.into_iter().flatten().collect(),
    };
    info!(trigger = %rejudged.trigger, services = rejudged.services, images = rejudged.images, flips = rejudged.announced.len(), "running images judged again");
    Ok(rejudged)
}

/// Today's verdict on one image, with the policy that gave it.
struct Judgement {
    verdict: ScanVerdict,
    owner: Option<String>,
    policy_key: Option<String>,
}

/// Judges `repository@digest` against `environment`'s policy on its current
/// findings; `None` when ECR has no scan of it (an image deleted while it
/// runs keeps its last judgement). No policy, or a policy without the
/// environment, fails closed.
async fn judge(
    deps: &Deps,
    lookup: &PolicyLookup,
    environment: Option<&str>,
    repository: &str,
    digest: &ImageDigest,
    now: DateTime<Utc>,
) -> Result<Option<Judgement>, AwsError> {
    let mut report = match deps.ecr.describe_scan(None, repository, digest).await? {
        ScanLookup::Found(report) => report,
        ScanLookup::NotFound => {
            warn!(repository, %digest, "ECR has no scan of a running image; its last judgement stands");
            return Ok(None);
        }
    };
    let (key, lkg) = match lookup {
        PolicyLookup::Found { key, lkg } => (key, lkg),
        PolicyLookup::None(_) => {
            let verdict = no_policy(repository, &report);
            return Ok(Some(Judgement { verdict, owner: None, policy_key: None }));
        }
    };
    let owner = lkg.document.policy.owner.clone();
    let policy = match lkg.document.environment(environment) {
        Ok(policy) => policy,
        Err(unknown) => {
            let verdict = ScanVerdict {
                violations: vec![ScanViolation {
                    rule: ScanRule::UnknownEnvironment,
                    severity: None,
                    message: unknown.to_string(),
                }],
                ..ScanVerdict::empty(Verdict::Fail, report.status().unwrap_or_default())
            };
            return Ok(Some(Judgement { verdict, owner, policy_key: Some(key.clone()) }));
        }
    };
    if lkg.document.reads_epss() {
        add_epss(deps.inspector.get(), repository, digest, &mut report).await?;
    }
    let verdict = evaluate_scan(policy, repository, &report, now);
    Ok(Some(Judgement { verdict, owner, policy_key: Some(key.clone()) }))
}

/// Writes the new exposures of one service's images (compare-and-swap from
/// `stored`, the record as read), then announces every flip not yet
/// announced and marks it so.
async fn apply(
    deps: &Deps,
    key: &str,
    stored: Object,
    environment: Option<&str>,
    judgements: &BTreeMap<(Option<String>, String, ImageDigest), Judgement>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, AwsError> {
    let environment = environment.map(str::to_owned);
    let mut stored = Some(stored);
    let updated = deps
        .bucket
        .update_json_at(key, &mut stored, |stored: Option<&RunningService>| {
            let mut record = stored?.clone();
            let mut changed = false;
            for image in &mut record.images {
                let at = (environment.clone(), image.repository.clone(), image.digest.clone());
                let Some(j) = judgements.get(&at) else { continue };
                let judged = Judged {
                    verdict: &j.verdict,
                    owner: j.owner.as_deref(),
                    policy_key: j.policy_key.as_deref(),
                };
                if let Some(exposure) = rejudge(&image.exposure, &judged, now) {
                    image.exposure = exposure;
                    changed = true;
                }
            }
            changed.then_some(record)
        })
        .await?;
    let record = match updated {
        Updated::Written(record) | Updated::Unchanged(Some(record)) => record,
        Updated::Unchanged(None) => return Ok(Vec::new()),
    };
    let mut announced = Vec::new();
    for change in record.images.iter().filter_map(|i| ExposureChanged::of(&record, i)) {
        deps.bus.put(EXPOSURE_CHANGED, &[], &change).await?;
        mark_announced(deps, key, &mut stored, &change).await?;
        info!(flip = %change.id(), status = change.status.as_str(), "exposure changed");
        announced.push(change.id());
    }
    Ok(announced)
}

/// Marks the flip announced, if the record still holds that flip, starting
/// from `stored`, the record as this invocation last left it (no read first).
async fn mark_announced(
    deps: &Deps,
    key: &str,
    stored: &mut Option<Object>,
    change: &ExposureChanged,
) -> Result<(), AwsError> {
    deps.bucket
        .update_json_at(key, stored, |stored: Option<&RunningService>| {
            let mut record = stored?.clone();
            let image = record.images.iter_mut().find(|i| {
                i.container == change.container
                    && i.digest == change.digest
                    && i.exposure.seq == change.seq
                    && !i.exposure.announced
            })?;
            image.exposure.announced = true;
            Some(record)
        })
        .await?;
    Ok(())
}
