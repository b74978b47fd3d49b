//! scan-gate against the local AWS emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use scan_gate::{Deps, Handled, Outcome, ScanGateError, handle};
use serde_json::{Value, json};
use shipgate_core::scan::Verdict;
use shipgate_tests::{ACCOUNT, Fleet, REGION};

const REPO: &str = "payments-api";
const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
const T1: i64 = 1_795_860_000;
const T2: i64 = 1_795_863_600;

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

async fn deps(fleet: &Fleet) -> Deps {
    Deps::new(&fleet.sdk_for("scan-gate").await, &fleet.config)
}

/// The outcome of an event that must be judged (not ignored).
async fn judge(deps: &Deps, event: Value, now: DateTime<Utc>) -> Outcome {
    match handle(deps, event, now).await.unwrap() {
        Handled::Judged(outcome) => outcome,
        Handled::Ignored { ignored } => panic!("ignored: {ignored}"),
        Handled::Rejudged(r) => panic!("re-judged running images, not a scan: {r:?}"),
    }
}

fn basic_event(status: &str) -> Value {
    json!({"version": "0", "id": "e1", "detail-type": "ECR Image Scan", "source": "aws.ecr", "account": ACCOUNT,
        "time": "2026-11-28T10:00:00Z", "region": REGION,
        "resources": [format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPO}")],
        "detail": {"scan-status": status, "repository-name": REPO, "image-digest": DIGEST, "image-tags": ["1.4.0"],
            "finding-severity-counts": {"HIGH": 1}}})
}

fn findings(n: usize, severity: &str) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"name": format!("CVE-2026-{i:05}"), "severity": severity,
            "attributes": [{"key": "package_name", "value": "openssl"}]})
        })
        .collect()
}

async fn setup(policy: Option<&str>) -> Fleet {
    let fleet = Fleet::start().await;
    fleet.create_repository(REPO).await;
    if let Some(policy) = policy {
        fleet.install_policy(REPO, policy).await;
    }
    fleet
}

#[tokio::test]
async fn basic_scan_over_several_pages_is_judged_stored_and_announced() {
    let fleet = setup(Some("version: 1\nscan: {thresholds: {CRITICAL: 0, HIGH: 2000}}\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE",
        "completedAt": T1, "findings": findings(2500, "HIGH")}));

    let outcome = judge(&deps(&fleet).await, basic_event("COMPLETE"), now()).await;
    assert_eq!((outcome.verdict, outcome.stored, outcome.announced), (Verdict::Fail, true, true));
    assert_eq!(fleet.aws.calls_of("DescribeImageScanFindings").len(), 3, "1000 + 1000 + 500");

    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["verdict"]["counts"]["HIGH"], 2500);
    assert_eq!(record["verdict"]["verdict"], "FAIL");
    assert_eq!(record["announced"], true);
    assert_eq!(record["policy_key"], format!("policies/{REPO}/appsec.lkg.json"));
    let events = fleet.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Shipgate Scan Verdict");
    assert_eq!(events[0]["detail"]["verdict"], "FAIL");
    assert_eq!(events[0]["detail"]["image_tags"], json!(["1.4.0"]));
}

#[tokio::test]
async fn enhanced_scan_from_inspector_is_judged_with_the_repository_from_its_arn() {
    let fleet = setup(Some("version: 1\nscan: {only_fixable: true}\n")).await;
    let enhanced = |id: &str, severity: &str, fix: &str| {
        json!({"severity": severity, "fixAvailable": fix, "status": "ACTIVE",
        "packageVulnerabilityDetails": {"vulnerabilityId": id, "vulnerablePackages": [{"name": "xz-utils"}]}})
    };
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE", "completedAt": T1,
        "enhancedFindings": [enhanced("CVE-2024-3094", "CRITICAL", "NO"), enhanced("CVE-2024-1", "LOW", "YES")]}));
    let event = json!({"version": "0", "id": "e2", "detail-type": "Inspector2 Scan", "source": "aws.inspector2",
        "account": ACCOUNT, "time": "2026-11-28T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"scan-status": "INITIAL_SCAN_COMPLETE", "repository-name": format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{REPO}"),
            "image-digest": DIGEST, "image-tags": [], "finding-severity-counts": {"CRITICAL": 1, "TOTAL": 2}}});

    let outcome = judge(&deps(&fleet).await, event, now()).await;
    assert_eq!(
        (outcome.repository.as_str(), outcome.verdict),
        (REPO, Verdict::Pass),
        "the critical has no fix"
    );
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["verdict"]["not_fixable"], 1);
    assert_eq!(record["verdict"]["counts"]["LOW"], 1);
}

