//! The stored verdict of an image's scan (`verdicts/<repository>/<digest>.json`)
//! and the `Shipgate Scan Verdict` event.
//!
//! A verdict is judged for the base policy and for each environment overlay,
//! so the release gate of any environment can use it without re-reading the
//! findings, as long as the policy it was judged with is still current.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::ImageDigest;
use crate::findings::ScanReport;
use crate::lkg::LastKnownGood;
use crate::policy::Severity;
use crate::scan::{ScanVerdict, ScanViolation, Verdict, evaluate_scan};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub repository: String,
    pub digest: ImageDigest,
    #[serde(default)]
    pub image_tags: Vec<String>,
    /// When the judged scan completed (from ECR), or, for a scan that has not
    /// completed, when the scan event was sent. A record only ever replaces
    /// one with an earlier `scanned_at`.
    pub scanned_at: DateTime<Utc>,
    /// The last-known-good policy judged against; `None` when there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
    pub judged_at: DateTime<Utc>,
    /// The verdict under the base policy.
    pub verdict: ScanVerdict,
    /// The verdict under each environment overlay.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, ScanVerdict>,
    /// Whether the `Shipgate Scan Verdict` event for this record went out.
    #[serde(default)]
    pub announced: bool,
}

impl VerdictRecord {
    /// True when `self` should replace `stored`. A scan still running never
    /// replaces a judgement (a late replay during a rescan must not turn a
    /// verdict back into PENDING), and a judgement always replaces a pending
    /// record; otherwise a later scan, or the same scan judged against a
    /// different policy, wins.
    pub fn supersedes(&self, stored: &VerdictRecord) -> bool {
        let judged = |r: &VerdictRecord| r.verdict.verdict != Verdict::Pending;
        match (judged(self), judged(stored)) {
            (false, true) => false,
            (true, false) => true,
            _ => {
                self.scanned_at > stored.scanned_at
                    || (self.scanned_at == stored.scanned_at && self.policy_sha256 != stored.policy_sha256)
            }
        }
    }

    /// The verdict for `environment` (the base one when it has no overlay).
    pub fn for_environment(&self, environment: Option<&str>) -> &ScanVerdict {
        environment.and_then(|e| self.environments.get(e)).unwrap_or(&self.verdict)
    }
}

/// Judges a report against a last-known-good policy, for the base policy and
/// every environment; without a policy, fails closed.
pub fn judge(
    repository: &str,
    digest: &ImageDigest,
    image_tags: Vec<String>,
    report: &ScanReport,
    event_time: DateTime<Utc>,
    policy: Option<(&str, &LastKnownGood)>,
    now: DateTime<Utc>,
) -> VerdictRecord {
    let scanned_at = report.completed_at().unwrap_or(event_time);
    let (verdict, environments) = match policy {
        Some((_, lkg)) => (
            evaluate_scan(&lkg.document.policy, repository, report, now),
            lkg.document
                .environments
                .iter()
                .map(|(name, p)| (name.clone(), evaluate_scan(p, repository, report, now)))
                .collect(),
        ),
        None => (no_policy(repository, report), BTreeMap::new()),
    };
    VerdictRecord {
        repository: repository.to_owned(),
        digest: digest.clone(),
        image_tags,
        scanned_at,
        policy_key: policy.map(|(key, _)| key.to_owned()),
        policy_sha256: policy.map(|(_, lkg)| lkg.sha256.clone()),
        judged_at: now,
        verdict,
        environments,
        announced: false,
    }
}

/// The verdict when no policy applies: FAIL, saying so.
pub fn no_policy(repository: &str, report: &ScanReport) -> ScanVerdict {
    ScanVerdict {
        violations: vec![ScanViolation {
            rule: crate::scan::ScanRule::NoPolicy,
            severity: None,
            message: crate::lkg::NoPolicy::ForRepository(repository.to_owned()).to_string(),
        }],
        ..ScanVerdict::empty(Verdict::Fail, report.status().unwrap_or_default())
    }
}

pub fn verdict_key(repository: &str, digest: &ImageDigest) -> String {
    format!("verdicts/{repository}/{digest}.json")
}

