//! The last-known-good policy: what policy-validator writes next to a valid
//! `appsec.yaml` and what the gates read. Gates read only these, so a typo in
//! a policy can neither open nor close a gate.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::PolicyDocument;
use crate::validate::{Diagnostic, parse_policy};

/// Where a policy came from, and its place in the order of uploads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySource {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// S3's event sequencer: for one key, a greater value is a later write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// When S3 reported the upload.
    pub uploaded_at: DateTime<Utc>,
}

impl PolicySource {
    /// True when `self` is a later upload of the key than `other`: by
    /// sequencer (compared as hexadecimal numbers) when both have one, else
    /// by upload time.
    pub fn is_newer_than(&self, other: &PolicySource) -> bool {
        match (&self.sequencer, &other.sequencer) {
            (Some(a), Some(b)) => compare_hex(a, b) == std::cmp::Ordering::Greater,
            _ => self.uploaded_at > other.uploaded_at,
        }
    }

    /// True when both name the same upload.
    pub fn is_same_upload(&self, other: &PolicySource) -> bool {
        self.key == other.key
            && self.version_id == other.version_id
            && self.sequencer == other.sequencer
            && (self.version_id.is_some()
                || self.sequencer.is_some()
                || self.uploaded_at == other.uploaded_at)
    }
}

fn compare_hex(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) =
        (a.trim_start_matches('0').to_ascii_uppercase(), b.trim_start_matches('0').to_ascii_uppercase());
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastKnownGood {
    pub source: PolicySource,
    /// SHA-256 of the YAML file's bytes, hex.
    pub sha256: String,
    pub document: PolicyDocument,
    pub warnings: Vec<String>,
}

/// The outcome of judging an uploaded policy file.
#[derive(Debug, Clone, PartialEq)]
pub enum Judged {
    Valid(Box<LastKnownGood>),
    Invalid { errors: Vec<Diagnostic>, warnings: Vec<Diagnostic> },
}

/// Judges an uploaded file; `now` dates the expiry warnings.
pub fn judge_upload(bytes: &[u8], source: PolicySource, now: DateTime<Utc>) -> Judged {
    let Ok(text) = std::str::from_utf8(bytes) else {
        let error =
            Diagnostic { line: 1, col: 1, key: String::new(), message: "file is not UTF-8 text".into() };
        return Judged::Invalid { errors: vec![error], warnings: vec![] };
    };
    match parse_policy(text, Some(now)) {
        Ok(parsed) => Judged::Valid(Box::new(LastKnownGood {
            source,
            sha256: sha256_hex(bytes),
            document: parsed.document,
            warnings: parsed.warnings.iter().map(ToString::to_string).collect(),
        })),
        Err(invalid) => Judged::Invalid { errors: invalid.errors, warnings: invalid.warnings },
    }
}

/// The judgement of an upload refused by its size before it was read.
pub fn judge_too_large(why: String) -> Judged {
    let error = Diagnostic { line: 1, col: 1, key: String::new(), message: why };
    Judged::Invalid { errors: vec![error], warnings: vec![] }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The key of the last-known-good next to a policy key ending `appsec.yaml`:
/// `policies/web/appsec.yaml` → `policies/web/appsec.lkg.json`.
pub fn lkg_key(policy_key: &str) -> Option<String> {
    policy_key.strip_suffix("appsec.yaml").map(|stem| format!("{stem}appsec.lkg.json"))
}

/// Where the gates look for a repository's policy, in order (`docs/policy.md`).
pub fn policy_lookup_keys(repository: &str) -> [String; 2] {
    [format!("policies/{repository}/appsec.lkg.json"), "policies/default/appsec.lkg.json".to_owned()]
}

/// Where a central policy named by a gate's parameters lives.
pub fn named_policy_key(name: &str) -> String {
    format!("policies/{name}/appsec.lkg.json")
}

/// Why no policy applies, in the one wording every function uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPolicy {
    /// Neither the repository's policy nor the default has been accepted.
    #[error(
        "no accepted policy for repository {0}: neither policies/{0}/appsec.yaml nor policies/default/appsec.yaml has been accepted"
    )]
    ForRepository(String),
    /// The policy a gate's parameters name has not been accepted.
    #[error("policy {0} has no accepted appsec.yaml (policies/{0}/appsec.yaml)")]
    Named(String),
    /// The record exists but cannot be read. It is never skipped for the
    /// default, which could loosen the repository's policy.
    #[error("the last-known-good policy {key} is unreadable: {reason}")]
    Unreadable { key: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(sequencer: Option<&str>, at: &str) -> PolicySource {
        PolicySource {
            bucket: "b".into(),
            key: "policies/web/appsec.yaml".into(),
            version_id: None,
            sequencer: sequencer.map(str::to_owned),
            uploaded_at: at.parse().unwrap(),
        }
    }

    #[test]
    fn sequencers_compare_as_hexadecimal_numbers() {
        let a = source(Some("0062E99A88DC407460"), "2026-01-01T00:00:00Z");
        let b = source(Some("0062E99A88DC407461"), "2025-01-01T00:00:00Z");
        let c = source(Some("62E99A88DC40745F"), "2025-01-01T00:00:00Z");
        assert!(b.is_newer_than(&a), "sequencer beats time");
        assert!(a.is_newer_than(&c), "leading zeros do not count");
        assert!(!a.is_newer_than(&a));
        let t1 = source(None, "2026-01-01T00:00:00Z");
        let t2 = source(None, "2026-01-01T00:00:01Z");
        assert!(t2.is_newer_than(&t1));
    }

    #[test]
    fn lkg_sits_next_to_the_policy() {
        assert_eq!(lkg_key("policies/web/appsec.yaml").as_deref(), Some("policies/web/appsec.lkg.json"));
        assert_eq!(lkg_key("team-appsec.yaml").as_deref(), Some("team-appsec.lkg.json"));
        assert_eq!(lkg_key("policies/web/routes.yaml"), None);
    }

    #[test]
    fn judging_hashes_the_bytes_and_keeps_warnings() {
        let yaml = b"version: 1\nscan:\n  exceptions:\n    - {id: CVE-1, expires: 2026-01-01, reason: r}\n";
        let Judged::Valid(lkg) =
            judge_upload(yaml, source(None, "2026-11-28T00:00:00Z"), "2026-11-28T00:00:00Z".parse().unwrap())
        else {
            panic!()
        };
        assert_eq!(lkg.sha256, sha256_hex(yaml));
        assert_eq!(lkg.warnings.len(), 1);
        assert!(matches!(
            judge_upload(
                b"\xff",
                source(None, "2026-11-28T00:00:00Z"),
                "2026-11-28T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
            ),
            Judged::Invalid { .. }
        ));
    }
}
