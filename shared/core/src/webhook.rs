//! GitHub webhooks: the signature check (done on the raw body, before any
//! parsing) and the parts of a `push` that Shipgate uses.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// A webhook secret. `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a signature was refused (never including the signature itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Verifies `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of body>` in
/// constant time.
pub fn verify_signature(
    secret: &WebhookSecret,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The fields of a GitHub `push` event Shipgate reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GithubPush {
    #[serde(rename = "ref")]
    pub reference: String,
    pub after: String,
    #[serde(default)]
    pub deleted: bool,
    pub repository: GithubRepository,
    #[serde(default)]
    pub pusher: Option<GithubPusher>,
    #[serde(default)]
    pub commits: Vec<GithubCommit>,
    #[serde(default)]
    pub head_commit: Option<GithubCommit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GithubRepository {
    pub full_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GithubPusher {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GithubCommit {
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub modified: Vec<String>,
}

impl GithubPush {
    /// Every path the push added, removed or modified.
    pub fn changed_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self
            .commits
            .iter()
            .chain(self.head_commit.iter())
            .flat_map(|c| c.added.iter().chain(&c.removed).chain(&c.modified).cloned())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_published_test_vector_passes() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let secret = WebhookSecret::new("It's a Secret to Everybody");
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_signature(&secret, b"Hello, World!", Some(header)), Ok(()));
    }

    #[test]
    fn tampering_and_malformed_headers_are_refused() {
        let secret = WebhookSecret::new("It's a Secret to Everybody");
        let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_signature(&secret, b"Hello, World?", Some(good)), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature(&secret, b"Hello, World!", None), Err(SignatureError::Missing));
        let sha1 = good.replace("sha256=", "sha1=");
        assert_eq!(verify_signature(&secret, b"Hello, World!", Some(&sha1)), Err(SignatureError::Malformed));
        assert_eq!(
            verify_signature(&secret, b"Hello, World!", Some(&good[..40])),
            Err(SignatureError::Malformed)
        );
        let wrong_secret = WebhookSecret::new("another");
        assert_eq!(
            verify_signature(&wrong_secret, b"Hello, World!", Some(good)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secret_never_prints() {
        assert_eq!(format!("{:?}", WebhookSecret::new("hunter2")), "WebhookSecret(<redacted>)");
    }
}
