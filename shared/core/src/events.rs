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
/// EventBridge's limit on a PutEvents request's entries: "less than 256KB",
/// an entry counting its `Source`, `DetailType`, `Detail` and `Resources` in
/// UTF-8 bytes (and 14 for a `Time`), as "Calculating Amazon EventBridge
/// PutEvents event entry size" says.
pub const ENTRY_LIMIT: usize = 256 * 1024;

/// `detail` cut to at most `budget` bytes of JSON, so an event with
/// thousands of violations still goes out (and what it reports is stored
/// first): the biggest list is halved, keeping its first entries (the
/// first-ranked), or, with no list to cut, the longest text, until it fits.
/// `truncated` then says what was cut, as `path: kept of total`. `None` when
/// it cannot be made to fit.
pub fn fit_detail(mut detail: serde_json::Value, budget: usize) -> Option<serde_json::Value> {
    let size = |v: &serde_json::Value| serde_json::to_string(v).map_or(usize::MAX, |t| t.len());
    let mut cut: Vec<(String, usize, usize)> = Vec::new();
    while size(&detail) > budget {
        let (path, _) = biggest(&detail, String::new())?;
        let node = detail.pointer_mut(&path)?;
        let total = match node {
            serde_json::Value::Array(items) => {
                let total = items.len();
                items.truncate(total / 2);
                total
            }
            serde_json::Value::String(text) => {
                let total = text.chars().count();
                *text = text.chars().take(total / 2).collect();
                total
            }
            _ => return None,
        };
        let kept = if let serde_json::Value::Array(items) = node { items.len() } else { total / 2 };
        match cut.iter_mut().find(|(p, _, _)| *p == path) {
            Some(entry) => entry.1 = kept,
            None => cut.push((path, kept, total)),
        }
        if let Some(object) = detail.as_object_mut() {
            let said = cut.iter().map(|(p, kept, total)| format!("{p}: {kept} of {total}").into()).collect();
            object.insert("truncated".into(), serde_json::Value::Array(said));
        }
    }
    Some(detail)
}

/// The biggest list (with something in it) or, lacking one, the longest text
/// of `value`, as a JSON pointer and its size in bytes; `truncated` itself is
/// never cut.
fn biggest(value: &serde_json::Value, at: String) -> Option<(String, usize)> {
    let own = match value {
        serde_json::Value::Array(items) if !items.is_empty() => {
            Some((at.clone(), serde_json::to_string(value).map_or(0, |t| t.len()) + usize::MAX / 2))
        }
        serde_json::Value::String(text) if text.len() > 1 => Some((at.clone(), text.len())),
        _ => None,
    };
    let children: Box<dyn Iterator<Item = (String, &serde_json::Value)>> = match value {
        serde_json::Value::Array(items) => {
            Box::new(items.iter().enumerate().map(|(i, v)| (format!("{at}/{i}"), v)))
        }
        serde_json::Value::Object(map) => Box::new(
            map.iter()
                .filter(|(k, _)| !(at.is_empty() && *k == "truncated"))
                .map(|(k, v)| (format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), v)),
        ),
        _ => Box::new(std::iter::empty()),
    };
    children.filter_map(|(path, child)| biggest(child, path)).chain(own).max_by_key(|(_, size)| *size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_too_big_keeps_the_first_entries_of_its_biggest_list_and_says_so() {
        let violations: Vec<String> =
            (0..10_000).map(|i| format!("CVE-2026-{i:05} has a known exploit")).collect();
        let detail = serde_json::json!({"digest": "sha256:ab", "verdict": {"violations": violations, "counts": [1, 2]}});
        let fitted = fit_detail(detail, 16 * 1024).unwrap();
        assert!(serde_json::to_string(&fitted).unwrap().len() <= 16 * 1024);
        let kept = fitted["verdict"]["violations"].as_array().unwrap();
        assert!(!kept.is_empty() && kept.len() < 10_000);
        assert_eq!(kept[0], "CVE-2026-00000 has a known exploit", "the first-ranked stay");
        assert_eq!(
            fitted["truncated"],
            serde_json::json!([format!("/verdict/violations: {} of 10000", kept.len())])
        );
        assert_eq!(fitted["digest"], "sha256:ab");
        assert_eq!(fitted["verdict"]["counts"], serde_json::json!([1, 2]), "small lists stay whole");
    }

    #[test]
    fn a_detail_that_fits_is_left_alone_and_one_that_cannot_is_refused() {
        let small = serde_json::json!({"a": [1, 2, 3]});
        assert_eq!(fit_detail(small.clone(), 1024), Some(small));
        let text = serde_json::json!({"message": "x".repeat(4096)});
        let cut = fit_detail(text, 1024).unwrap();
        assert!(cut["message"].as_str().unwrap().len() < 1024);
        assert_eq!(fit_detail(serde_json::json!({"n": 12345}), 4), None);
    }
}
