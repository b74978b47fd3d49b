//! Golden tests of every notification kind, read as a person would.
//!
//! Each case renders to `tests/golden/<case>.txt` (subject, attributes, body).
//! After an intended change, regenerate with `SHIPGATE_BLESS=1 cargo test -p
//! shipgate-core --test golden` and read the diff before committing.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use shipgate_core::digest::ImageDigest;
use shipgate_core::events::PolicyRejected;
use shipgate_core::exposure::{Accepted, ExposureChanged, ExposureStatus, ExposureWindow};
use shipgate_core::gate::{Decision, GateDecisionEvent};
use shipgate_core::hooks::{HookResultEvent, HookStatus};
use shipgate_core::notify::{
    Context, Expiring, MAX_SUBJECT, Message, Outcome, render, render_chat, render_email,
};
use shipgate_core::policy::Severity;
use shipgate_core::scan::Verdict;
use shipgate_core::verdict::ScanVerdictEvent;

const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

fn digest() -> ImageDigest {
    ImageDigest::parse(DIGEST).unwrap_or_else(|e| panic!("{e}"))
}

fn cx() -> Context {
    Context { region: "us-east-1".into(), account: "123456789012".into() }
}

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_default()
}

fn cases() -> Vec<(&'static str, Outcome)> {
    let long = "team-platform-payments-settlement-reconciliation-and-ledger-export-service".to_owned();
    vec![
        ("pipeline-failed", Outcome::Pipeline { pipeline: "payments".into(), execution_id: "8b1c2d3e".into(), state: "FAILED".into(), recovered: false }),
        ("pipeline-recovered", Outcome::Pipeline { pipeline: "payments".into(), execution_id: "9c2d3e4f".into(), state: "SUCCEEDED".into(), recovered: true }),
        ("pipeline-failed-long-name", Outcome::Pipeline { pipeline: long.clone(), execution_id: "8b1c2d3e".into(), state: "FAILED".into(), recovered: false }),
        (
            "action-failed",
            Outcome::Action {
                pipeline: "payments".into(),
                execution_id: "8b1c2d3e".into(),
                stage: "Build".into(),
                action: "BuildImage".into(),
                state: "FAILED".into(),
                summary: Some("Build failed: docker build exited with 1".into()),
            },
        ),
        (
            "deployment-failed",
            Outcome::Deployment {
                deployment_id: "d-A1B2C3D4E".into(),
                application: Some("payments-api".into()),
                group: Some("payments-api-dg".into()),
                state: "FAILURE".into(),
                rollback_id: Some("d-R9B8C7D6E".into()),
                rolls_back: None,
            },
        ),
        (
            "deployment-rolled-back",
            Outcome::Deployment {
                deployment_id: "d-R9B8C7D6E".into(),
                application: Some("payments-api".into()),
                group: Some("payments-api-dg".into()),
                state: "SUCCESS".into(),
                rollback_id: None,
                rolls_back: Some("d-A1B2C3D4E".into()),
            },
        ),
        (
            "scan-failed",
            Outcome::ScanVerdict(ScanVerdictEvent {
                repository: "payments-api".into(),
                digest: digest(),
                image_tags: vec!["1.4.1".into()],
                verdict: Verdict::Fail,
                status: "COMPLETE".into(),
                counts: [(Severity::Critical, 1), (Severity::High, 3), (Severity::Medium, 0)].into(),
                reasons: vec!["1 CRITICAL finding, more than the 0 allowed (CVE-2024-3094)".into(), "3 HIGH findings, more than the 0 allowed (CVE-2026-1, CVE-2026-2, CVE-2026-3)".into()],
                policy_key: Some("policies/payments-api/appsec.lkg.json".into()),
                owner: Some("team-payments".into()),
                scanned_at: at("2026-11-28T10:00:00Z"),
                environments: BTreeMap::new(),
            }),
        ),
        (
            "gate-blocked",
            Outcome::GateDecision(GateDecisionEvent {
                decision_id: "dec-1a2b3c4d5e6f7a8b9c0d".into(),
                pipeline: "payments".into(),
                execution_id: "8b1c2d3e".into(),
                decision: Decision::Fail,
                environment: Some("prod".into()),
                repository: Some("payments-api".into()),
                image: Some(format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/payments-api@{DIGEST}")),
                digests: vec![DIGEST.into()],
                policy_key: Some("policies/payments-api/appsec.lkg.json".into()),
                owner: Some("team-payments".into()),
                reasons: vec!["privileged (app): runs privileged (privileged: true)".into(), "scan of payments-api@sha256:4f4f4f4f4f4f: 1 CRITICAL finding, more than the 0 allowed (CVE-2024-3094)".into()],
            }),
        ),
        (
            "hook-failed",
            Outcome::HookResult(HookResultEvent {
                kind: "codedeploy".into(),
                deployment: "d-A1B2C3D4E".into(),
                execution: "eyJhbGciOiJIUzI1NiJ9-AfterAllowTestTraffic".into(),
                hook: "AfterAllowTestTraffic".into(),
                status: HookStatus::Failed,
                application: Some("payments-api".into()),
                deployment_group: Some("payments-api-dg".into()),
                repository: Some("payments-api".into()),
                owner: Some("team-payments".into()),
                digests: vec![DIGEST.into()],
                reasons: vec!["image sha256:4f4f4f4f4f4f has no passing release-gate decision (was it deployed without the pipeline?)".into()],
                rollback: false,
            }),
        ),
        (
            "policy-rejected",
            Outcome::PolicyRejected(PolicyRejected {
                bucket: "shipgate-config-123456789012".into(),
                key: "policies/payments-api/appsec.yaml".into(),
                version_id: Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into()),
                owner: Some("team-payments".into()),
                errors: vec!["3:3: scan.tresholds: unknown key (did you mean 'thresholds'?)".into(), "4:9: scan.wait: must be between 1m and 12h, got 13h".into()],
                warnings: vec![],
            }),
        ),
        ("exposure-digest", Outcome::Exposure(exposure_window())),
        (
            "exceptions-expiring",
            Outcome::ExpiringExceptions {
                owner: "team-payments".into(),
                day: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default(),
                exceptions: vec![
                    Expiring { policy_key: "policies/payments-api/appsec.lkg.json".into(), id: "CVE-2023-45853".into(), package: Some("zlib".into()), expires: NaiveDate::from_ymd_opt(2026, 12, 5).unwrap_or_default(), ticket: Some("SEC-1042".into()) },
                    Expiring { policy_key: "policies/default/appsec.lkg.json".into(), id: "GHSA-xxxx-yyyy-zzzz".into(), package: None, expires: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default(), ticket: None },
                ],
            },
        ),
    ]
}

