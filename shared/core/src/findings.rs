//! Scan findings as ECR reports them: the output of
//! `aws ecr describe-image-scan-findings` (and of the API, which the adapters
//! convert into these same types). Unknown fields are ignored; timestamps are
//! accepted both as ISO 8601 strings (the CLI) and epoch seconds (the API).
//!
//! The short texts of a finding the engine reads (id, severity, package,
//! the `YES`/`NO` flags) are `CompactString`s: held inside the finding, not
//! each in an allocation of its own, so judging thousands of findings reads
//! them where the findings are instead of chasing a pointer per field.

use chrono::{DateTime, TimeZone, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize};

/// What a scan status means for a gate: the one vocabulary of ECR's and
/// Inspector's scan statuses. A status Shipgate does not know is kept as
/// written, so messages can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanState {
    /// `COMPLETE` (basic scanning) or `ACTIVE` (enhanced): findings to judge.
    Complete(&'static str),
    /// `IN_PROGRESS` or `PENDING`: wait for it.
    Running(&'static str),
    /// Anything else (`FAILED`, `UNSUPPORTED_IMAGE`, `FINDINGS_UNAVAILABLE`,
    /// `SCAN_ELIGIBILITY_EXPIRED`, `LIMIT_EXCEEDED`, ...), or no status at
    /// all (empty): no completed scan to judge.
    Unusable(String),
}

impl ScanState {
    const COMPLETE: [&'static str; 2] = ["COMPLETE", "ACTIVE"];
    const RUNNING: [&'static str; 2] = ["IN_PROGRESS", "PENDING"];

    pub fn parse(status: &str) -> Self {
        if let Some(s) = Self::COMPLETE.into_iter().find(|s| *s == status) {
            ScanState::Complete(s)
        } else if let Some(s) = Self::RUNNING.into_iter().find(|s| *s == status) {
            ScanState::Running(s)
        } else {
            ScanState::Unusable(status.to_owned())
        }
    }

    /// Whether the scan has findings to judge.
    pub fn is_complete(&self) -> bool {
        matches!(self, ScanState::Complete(_))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<ImageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_scan_status: Option<ScanStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_scan_findings: Option<ImageScanFindings>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatus {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScanFindings {
    /// How many findings ECR says the scan has, by severity: the list must
    /// hold that many, or the scan is unusable (pages ended early, or the
    /// list was left out).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub finding_severity_counts: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    pub findings: Vec<BasicFinding>,
    #[serde(default)]
    pub enhanced_findings: Vec<EnhancedFinding>,
    #[serde(default, deserialize_with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub image_scan_completed_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub vulnerability_source_updated_at: Option<DateTime<Utc>>,
}

/// A basic-scanning finding (Clair-style CVE list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicFinding {
    #[serde(default)]
    pub name: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default)]
    pub severity: CompactString,
    #[serde(default)]
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub key: CompactString,
    #[serde(default)]
    pub value: Option<CompactString>,
}

impl BasicFinding {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_deref())
    }
}

/// An enhanced-scanning (Amazon Inspector) finding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnhancedFinding {
    #[serde(default)]
    pub severity: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CompactString>,
    /// `YES`, `NO` or `PARTIAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix_available: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_vulnerability_details: Option<PackageVulnerabilityDetails>,
    /// `YES` or `NO`: whether a public exploit is known (ECR's and
    /// Inspector's `exploitAvailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exploit_available: Option<CompactString>,
    /// The EPSS score, where the finding carries one: Inspector's own
    /// findings do (`epss.score`); ECR's `DescribeImageScanFindings` does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<Epss>,
}

impl EnhancedFinding {
    /// Whether the finding says a public exploit is known.
    pub fn exploitable(&self) -> bool {
        // AWS writes `YES` or `NO`: those are decided without trimming.
        self.exploit_available.as_deref().is_some_and(|v| match v {
            "YES" => true,
            "NO" => false,
            other => other.trim().eq_ignore_ascii_case("YES"),
        })
    }
}

