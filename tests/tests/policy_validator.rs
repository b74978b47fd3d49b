//! policy-validator against the local AWS emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use policy_validator::{Deps, Event, Outcome, handle};
use shipgate_tests::Fleet;

const KEY: &str = "policies/payments-api/appsec.yaml";
const LKG: &str = "policies/payments-api/appsec.lkg.json";

fn now() -> DateTime<Utc> {
    "2026-11-28T09:31:00Z".parse().unwrap()
}

/// The event as the function receives it: decoded by `shipgate_aws::serve`.
fn typed(payload: serde_json::Value) -> Event {
    shipgate_aws::decode(payload).unwrap()
}

async fn deps(fleet: &Fleet) -> Deps {
    Deps::new(&fleet.sdk_for("policy-validator").await, &fleet.config)
}

fn detail_types(events: &[serde_json::Value]) -> Vec<&str> {
    events.iter().map(|e| e["detail-type"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn valid_policy_becomes_last_known_good_and_is_announced() {
    let fleet = Fleet::start().await;
    let version = fleet.put_config(KEY, "version: 1\nowner: team-payments\n").await;
    let outcome =
        handle(&deps(&fleet).await, typed(fleet.object_created(KEY, &version, "0062E99A88DC407460")), now())
            .await
            .unwrap();
    assert_eq!(outcome, Outcome::Accepted { key: KEY.into(), lkg_key: LKG.into() });

    let lkg = fleet.get_json(LKG).await.unwrap();
    assert_eq!(lkg["source"]["version_id"], version);
    assert_eq!(lkg["sha256"], shipgate_core::lkg::sha256_hex(b"version: 1\nowner: team-payments\n"));
    assert_eq!(lkg["document"]["policy"]["scan"]["wait"], "30m");

    let events = fleet.events().await;
    assert_eq!(detail_types(&events), ["Shipgate Policy Accepted"]);
    assert_eq!(events[0]["detail"]["owner"], "team-payments");
    assert_eq!(events[0]["detail"]["version_id"], version);
}

#[tokio::test]
async fn invalid_policy_is_rejected_with_every_error_and_the_previous_one_stays() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let good = fleet.put_config(KEY, "version: 1\nowner: team-payments\n").await;
    handle(&deps, typed(fleet.object_created(KEY, &good, "01")), now()).await.unwrap();
    let before = fleet.get_json(LKG).await.unwrap();

    let bad = fleet.put_config(KEY, "version: 1\nscan:\n  tresholds: {HIGH: 1}\n  wait: 13h\n").await;
    let outcome = handle(&deps, typed(fleet.object_created(KEY, &bad, "02")), now()).await.unwrap();
    let Outcome::Rejected { errors, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        errors,
        [
            "3:3: scan.tresholds: unknown key (did you mean 'thresholds'?)",
            "4:9: scan.wait: must be between 1m and 12h, got 13h"
        ]
    );
    assert_eq!(fleet.get_json(LKG).await.unwrap(), before, "the last-known-good stays");

    let events = fleet.events().await;
    assert_eq!(detail_types(&events), ["Shipgate Policy Accepted", "Shipgate Policy Rejected"]);
    assert_eq!(events[1]["detail"]["errors"].as_array().unwrap().len(), 2);
    assert_eq!(events[1]["detail"]["owner"], "team-payments", "the owner of the last-known-good is told");
}

#[tokio::test]
async fn redelivered_event_changes_nothing_and_announces_nothing() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let version = fleet.put_config(KEY, "version: 1\n").await;
    let event = fleet.object_created(KEY, &version, "0A");
    handle(&deps, typed(event.clone()), now()).await.unwrap();
    let lkg = fleet.get_json(LKG).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            handle(&deps, typed(event.clone()), now()).await.unwrap(),
            Outcome::AlreadyHandled { key: KEY.into() }
        );
    }
    assert_eq!(fleet.get_json(LKG).await.unwrap(), lkg);
    assert_eq!(detail_types(&fleet.events().await), ["Shipgate Policy Accepted"]);
}