#[tokio::test]
async fn replayed_event_stores_one_verdict_and_announces_once() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let deps = deps(&fleet).await;
    let first = judge(&deps, basic_event("COMPLETE"), now()).await;
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    let later: DateTime<Utc> = "2026-11-28T12:05:00Z".parse().unwrap();
    let second = judge(&deps, basic_event("COMPLETE"), later).await;
    assert_eq!((first.stored, first.announced), (true, true));
    assert_eq!((second.stored, second.announced), (false, false));
    assert_eq!(fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap(), record);
    assert_eq!(fleet.events().await.len(), 1);
}

/// The warm path waits on AWS as little as it can: the verdict is read once
/// (beside the policy and the findings), announced, and then written once,
/// already marked announced.
#[tokio::test]
async fn a_new_verdict_is_announced_then_stored_in_one_write() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let before = fleet.aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().len();
    let outcome = judge(&deps(&fleet).await, basic_event("COMPLETE"), now()).await;
    assert_eq!((outcome.stored, outcome.announced), (true, true));
    let requests = fleet.aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().clone();
    let verdict_path = format!("/{}/verdicts/{REPO}/{DIGEST}.json", shipgate_tests::CONFIG_BUCKET);
    let writes: Vec<&str> = requests[before..]
        .iter()
        .filter(|r| {
            r["action"] == "PutEvents"
                || r["path"].as_str().is_some_and(|p| p.replace("%3A", ":") == verdict_path)
        })
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(writes, ["GetObject", "PutEvents", "PutObject"]);
    assert_eq!(fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap()["announced"], true);
}

/// The owner's queue, subscribed to the fleet's topic.
async fn owner_queue(fleet: &Fleet) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&fleet.sdk);
    let (queue, queue_arn) = shipgate_tests::create_queue(&sqs, "owner").await;
    aws_sdk_sns::Client::new(&fleet.sdk)
        .subscribe()
        .topic_arn(&fleet.topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    (sqs, queue)
}

/// `events` through the notifier, each delivered twice at once (as
/// EventBridge may); the subjects of the messages that reached `queue`.
async fn notify_all(
    fleet: &Fleet,
    events: Vec<Value>,
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
) -> Vec<String> {
    let notifier = notifier::Deps::new(&fleet.sdk_for("notifier").await, &fleet.notifier_config());
    for event in events {
        let (x, y) = tokio::join!(
            notifier::handle(&notifier, event.clone(), now()),
            notifier::handle(&notifier, event, now())
        );
        // A duplicate that finds the message still in flight fails, for Lambda to retry.
        assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
    }
    let messages = shipgate_tests::drain_queue(sqs, queue).await;
    messages.iter().filter_map(|m| m["Subject"].as_str().map(str::to_owned)).collect()
}

const FAILS_ITS_POLICY: &str = "[Shipgate] Image payments-api:1.4.0 fails its scan policy";

/// A scan with one HIGH finding under a policy that allows none, whose owner
/// reads a queue subscribed to the topic: the fleet, scan-gate's deps, the queue.
async fn failing_scan_with_owner() -> (Fleet, Deps, aws_sdk_sqs::Client, String) {
    let fleet = setup(Some("version: 1\nowner: team-payments\nscan: {thresholds: {HIGH: 0}}\n")).await;
    fleet.aws.seed_scan(
        json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1,
        "findings": findings(1, "HIGH")}),
    );
    let (sqs, queue) = owner_queue(&fleet).await;
    let deps = deps(&fleet).await;
    (fleet, deps, sqs, queue)
}

/// The verdict is announced, then S3 refuses its write (every attempt): the
/// invocation fails with nothing stored; Lambda's retry announces it again
/// and stores it, and the owner hears once.
#[tokio::test]
async fn a_verdict_announced_but_not_stored_is_announced_again_and_told_once() {
    let (fleet, deps, sqs, queue) = failing_scan_with_owner().await;
    fleet.aws.inject_fault("PutObject", 500, "InternalError", 3);
    let err = handle(&deps, basic_event("COMPLETE"), now()).await.unwrap_err();
    assert!(err.to_string().contains("PutObject"), "{err}");
    assert_eq!(fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await, None);
    let mut events = fleet.events().await;
    assert_eq!(events.len(), 1);

    let retried = judge(&deps, basic_event("COMPLETE"), now()).await;
    assert_eq!((retried.verdict, retried.stored, retried.announced), (Verdict::Fail, true, true));
    events.extend(fleet.events().await);
    assert_eq!(events.len(), 2, "announced again");
    assert_eq!(notify_all(&fleet, events, &sqs, &queue).await, [FAILS_ITS_POLICY]);
}

