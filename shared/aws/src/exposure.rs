//! What runs where, in the config bucket: each service's record
//! (`running/<environment>/<service>.json`) and, per digest, the services
//! that run it (`running-by-digest/<digest>.json`).
//!
//! The record is the truth and the index a hint: a deployment adds itself to
//! its digests' index before it writes its record, and removes itself from
//! the replaced digests' index after, so an interrupted write leaves the
//! index naming too many services, never too few, and a reader checks each
//! service's record for the digest. Two deployments of one service
//! recorded at once cannot drop it either (`Recording`).

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
    let mut recording = Recording::new(service);
    while Recording::step(&mut recording, bucket).await? {}
    Ok(recording.outcome())
}

/// One deployment's recording, step by step (so a test can interleave two).
/// The index never loses a service its record runs, however two
/// deployments of one service interleave: a removal from a replaced
/// digest's index is checked against the record afterwards (and undone if
/// the record runs that digest again), and a deployment whose record still
/// stands adds itself to its digests' index again at the end, after any
/// removal that read the record before it was written.
#[derive(Debug)]
pub struct Recording {
    service: RunningService,
    next: Step,
    replaced: Option<RunningService>,
    outcome: Option<Recorded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Index,
    Write,
    Release,
    Reindex,
    Done,
}

impl Recording {
    pub fn new(service: RunningService) -> Self {
        Self { service, next: Step::Index, replaced: None, outcome: None }
    }

    /// Runs the next step; `false` once there is none.
    pub async fn step(&mut self, bucket: &Bucket) -> Result<bool, AwsError> {
        let key = self.service.key();
        match self.next {
            Step::Index => {
                for digest in self.service.digests() {
                    index(bucket, digest, &key, true).await?;
                }
                self.next = Step::Write;
            }
            // Once more, while this deployment's record stands (a later one
            // indexes its own digests).
            Step::Reindex => {
                let record = bucket.get_json::<RunningService>(&key).await?;
                if record.is_some_and(|r| r.deployment == self.service.deployment) {
                    for digest in self.service.digests() {
                        index(bucket, digest, &key, true).await?;
                    }
                }
                self.next = Step::Done;
            }
            Step::Write => {
                let service = &self.service;
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
                match updated {
                    Updated::Written(written) => {
                        self.replaced = replaced;
                        self.outcome = Some(Recorded::Written(written));
                        self.next = Step::Release;
                    }
                    Updated::Unchanged(_) => {
                        self.outcome = Some(Recorded::Kept);
                        self.next = Step::Done;
                    }
                }
            }
            Step::Release => {
                let now = self.service.digests();
                let gone: Vec<ImageDigest> = self
                    .replaced
                    .iter()
                    .flat_map(|r| {
                        r.digests().into_iter().filter(|d| !now.contains(d)).cloned().collect::<Vec<_>>()
                    })
                    .collect();
                for digest in &gone {
                    index(bucket, digest, &key, false).await?;
                    // A later deployment may run it again and have added
                    // itself before this removal: the record says.
                    let record = bucket.get_json::<RunningService>(&key).await?;
                    if record.is_some_and(|r| r.digests().contains(digest)) {
                        index(bucket, digest, &key, true).await?;
                    }
                }
                self.next = Step::Reindex;
            }
            Step::Done => return Ok(false),
        }
        Ok(self.next != Step::Done)
    }

    /// What recording did (`Kept` until the record is written).
    pub fn outcome(self) -> Recorded {
        self.outcome.unwrap_or(Recorded::Kept)
    }
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
