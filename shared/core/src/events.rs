//! Shipgate's own events, put on the Shipgate bus with source `shipgate`.
//! Their `detail-type`s and `detail` shapes are a contract with the notifier
//! and with anyone who subscribes.

use serde::{Deserialize, Serialize};

pub const POLICY_ACCEPTED: &str = "Shipgate Policy Accepted";
pub const POLICY_REJECTED: &str = "Shipgate Policy Rejected";
pub const SCAN_VERDICT: &str = "Shipgate Scan Verdict";
pub const GATE_DECISION: &str = "Shipgate Gate Decision";
pub const HOOK_RESULT: &str = "Shipgate Hook Result";
/// A running image flipped between passing and failing today's policy
/// (`exposure::ExposureChanged`).
pub const EXPOSURE_CHANGED: &str = "Shipgate Exposure Changed";

/// A policy file passed validation and is now the last-known-good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyAccepted {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// `line:col: key: message`.
    pub warnings: Vec<String>,
}

/// A policy file failed validation; the previous last-known-good stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRejected {
    pub bucket: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The owner named by the last-known-good policy, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Every error, as `line:col: key: message`.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}