/// EventBridge refuses the announcement (every attempt): nothing is stored,
/// so the retry decides the verdict again and does both.
#[tokio::test]
async fn a_refused_announcement_stores_nothing_and_the_retry_does_both() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let deps = deps(&fleet).await;
    fleet.aws.inject_fault("PutEvents", 500, "InternalException", 3);
    let err = handle(&deps, basic_event("COMPLETE"), now()).await.unwrap_err();
    assert!(err.to_string().contains("PutEvents"), "{err}");
    assert_eq!(fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await, None);

    let retried = judge(&deps, basic_event("COMPLETE"), now()).await;
    assert_eq!((retried.stored, retried.announced), (true, true));
    assert_eq!(fleet.events().await.len(), 1);
    assert_eq!(fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap()["announced"], true);
}

/// A verdict stored and never announced (the version before this one stored
/// first and announced after, and could fail in between) is announced by the
/// next delivery, and marked.
#[tokio::test]
async fn a_stored_verdict_never_announced_is_announced_by_the_next_delivery() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let deps = deps(&fleet).await;
    judge(&deps, basic_event("COMPLETE"), now()).await;
    let key = format!("verdicts/{REPO}/{DIGEST}.json");
    let mut record = fleet.get_json(&key).await.unwrap();
    record["announced"] = json!(false);
    fleet.put_config(&key, &record.to_string()).await;
    fleet.events().await;

    let again = judge(&deps, basic_event("COMPLETE"), now()).await;
    assert_eq!((again.stored, again.announced), (false, true));
    assert_eq!(fleet.events().await.len(), 1);
    assert_eq!(fleet.get_json(&key).await.unwrap()["announced"], true);
}

#[tokio::test]
async fn older_scan_arriving_late_never_replaces_a_newer_verdict() {
    let fleet = setup(Some("version: 1\n")).await;
    let deps = deps(&fleet).await;
    // The rescan (T2, clean) is judged first ...
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T2, "findings": []}));
    assert!(judge(&deps, basic_event("COMPLETE"), now()).await.stored);
    // ... then the first scan's results (T1, one critical) come through late.
    fleet.aws.seed_scan(
        json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1,
        "findings": findings(1, "CRITICAL")}),
    );
    let late = judge(&deps, basic_event("COMPLETE"), now()).await;
    assert_eq!((late.stored, late.verdict), (false, Verdict::Pass));
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["scanned_at"], "2026-11-28T11:00:00Z");
    assert_eq!(fleet.events().await.len(), 1);
}

#[tokio::test]
async fn unsupported_image_fails_with_the_status_in_the_reason() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "UNSUPPORTED_IMAGE",
        "description": "The operating system and/or package manager are not supported."}));
    let outcome = judge(&deps(&fleet).await, basic_event("UNSUPPORTED_IMAGE"), now()).await;
    assert_eq!(outcome.verdict, Verdict::Fail);
    let events = fleet.events().await;
    let reason = events[0]["detail"]["reasons"][0].as_str().unwrap();
    assert!(reason.contains("UNSUPPORTED_IMAGE"), "{reason}");
}

#[tokio::test]
async fn repository_without_any_policy_fails_closed() {
    let fleet = setup(None).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let outcome = judge(&deps(&fleet).await, basic_event("COMPLETE"), now()).await;
    assert_eq!(outcome.verdict, Verdict::Fail);
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["verdict"]["violations"][0]["rule"], "no_policy");
    assert!(record.get("policy_key").is_none());
}

#[tokio::test]
async fn default_policy_applies_when_the_repository_has_none() {
    let fleet = setup(None).await;
    fleet.install_policy("default", "version: 1\nscan: {thresholds: {HIGH: 5}}\n").await;
    fleet.aws.seed_scan(
        json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1,
        "findings": findings(3, "HIGH")}),
    );
    let outcome = judge(&deps(&fleet).await, basic_event("COMPLETE"), now()).await;
    assert_eq!(outcome.verdict, Verdict::Pass);
}

#[tokio::test]
async fn throttling_is_retried_and_a_persistent_server_error_fails_the_invocation() {
    let fleet = setup(Some("version: 1\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE", "completedAt": T1, "findings": []}));
    let deps = deps(&fleet).await;
    fleet.aws.inject_fault("DescribeImageScanFindings", 400, "ThrottlingException", 1);
    assert_eq!(judge(&deps, basic_event("COMPLETE"), now()).await.verdict, Verdict::Pass);

    let other = "sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
    let mut event = basic_event("COMPLETE");
    event["detail"]["image-digest"] = other.into();
    fleet.aws.inject_fault("DescribeImageScanFindings", 500, "InternalServerException", 3);
    let err = handle(&deps, event, now()).await.unwrap_err();
    let ScanGateError::Aws(aws) = &err else { panic!("{err}") };
    assert_eq!((aws.service, aws.operation, aws.transient), ("ECR", "DescribeImageScanFindings", true));
    assert!(
        fleet.get_json(&format!("verdicts/{REPO}/{other}.json")).await.is_none(),
        "no verdict from a failure"
    );
    let diagnostic = shipgate_aws::lambda::diagnostic(&err);
    assert_eq!(diagnostic.error_type, "AwsError");
}

