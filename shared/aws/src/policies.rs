//! Finding the last-known-good policy that applies (`docs/policy.md`, "Where it lives"): the one a
//! gate's parameters name, else `policies/<repository>/appsec.lkg.json`,
//! else `policies/default/appsec.lkg.json`.

use shipgate_core::image::EcrImage;
use shipgate_core::lkg::{LastKnownGood, NoPolicy, named_policy_key, policy_lookup_keys};
use shipgate_core::policy::{Policy, UnknownEnvironment};

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

/// Why no policy could judge an image.
#[derive(Debug, thiserror::Error)]
pub enum ImagePolicyError {
    #[error("{0}; failing closed")]
    None(NoPolicy),
    #[error(transparent)]
    Environment(#[from] UnknownEnvironment),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The policy one image is judged by, wherever it is judged.
#[derive(Debug, Clone)]
pub struct OwnPolicy {
    /// Where it was read (`policies/<repository>/appsec.lkg.json`, or the
    /// default's).
    pub key: String,
    pub policy: Policy,
    pub owner: Option<String>,
}

/// Whose policy judges `image`: its ECR repository's, else the default's.
pub fn policy_scope(image: &str) -> String {
    EcrImage::parse(image).map_or_else(|| "default".to_owned(), |i| i.repository)
}

/// The policy `image` must meet in `environment`: its repository's (an
/// image outside ECR: the default), with the environment's overlay. The
/// one answer release-gate (for an image other than the one built) and
/// deploy-hooks (for every image) use.
pub async fn image_policy(
    bucket: &Bucket,
    image: &str,
    environment: Option<&str>,
) -> Result<OwnPolicy, ImagePolicyError> {
    let (key, lkg) =
        load_policy(bucket, &policy_scope(image)).await?.found().map_err(ImagePolicyError::None)?;
    let policy = lkg.document.environment(environment)?.clone();
    Ok(OwnPolicy { key, policy, owner: lkg.document.policy.owner })
}

/// The record at `key`: `None` when absent; unreadable is an answer, not absence.
async fn read(bucket: &Bucket, key: String) -> Result<Option<PolicyLookup>, AwsError> {
    let Some(object) = bucket.get(&key, shipgate_core::limits::RECORD_BYTES).await? else { return Ok(None) };
    Ok(Some(match serde_json::from_slice::<LastKnownGood>(&object.body) {
        Ok(lkg) => PolicyLookup::Found { key, lkg: Box::new(lkg) },
        Err(e) => PolicyLookup::None(NoPolicy::Unreadable { key, reason: e.to_string() }),
    }))
}
