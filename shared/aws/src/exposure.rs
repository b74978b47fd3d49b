//! What runs where, in the config bucket: each service's record
//! (`running/<environment>/<service>.json`) and, per digest, the services
//! that run it (`running-by-digest/<digest>.json`).
//!
//! The record is the truth and the index a hint: a deployment adds itself to
//! its digests' index before it writes its record, and removes itself from
//! the replaced digests' index after, so an interrupted write leaves the
//! index naming too many services, never too few, and a reader checks each
//! service's record for the digest.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use shipgate_core::digest::ImageDigest;
use shipgate_core::exposure::{RUNNING_PREFIX, RunningService, digest_index_key};

use crate::error::AwsError;
use crate::s3::{Bucket, Updated};

/// The services (their running keys) that run one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestIndex {
    pub digest: ImageDigest,
    pub services: BTreeSet<String>,
}

/// What recording a deployment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The record now says what this deployment runs.
    Written(RunningService),
    /// A later deployment (or this one) is already recorded.
    Kept,
}

/// Records `service` as running, replacing an older deployment's record
/// (compare-and-swap), and keeps the digest index in step.
pub async fn record_deployment(bucket: &Bucket, service: RunningService) -> Result<Recorded, AwsError> {
    let key = service.key();
    for digest in service.digests() {
        index(bucket, digest, &key, true).await?;
    }
    let mut replaced: Option<RunningService> = None;
    let updated = bucket
        .update_json(&key, |stored: Option<&RunningService>| {
            replaced = stored.cloned();
            match stored {
                Some(stored) if !service.replaces(stored) => None,
                _ => Some(service.clone().carrying_over(stored)),
            }
        })
        .await?;
    let Updated::Written(written) = updated else { return Ok(Recorded::Kept) };
    if let Some(replaced) = replaced {
        let now = written.digests();
        for gone in replaced.digests().difference(&now) {
            index(bucket, gone, &key, false).await?;
        }
    }
    Ok(Recorded::Written(written))
}

/// Adds `service` to (or removes it from) `digest`'s index.
async fn index(bucket: &Bucket, digest: &ImageDigest, service: &str, add: bool) -> Result<(), AwsError> {
    bucket
        .update_json(&digest_index_key(digest), |stored: Option<&DigestIndex>| {
            let mut index = stored
                .cloned()
                .unwrap_or_else(|| DigestIndex { digest: digest.clone(), services: BTreeSet::new() });
            let changed =
                if add { index.services.insert(service.to_owned()) } else { index.services.remove(service) };
            changed.then_some(index)
        })
        .await?;
    Ok(())
}

/// The running keys of the services whose records run `digest` (the index,
/// checked against the records by the caller).
pub async fn services_running(bucket: &Bucket, digest: &ImageDigest) -> Result<Vec<String>, AwsError> {
    Ok(bucket
        .get_json::<DigestIndex>(&digest_index_key(digest))
        .await?
        .map(|index| index.services.into_iter().collect())
        .unwrap_or_default())
}

/// Every running record's key.
pub async fn running_keys(bucket: &Bucket) -> Result<Vec<String>, AwsError> {
    Ok(bucket.list_keys(RUNNING_PREFIX).await?.into_iter().filter(|k| k.ends_with(".json")).collect())
}