#[tokio::test]
async fn older_upload_arriving_late_never_replaces_a_newer_one() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let v1 = fleet.put_config(KEY, "version: 1\nowner: first\n").await;
    let v2 = fleet.put_config(KEY, "version: 1\nowner: second\n").await;
    // EventBridge delivers the second upload first.
    let second =
        handle(&deps, typed(fleet.object_created(KEY, &v2, "0062E99A88DC407461")), now()).await.unwrap();
    let first =
        handle(&deps, typed(fleet.object_created(KEY, &v1, "0062E99A88DC407460")), now()).await.unwrap();
    assert!(matches!(second, Outcome::Accepted { .. }));
    assert_eq!(first, Outcome::Superseded { key: KEY.into() });
    let lkg = fleet.get_json(LKG).await.unwrap();
    assert_eq!(lkg["source"]["version_id"], v2);
    assert_eq!(lkg["document"]["policy"]["owner"], "second");
    assert_eq!(detail_types(&fleet.events().await), ["Shipgate Policy Accepted"]);
}

#[tokio::test]
async fn other_keys_and_buckets_are_ignored() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let version = fleet.put_config("routes.yaml", "routes: []\n").await;
    let outcome =
        handle(&deps, typed(fleet.object_created("routes.yaml", &version, "01")), now()).await.unwrap();
    assert!(matches!(outcome, Outcome::Ignored { .. }));
    let mut elsewhere = fleet.object_created(KEY, "v", "01");
    elsewhere["detail"]["bucket"]["name"] = "someone-elses-bucket".into();
    assert!(matches!(handle(&deps, typed(elsewhere), now()).await.unwrap(), Outcome::Ignored { .. }));
    assert!(fleet.events().await.is_empty());
}

#[tokio::test]
async fn malformed_event_is_a_clear_error() {
    let err =
        shipgate_aws::decode::<Event>(serde_json::json!({"detail-type": "Object Created"})).unwrap_err();
    assert!(err.to_string().starts_with("invalid event: missing field"), "{err}");
}

/// A 2 MiB upload: rejected by the event's `object.size`, before any GetObject
/// of it, with the owner told, and the last-known-good kept.
#[tokio::test]
async fn oversized_upload_is_rejected_by_its_size_before_it_is_read() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let good = fleet.put_config(KEY, "version: 1\nowner: team-payments\n").await;
    handle(&deps, typed(fleet.object_created(KEY, &good, "01")), now()).await.unwrap();
    let before = fleet.get_json(LKG).await.unwrap();

    let huge = format!("version: 1\n# {}\n", "x".repeat(2 * 1024 * 1024));
    let version = fleet.put_config(KEY, &huge).await;
    let mut event = fleet.object_created(KEY, &version, "02");
    event["detail"]["object"]["size"] = huge.len().into();
    let reads_before = policy_reads(&fleet);
    let outcome = handle(&deps, typed(event), now()).await.unwrap();
    assert_eq!(
        outcome,
        Outcome::Rejected {
            key: KEY.into(),
            errors: vec![format!("1:1: {KEY}: file too large: {} bytes, at most 1048576", huge.len())]
        }
    );
    assert_eq!(policy_reads(&fleet), reads_before, "the upload was not downloaded");
    assert_eq!(fleet.get_json(LKG).await.unwrap(), before, "the last-known-good stays");
    let events = fleet.events().await;
    assert_eq!(detail_types(&events), ["Shipgate Policy Accepted", "Shipgate Policy Rejected"]);
    assert_eq!(events[1]["detail"]["owner"], "team-payments");
}

/// An event that understates the size (or has none): GetObject's
/// `Content-Length` refuses it before the body is read, with the same words.
#[tokio::test]
async fn upload_larger_than_its_event_says_is_refused_from_getobjects_answer() {
    let fleet = Fleet::start().await;
    let deps = deps(&fleet).await;
    let huge = format!("version: 1\n# {}\n", "x".repeat(2 * 1024 * 1024));
    for (size, sequencer) in [(serde_json::json!(100), "03"), (serde_json::Value::Null, "04")] {
        let version = fleet.put_config(KEY, &huge).await;
        let mut event = fleet.object_created(KEY, &version, sequencer);
        event["detail"]["object"]["size"] = size;
        let outcome = handle(&deps, typed(event), now()).await.unwrap();
        let Outcome::Rejected { errors, .. } = &outcome else { panic!("{outcome:?}") };
        assert_eq!(errors, &[format!("1:1: {KEY}: file too large: {} bytes, at most 1048576", huge.len())]);
    }
}

/// GetObject requests for the policy file, as the emulator saw them.
fn policy_reads(fleet: &Fleet) -> usize {
    let requests = fleet.aws.control_get("/_shipgate/requests");
    requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap_or_default().ends_with(KEY))
        .count()
}
