//! Finding a repository's last-known-good policy in the config bucket
//! (SPEC 3.4): `policies/<repository>/appsec.lkg.json`, else
//! `policies/default/appsec.lkg.json`.

use shipgate_core::lkg::{LastKnownGood, policy_lookup_keys};

use crate::error::AwsError;
use crate::s3::Bucket;

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyLookup {
    Found {
        key: String,
        lkg: Box<LastKnownGood>,
    },
    /// Neither key has an accepted policy.
    Missing,
    /// The first key that exists does not hold a readable record. It is not
    /// skipped for the default: that could loosen the repository's policy.
    Corrupt {
        key: String,
        reason: String,
    },
}

pub async fn load_policy(bucket: &Bucket, repository: &str) -> Result<PolicyLookup, AwsError> {
    for key in policy_lookup_keys(repository) {
        if let Some(object) = bucket.get(&key).await? {
            return Ok(match serde_json::from_slice::<LastKnownGood>(&object.body) {
                Ok(lkg) => PolicyLookup::Found { key, lkg: Box::new(lkg) },
                Err(e) => PolicyLookup::Corrupt { key, reason: e.to_string() },
            });
        }
    }
    Ok(PolicyLookup::Missing)
}
