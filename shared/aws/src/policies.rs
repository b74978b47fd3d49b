//! Finding the last-known-good policy that applies (`docs/policy.md`, "Where it lives"): the one a
//! gate's parameters name, else `policies/<repository>/appsec.lkg.json`,
//! else `policies/default/appsec.lkg.json`.

use shipgate_core::lkg::{LastKnownGood, NoPolicy, named_policy_key, policy_lookup_keys};

use crate::error::AwsError;
use crate::s3::Bucket;

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyLookup {
    Found {
        key: String,
        lkg: Box<LastKnownGood>,
    },
    /// No policy applies, and why, in the fleet's one wording.
    None(NoPolicy),
}

impl PolicyLookup {
    /// The key and the policy, or why there is none.
    pub fn found(self) -> Result<(String, LastKnownGood), NoPolicy> {
        match self {
            PolicyLookup::Found { key, lkg } => Ok((key, *lkg)),
            PolicyLookup::None(why) => Err(why),
        }
    }
}

/// The repository's policy, else the default.
pub async fn load_policy(bucket: &Bucket, repository: &str) -> Result<PolicyLookup, AwsError> {
    for key in policy_lookup_keys(repository) {
        if let Some(found) = read(bucket, key).await? {
            return Ok(found);
        }
    }
    Ok(PolicyLookup::None(NoPolicy::ForRepository(repository.to_owned())))
}

/// The policy `name` when one is named, else the repository's (or the default).
pub async fn load_central_policy(
    bucket: &Bucket,
    named: Option<&str>,
    repository: &str,
) -> Result<PolicyLookup, AwsError> {
    let Some(name) = named else { return load_policy(bucket, repository).await };
    Ok(read(bucket, named_policy_key(name))
        .await?
        .unwrap_or_else(|| PolicyLookup::None(NoPolicy::Named(name.to_owned()))))
}

/// The record at `key`: `None` when absent; unreadable is an answer, not absence.
async fn read(bucket: &Bucket, key: String) -> Result<Option<PolicyLookup>, AwsError> {
    let Some(object) = bucket.get(&key, shipgate_core::limits::RECORD_BYTES).await? else { return Ok(None) };
    Ok(Some(match serde_json::from_slice::<LastKnownGood>(&object.body) {
        Ok(lkg) => PolicyLookup::Found { key, lkg: Box::new(lkg) },
        Err(e) => PolicyLookup::None(NoPolicy::Unreadable { key, reason: e.to_string() }),
    }))
}