/// The `Shipgate Scan Verdict` event's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanVerdictEvent {
    pub repository: String,
    pub digest: ImageDigest,
    pub image_tags: Vec<String>,
    pub verdict: Verdict,
    pub status: String,
    pub counts: BTreeMap<Severity, u64>,
    /// The violations' messages, most important first.
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub scanned_at: DateTime<Utc>,
    /// The verdict under each environment overlay, where it differs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, Verdict>,
}

impl ScanVerdictEvent {
    pub fn from_record(record: &VerdictRecord, owner: Option<String>) -> Self {
        Self {
            repository: record.repository.clone(),
            digest: record.digest.clone(),
            image_tags: record.image_tags.clone(),
            verdict: record.verdict.verdict,
            status: record.verdict.status.clone(),
            counts: record.verdict.counts.clone(),
            reasons: record.verdict.violations.iter().map(|v| v.message.clone()).collect(),
            policy_key: record.policy_key.clone(),
            owner,
            scanned_at: record.scanned_at,
            environments: record
                .environments
                .iter()
                .filter(|(_, v)| v.verdict != record.verdict.verdict)
                .map(|(name, v)| (name.clone(), v.verdict))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(verdict: Verdict, scanned_at: &str, policy: &str) -> VerdictRecord {
        VerdictRecord {
            repository: "payments-api".into(),
            digest: ImageDigest::parse(&format!("sha256:{}", "4f".repeat(32))).unwrap(),
            image_tags: vec![],
            scanned_at: scanned_at.parse().unwrap(),
            policy_key: None,
            policy_sha256: Some(policy.into()),
            judged_at: scanned_at.parse().unwrap(),
            verdict: ScanVerdict::empty(verdict, ""),
            environments: BTreeMap::new(),
            announced: false,
        }
    }

    #[test]
    fn no_policy_fails_naming_the_repository() {
        let v = no_policy("payments-api", &ScanReport::default());
        assert_eq!(v.verdict, Verdict::Fail);
        let rules: Vec<&str> = v.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["no_policy"]);
        assert!(v.violations[0].message.contains("payments-api"), "{}", v.violations[0].message);
    }

    #[test]
    fn each_image_has_its_own_verdict_key() {
        let digest = format!("sha256:{}", "4f".repeat(32));
        assert_eq!(
            verdict_key("payments-api", &ImageDigest::parse(&digest).unwrap()),
            format!("verdicts/payments-api/{digest}.json")
        );
    }

    #[test]
    fn the_event_names_only_the_environments_whose_verdict_differs() {
        let mut r = record(Verdict::Pass, "2026-11-28T10:00:00Z", "p1");
        r.environments.insert("dev".into(), ScanVerdict::empty(Verdict::Pass, ""));
        r.environments.insert("prod".into(), ScanVerdict::empty(Verdict::Fail, ""));
        let event = ScanVerdictEvent::from_record(&r, None);
        assert_eq!(event.environments, [("prod".to_owned(), Verdict::Fail)].into());
    }

    #[test]
    fn a_scan_still_running_never_replaces_a_judgement() {
        let complete = record(Verdict::Pass, "2026-11-28T10:00:00Z", "p1");
        let rescanning = record(Verdict::Pending, "2026-11-28T11:00:00Z", "p1");
        assert!(!rescanning.supersedes(&complete));
        assert!(
            complete.supersedes(&rescanning),
            "a judgement replaces a pending record, whatever the times"
        );
    }

    #[test]
    fn a_later_scan_or_a_new_policy_wins_and_nothing_else() {
        let first = record(Verdict::Pass, "2026-11-28T10:00:00Z", "p1");
        let later = record(Verdict::Fail, "2026-11-28T10:00:01Z", "p1");
        let repolicied = record(Verdict::Fail, "2026-11-28T10:00:00Z", "p2");
        let replay = record(Verdict::Fail, "2026-11-28T10:00:00Z", "p1");
        assert!(later.supersedes(&first));
        assert!(!first.supersedes(&later));
        assert!(repolicied.supersedes(&first));
        assert!(!replay.supersedes(&first), "the same scan under the same policy changes nothing");
    }
}