/// The Exploit Prediction Scoring System score of a finding's CVE (0 to 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Epss {
    pub score: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageVulnerabilityDetails {
    #[serde(default)]
    pub vulnerability_id: CompactString,
    #[serde(default)]
    pub vulnerable_packages: Vec<VulnerablePackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VulnerablePackage {
    #[serde(default)]
    pub name: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<CompactString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in_version: Option<CompactString>,
}

impl ScanReport {
    /// Merges pages of one image's findings into one report (the first page's
    /// status and identity, every page's findings).
    pub fn merge(pages: impl IntoIterator<Item = ScanReport>) -> ScanReport {
        let mut merged: Option<ScanReport> = None;
        for page in pages {
            match merged.as_mut() {
                None => merged = Some(page),
                Some(m) => {
                    if let Some(more) = page.image_scan_findings {
                        let into = m.image_scan_findings.get_or_insert_with(Default::default);
                        into.findings.extend(more.findings);
                        into.enhanced_findings.extend(more.enhanced_findings);
                        into.image_scan_completed_at =
                            into.image_scan_completed_at.or(more.image_scan_completed_at);
                    }
                }
            }
        }
        merged.unwrap_or_default()
    }

    pub fn status(&self) -> Option<&str> {
        self.image_scan_status.as_ref().map(|s| s.status.as_str())
    }

    pub fn state(&self) -> ScanState {
        ScanState::parse(self.status().unwrap_or_default())
    }

    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.image_scan_findings.as_ref().and_then(|f| f.image_scan_completed_at)
    }

    /// Why a report's findings cannot be judged as complete, if they cannot:
    /// it has no findings object at all, or ECR's count for a severity
    /// disagrees with how many findings of that severity it lists (pages
    /// ended early, or the list was left out). Equal totals are not enough:
    /// a CRITICAL counted and only a LOW listed is a CRITICAL not seen. A
    /// report without counts lists what it lists.
    pub fn incompleteness(&self) -> Option<String> {
        let Some(f) = self.image_scan_findings.as_ref() else {
            return Some("the scan has no findings object, so what it found is unknown".to_owned());
        };
        if f.finding_severity_counts.is_empty() {
            return None;
        }
        let mut listed: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        let severities =
            f.findings.iter().map(|x| &x.severity).chain(f.enhanced_findings.iter().map(|x| &x.severity));
        for severity in severities {
            *listed.entry(severity.as_str().to_uppercase()).or_default() += 1;
        }
        let counted: std::collections::BTreeMap<String, u64> =
            f.finding_severity_counts.iter().map(|(k, v)| (k.to_uppercase(), *v)).collect();
        counted.keys().chain(listed.keys()).find_map(|severity| {
            let (c, l) =
                (counted.get(severity).copied().unwrap_or(0), listed.get(severity).copied().unwrap_or(0));
            (c != l).then(|| format!("ECR counts {c} {severity} finding(s) but the scan lists {l}"))
        })
    }
}

/// Deserialises a timestamp given as an ISO 8601 string or as epoch seconds
/// (integer or fractional).
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(f64),
    }
    use serde::de::Error;
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Text(s)) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .or_else(|_| {
                // The AWS CLI prints `2024-05-01T10:20:30.123000+00:00`, which is
                // RFC 3339; some tools drop the offset.
                chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%dT%H:%M:%S%.f").map(|n| Some(n.and_utc()))
            })
            .map_err(|_| D::Error::custom(format!("invalid timestamp {s:?}"))),
        Some(Raw::Number(n)) => {
            let secs = n.floor();
            let nanos = ((n - secs) * 1e9).round() as u32;
            Utc.timestamp_opt(secs as i64, nanos.min(999_999_999))
                .single()
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("timestamp {n} out of range")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_iso_strings_and_epoch_numbers() {
        let iso: ImageScanFindings =
            serde_json::from_str(r#"{"imageScanCompletedAt":"2026-11-28T10:00:00.500000+00:00"}"#).unwrap();
        let epoch: ImageScanFindings =
            serde_json::from_str(r#"{"imageScanCompletedAt":1795860000.5}"#).unwrap();
        assert_eq!(iso.image_scan_completed_at, epoch.image_scan_completed_at);
        assert!(
            serde_json::from_str::<ImageScanFindings>(r#"{"imageScanCompletedAt":"yesterday"}"#).is_err()
        );
    }

    #[test]
    fn pages_merge_into_one_report() {
        let page = |names: &[&str]| ScanReport {
            image_scan_status: Some(ScanStatus { status: "COMPLETE".into(), description: None }),
            image_scan_findings: Some(ImageScanFindings {
                findings: names
                    .iter()
                    .map(|n| BasicFinding { name: (*n).into(), ..Default::default() })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let merged = ScanReport::merge([page(&["a", "b"]), page(&["c"])]);
        let names: Vec<_> =
            merged.image_scan_findings.unwrap().findings.into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