/// One owner's window after a CVE: two services exposed (one by two
/// findings), one accepted by an exception until its date.
fn exposure_window() -> ExposureWindow {
    let flip = |service: &str, status, blocking: &[&str], accepted: Vec<Accepted>| ExposureChanged {
        environment: Some("prod".into()),
        service: service.into(),
        container: "app".into(),
        image: format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/payments-api@{DIGEST}"),
        repository: "payments-api".into(),
        digest: digest(),
        status,
        seq: 1,
        since: at("2026-11-28T10:03:00Z"),
        blocking: blocking.iter().map(|b| (*b).to_owned()).collect(),
        accepted,
        owner: Some("team-payments".into()),
        policy_key: Some("policies/payments-api/appsec.lkg.json".into()),
    };
    let mut window =
        ExposureWindow::new("team-payments", at("2026-11-28T10:00:00Z"), chrono::Duration::minutes(15));
    window.changes = vec![
        flip(
            "prod/ledger",
            ExposureStatus::Passing,
            &[],
            vec![Accepted {
                id: "CVE-2026-4040".into(),
                package: Some("openssl".into()),
                expires: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
            }],
        ),
        flip(
            "prod/payments-api",
            ExposureStatus::Failing,
            &[
                "1 CRITICAL finding, more than the 0 allowed (CVE-2026-4040)",
                "CVE-2026-4041 in curl has a known exploit",
            ],
            vec![],
        ),
        flip(
            "prod/checkout",
            ExposureStatus::Failing,
            &["1 CRITICAL finding, more than the 0 allowed (CVE-2026-4040)"],
            vec![],
        ),
    ];
    window
}

fn as_text(m: &Message) -> String {
    let attributes: Vec<String> = m.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("Subject: {}\nAttributes: {}\n\n{}", m.subject, attributes.join(", "), render_email(m))
}

#[test]
fn every_message_kind_matches_its_golden_file() {
    let bless = std::env::var_os("SHIPGATE_BLESS").is_some();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatches = Vec::new();
    for (case, outcome) in cases() {
        let Some(message) = render(&outcome, &cx()) else { panic!("{case} renders nothing") };
        let text = as_text(&message);
        let path = dir.join(format!("{case}.txt"));
        if bless {
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != text {
            mismatches
                .push(format!("--- {case} (expected {})\n{expected}\n+++ rendered\n{text}", path.display()));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn messages_read_as_a_person_would() {
    for (case, outcome) in cases() {
        let Some(m) = render(&outcome, &cx()) else { panic!("{case} renders nothing") };
        assert!(m.subject.len() <= MAX_SUBJECT && m.subject.is_ascii(), "{case}: {}", m.subject);
        assert!(!m.subject.contains('\n'));
        let body = render_email(&m);
        for l in body.lines() {
            assert!(
                !l.trim_end().ends_with(':')
                    || l.trim_start().starts_with("Why")
                    || l.trim_start().starts_with("Errors")
                    || l.contains("expire soon"),
                "{case}: a field without a value: {l:?}"
            );
            assert!(!l.contains("None") && !l.contains("null") && !l.contains("Some("), "{case}: {l:?}");
            assert!(!l.trim_start().starts_with('{') && !l.contains("\":"), "{case}: raw JSON: {l:?}");
        }
        assert!(body.contains("Details: https://"), "{case}: no link");
        assert!(m.attributes.values().all(|v| !v.is_empty()));
        assert!(m.attributes.contains_key("event_type") && m.attributes.contains_key("severity"));
        let chat: serde_json::Value = serde_json::from_str(&render_chat(&m)).unwrap_or_default();
        assert_eq!(chat["version"], "1.0", "{case}");
        assert_eq!(chat["source"], "custom");
        assert_eq!(chat["content"]["title"], m.subject.as_str());
    }
}

#[test]
fn pending_and_in_progress_outcomes_are_not_messages() {
    let started = Outcome::Pipeline {
        pipeline: "p".into(),
        execution_id: "e".into(),
        state: "STARTED".into(),
        recovered: false,
    };
    assert!(render(&started, &cx()).is_none());
    let none_expiring =
        Outcome::ExpiringExceptions { owner: "o".into(), day: NaiveDate::default(), exceptions: vec![] };
    assert!(render(&none_expiring, &cx()).is_none());
}