#[tokio::test]
async fn not_a_scan_event_is_refused_clearly() {
    let fleet = setup(Some("version: 1\n")).await;
    let mut event = basic_event("COMPLETE");
    event["detail"]["image-digest"] = "latest".into();
    let err = handle(&deps(&fleet).await, event, now()).await.unwrap_err();
    assert!(err.to_string().contains("detail.image-digest \"latest\""), "{err}");
    let err = handle(&deps(&fleet).await, json!({"detail": {}}), now()).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid event:"), "{err}");
}

/// EventBridge delivers one scan event to two invocations at once: one
/// verdict stored, and, whatever each of them announces, one message reaches
/// the owner (the notifier, also run twice at once per event, sends it once).
#[tokio::test]
async fn concurrent_deliveries_of_a_scan_store_one_verdict_and_send_one_message() {
    let (fleet, deps, sqs, queue) = failing_scan_with_owner().await;
    let (a, b) = tokio::join!(
        judge(&deps, basic_event("COMPLETE"), now()),
        judge(&deps, basic_event("COMPLETE"), now())
    );
    assert_eq!((a.verdict, b.verdict), (Verdict::Fail, Verdict::Fail));
    assert_eq!(u8::from(a.stored) + u8::from(b.stored), 1, "one verdict written");
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["verdict"]["verdict"], "FAIL");
    let events = fleet.events().await;
    assert_eq!(notify_all(&fleet, events, &sqs, &queue).await, [FAILS_ITS_POLICY]);
}

#[tokio::test]
async fn an_environment_that_judges_epss_gets_inspectors_scores() {
    let fleet =
        setup(Some("version: 1\nenvironments:\n  prod: {scan: {fail_on: {epss_at_least: 0.9}}}\n")).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE", "completedAt": T1,
        "enhancedFindings": [{"severity": "MEDIUM", "fixAvailable": "YES", "status": "ACTIVE", "epss": {"score": 0.94},
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-8008", "vulnerablePackages": [{"name": "libxml2"}]}}]}));
    let outcome = judge(&deps(&fleet).await, basic_event("ACTIVE"), now()).await;
    assert_eq!(outcome.verdict, Verdict::Pass, "the base policy does not judge EPSS");
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    let prod = &record["environments"]["prod"];
    assert_eq!(prod["verdict"], "FAIL", "{prod}");
    assert_eq!(prod["violations"][0]["rule"], "epss");
    assert_eq!(fleet.aws.calls_of("ListFindings").len(), 1);
}

/// A scan with thousands of known exploits under `fail_on.exploit_available`:
/// the verdict event would be far over EventBridge's 256 KB entry limit
/// (which the emulator enforces, as AWS does), and used to fail PutEvents,
/// every retry, then the DLQ (#33). The verdict is stored whole and the event
/// goes out with its first violations and a `truncated` note.
#[tokio::test]
async fn a_verdict_too_big_for_one_event_is_stored_and_announced_cut() {
    let fleet = setup(Some("version: 1\nscan: {thresholds: {}, fail_on: {exploit_available: true}}\n")).await;
    let findings: Vec<Value> = (0..6000)
        .map(|i| {
            json!({"severity": "LOW", "fixAvailable": "YES", "status": "ACTIVE", "exploitAvailable": "YES",
            "packageVulnerabilityDetails": {"vulnerabilityId": format!("CVE-2026-{i:05}"),
                "vulnerablePackages": [{"name": format!("package-with-a-long-name-{i:05}")}]}})
        })
        .collect();
    fleet.aws.seed_scan(
        json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE", "completedAt": T1,
        "enhancedFindings": findings}),
    );
    let outcome = judge(&deps(&fleet).await, basic_event("ACTIVE"), now()).await;
    assert_eq!(outcome.verdict, Verdict::Fail);
    let record = fleet.get_json(&format!("verdicts/{REPO}/{DIGEST}.json")).await.unwrap();
    assert_eq!(record["verdict"]["violations"].as_array().unwrap().len(), 6000, "stored whole");
    let events = fleet.events().await;
    let verdicts: Vec<&Value> =
        events.iter().filter(|e| e["detail-type"] == "Shipgate Scan Verdict").collect();
    assert_eq!(verdicts.len(), 1);
    let cut = verdicts[0]["detail"]["truncated"].to_string();
    assert!(cut.contains("of 6000"), "{cut}");
}
