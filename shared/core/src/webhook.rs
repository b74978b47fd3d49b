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

/// The JSON document a (verified) webhook delivery carries. GitHub sends it
/// as the body with content type `json`, and as the form field `payload` with
/// content type `form` (`application/x-www-form-urlencoded`, the default for
/// webhooks created through GitHub's API:
/// https://docs.github.com/en/webhooks/webhook-events-and-payloads#delivery-headers).
/// The signature is always over the raw body, so this runs after it is checked.
pub fn delivery_json(content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    let media_type = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| "form body is not UTF-8".to_owned())?;
    let payload = text
        .split('&')
        .find_map(|pair| pair.strip_prefix("payload="))
        .ok_or_else(|| "form body has no payload field".to_owned())?;
    form_decode(payload)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn form_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or("truncated %-escape in the payload field")?;
                let hex = std::str::from_utf8(hex).map_err(|_| "invalid %-escape in the payload field")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "invalid %-escape in the payload field")?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_changed_every_path_its_commits_added_removed_or_modified_once() {
        let push: GithubPush = serde_json::from_str(
            r#"{"ref":"refs/heads/main","after":"a","repository":{"full_name":"acme/web"},
            "commits":[{"added":["src/a.rs"],"removed":["old.txt"],"modified":["Cargo.toml"]},
                       {"added":[],"removed":[],"modified":["src/a.rs"]}],
            "head_commit":{"added":["docs/x.md"],"removed":[],"modified":["src/a.rs"]}}"#,
        )
        .unwrap();
        assert_eq!(push.changed_paths(), ["Cargo.toml", "docs/x.md", "old.txt", "src/a.rs"]);
    }

    #[test]
    fn a_form_delivery_carries_its_json_in_the_payload_field() {
        let form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22a%22%3A%22x+y%22%7D";
        let json = delivery_json(Some("application/x-www-form-urlencoded"), form).unwrap();
        assert_eq!(json, br#"{"ref":"refs/heads/main","a":"x y"}"#);
        assert_eq!(delivery_json(Some("application/json"), b"{}").unwrap(), b"{}");
        assert_eq!(delivery_json(None, b"{}").unwrap(), b"{}");
        assert!(delivery_json(Some("application/x-www-form-urlencoded"), b"other=1").is_err());
        assert!(delivery_json(Some("application/x-www-form-urlencoded"), b"payload=%7").is_err());
    }

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
