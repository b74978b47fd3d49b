//! notifier against the local AWS emulator: messages read back from SQS
//! subscriptions of the SNS topic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use notifier::{Config, Deps, Format, handle};
use serde_json::{Value, json};
use shipgate_core::notify::Category;
use shipgate_tests::{Fleet, Inbox};

fn now() -> DateTime<Utc> {
    "2026-11-28T08:00:00Z".parse().unwrap()
}

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Notifications {
    fleet: Fleet,
    topic_arn: String,
}

impl Notifications {
    async fn start() -> Self {
        let fleet = Fleet::start().await;
        let topic_arn = fleet.topic_arn.clone();
        Self { fleet, topic_arn }
    }

    async fn inbox(&self, name: &str, filter: Option<&str>) -> Inbox {
        self.fleet.inbox(name, filter).await
    }

    async fn deps(&self, format: Format) -> Deps {
        let config = Config {
            config_bucket: self.fleet.config.config_bucket.clone(),
            topic_arn: self.topic_arn.clone(),
            categories: Category::DEFAULTS.into_iter().collect::<BTreeSet<_>>(),
            format,
            exposure_window: chrono::Duration::minutes(15),
        };
        Deps::new(&self.fleet.sdk_for("notifier").await, &config)
    }
}

#[tokio::test]
async fn failed_pipeline_execution_sends_one_message_with_its_attributes() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let report = handle(&n.deps(Format::Email).await, sample("codepipeline-execution-failed.json"), now())
        .await
        .unwrap();
    assert_eq!(report.sent, ["[Shipgate] Pipeline payments failed"]);
    let messages = inbox.messages().await;
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["Subject"], "[Shipgate] Pipeline payments failed");
    assert!(m["Message"].as_str().unwrap().contains(
        "/codesuite/codepipeline/pipelines/payments/executions/8b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    ));
    assert_eq!(m["MessageAttributes"]["event_type"]["Value"], "pipeline.failed");
    assert_eq!(m["MessageAttributes"]["severity"]["Value"], "high");
    assert_eq!(m["MessageAttributes"]["pipeline"]["Value"], "payments");
}

#[tokio::test]
async fn the_same_event_three_times_sends_one_message() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    let mut sent = 0;
    for _ in 0..3 {
        sent += handle(&deps, sample("codepipeline-execution-failed.json"), now()).await.unwrap().sent.len();
    }
    assert_eq!(sent, 1);
    assert_eq!(inbox.messages().await.len(), 1);
}

#[tokio::test]
async fn a_severity_filter_policy_receives_only_what_it_asks_for() {
    let n = Notifications::start().await;
    let everything = n.inbox("everything", None).await;
    let critical = n.inbox("critical-only", Some(r#"{"severity": ["critical"]}"#)).await;
    let deps = n.deps(Format::Email).await;
    handle(&deps, sample("codepipeline-execution-failed.json"), now()).await.unwrap();
    handle(&deps, sample("codedeploy-deployment-failed.json"), now()).await.unwrap();
    assert_eq!(everything.messages().await.len(), 2);
    let received = critical.messages().await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["MessageAttributes"]["event_type"]["Value"], "deployment.failed");
}

#[tokio::test]
async fn first_success_after_a_failure_is_sent_and_later_successes_are_not() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    handle(&deps, sample("codepipeline-execution-succeeded.json"), now()).await.unwrap();
    handle(&deps, sample("codepipeline-execution-failed.json"), now()).await.unwrap();
    let recovered = handle(&deps, sample("codepipeline-execution-succeeded.json"), now()).await.unwrap();
    assert_eq!(recovered.sent, ["[Shipgate] Pipeline payments is passing again"]);
    let mut again = sample("codepipeline-execution-succeeded.json");
    again["detail"]["execution-id"] = "another-execution".into();
    assert!(handle(&deps, again, now()).await.unwrap().sent.is_empty());
    let subjects: Vec<String> =
        inbox.messages().await.iter().map(|m| m["Subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        subjects,
        ["[Shipgate] Pipeline payments failed", "[Shipgate] Pipeline payments is passing again"]
    );
}

#[tokio::test]
async fn shipgate_events_become_messages_and_passes_stay_quiet() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    let rejected = json!({"version": "0", "id": "r1", "detail-type": "Shipgate Policy Rejected", "source": "shipgate",
        "account": "123456789012", "time": "2026-11-28T08:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"bucket": "shipgate-config", "key": "policies/payments-api/appsec.yaml", "version_id": "v2",
            "owner": "team-payments", "errors": ["3:3: scan.tresholds: unknown key (did you mean 'thresholds'?)"], "warnings": []}});
    assert_eq!(handle(&deps, rejected, now()).await.unwrap().sent.len(), 1);
    let passed = json!({"version": "0", "id": "g1", "detail-type": "Shipgate Gate Decision", "source": "shipgate",
        "account": "123456789012", "time": "2026-11-28T08:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"decision_id": "dec-1", "pipeline": "payments", "execution_id": "e1", "decision": "PASS", "digests": [], "reasons": []}});
    assert!(handle(&deps, passed, now()).await.unwrap().sent.is_empty(), "a pass is not news by default");
    let messages = inbox.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(messages[0]["Message"].as_str().unwrap().contains("3:3: scan.tresholds"));
}

#[tokio::test]
async fn daily_schedule_reports_expiring_exceptions_once_per_owner() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    n.fleet
        .install_policy(
            "payments-api",
            "version: 1\nowner: team-payments\nscan:\n  exceptions:\n    - {id: CVE-2023-45853, package: zlib, expires: 2026-12-05, reason: r, ticket: SEC-1042}\n    - {id: CVE-2025-1, expires: 2027-06-01, reason: later}\n",
        )
        .await;
    n.fleet.install_policy("default", "version: 1\nowner: platform\n").await;
    let deps = n.deps(Format::Email).await;
    let report = handle(&deps, sample("schedule-daily.json"), now()).await.unwrap();
    assert_eq!(report.sent, ["[Shipgate] 1 policy exception of team-payments expire soon"]);
    assert!(handle(&deps, sample("schedule-daily.json"), now()).await.unwrap().sent.is_empty(), "once a day");
    let messages = inbox.messages().await;
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0]["Message"]
            .as_str()
            .unwrap()
            .contains("CVE-2023-45853 in zlib: expires 2026-12-05 (7 days left")
    );
}

#[tokio::test]
async fn chat_format_sends_the_amazon_q_custom_notification() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    handle(&n.deps(Format::Chat).await, sample("codedeploy-deployment-failed.json"), now()).await.unwrap();
    let messages = inbox.messages().await;
    let chat: Value = serde_json::from_str(messages[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!((chat["version"].as_str(), chat["source"].as_str()), (Some("1.0"), Some("custom")));
    assert!(chat["content"]["title"].as_str().unwrap().contains("payments-api"));
}

/// CodeDeploy's state-change events do not say whether a rollback is
/// involved; the deployment's rollbackInfo does, and the messages say it.
#[tokio::test]
async fn a_rollback_is_recognised_from_the_deployment_not_the_event() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    shipgate_tests::create_deployment_group(&n.fleet.sdk, "payments-api", "payments-api-dg").await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&n.fleet.sdk);
    let deploy = || {
        codedeploy
            .create_deployment()
            .application_name("payments-api")
            .deployment_group_name("payments-api-dg")
            .send()
    };
    let failed = deploy().await.unwrap().deployment_id.unwrap();
    let rollback = deploy().await.unwrap().deployment_id.unwrap();
    n.fleet.aws.control_post(
        "/_shipgate/codedeploy/rollbacks",
        &json!({"deploymentId": failed, "rollbackDeploymentId": rollback}),
    );
    let deps = n.deps(Format::Email).await;
    let mut event = sample("codedeploy-deployment-failed.json");
    event["detail"]["deploymentId"] = failed.clone().into();
    handle(&deps, event.clone(), now()).await.unwrap();
    event["detail"]["deploymentId"] = rollback.clone().into();
    event["detail"]["state"] = "SUCCESS".into();
    let report = handle(&deps, event, now()).await.unwrap();
    assert_eq!(report.sent, ["[Shipgate] Rollback of payments-api (payments-api-dg) completed"]);
    let messages = inbox.messages().await;
    assert_eq!(messages.len(), 2);
    let body = messages[0]["Message"].as_str().unwrap();
    assert!(body.contains(&format!("CodeDeploy is rolling back with deployment {rollback}")), "{body}");
    assert_eq!(messages[1]["MessageAttributes"]["event_type"]["Value"], "deployment.rolled_back");
}

/// The claim markers the notifier has written.
async fn markers(fleet: &Fleet) -> Vec<String> {
    let listed = fleet
        .s3()
        .list_objects_v2()
        .bucket(shipgate_tests::CONFIG_BUCKET)
        .prefix("state/notifier/sent/")
        .send()
        .await
        .unwrap();
    listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

/// SNS fails past the SDK's retries: the invocation fails, its claim is
/// released, and Lambda's retry a minute later sends the message, once.
#[tokio::test]
async fn a_publish_that_fails_is_sent_by_lambdas_retry() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    n.fleet.aws.inject_fault("Publish", 500, "InternalError", 3);
    let event = sample("codepipeline-execution-failed.json");
    let err = handle(&deps, event.clone(), now()).await.unwrap_err();
    assert!(err.to_string().contains("SNS Publish failed"), "{err}");
    assert!(inbox.messages().await.is_empty());

    let retry = handle(&deps, event.clone(), now() + chrono::Duration::minutes(1)).await.unwrap();
    assert_eq!(retry.sent, ["[Shipgate] Pipeline payments failed"]);
    let again = handle(&deps, event, now() + chrono::Duration::minutes(3)).await.unwrap();
    assert!(again.sent.is_empty());
    assert_eq!(inbox.messages().await.len(), 1);
}

/// A claim whose sender died before publishing: while it may still be
/// running, a redelivery fails (Lambda retries it) instead of calling the
/// message sent; once stale, of two concurrent takeovers exactly one sends.
#[tokio::test]
async fn a_dead_senders_claim_is_taken_over_once() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    let event = sample("codepipeline-execution-failed.json");
    // The claim as a sender that died right after claiming leaves it.
    n.fleet.aws.inject_fault("Publish", 500, "InternalError", 3);
    handle(&deps, event.clone(), now()).await.unwrap_err();
    let [marker] = markers(&n.fleet).await.try_into().unwrap();
    let mut claim = n.fleet.get_json(&marker).await.unwrap();
    claim["released"] = false.into();
    n.fleet.put_config(&marker, &claim.to_string()).await;

    let err = handle(&deps, event.clone(), now() + chrono::Duration::seconds(20)).await.unwrap_err();
    assert!(err.to_string().contains("another invocation is sending it"), "{err}");
    assert!(inbox.messages().await.is_empty());

    let later = now() + notifier::STALE_CLAIM + chrono::Duration::seconds(1);
    let (a, b) = tokio::join!(handle(&deps, event.clone(), later), handle(&deps, event.clone(), later));
    let sent: usize = [&a, &b].iter().map(|r| r.as_ref().map_or(0, |r| r.sent.len())).sum();
    assert_eq!(sent, 1, "{a:?} {b:?}");
    assert_eq!(inbox.messages().await.len(), 1);
}

/// Two successes racing after a failure: the per-pipeline state is updated
/// with compare-and-swap, so exactly one of them follows the failure and says
/// "passing again".
#[tokio::test]
async fn concurrent_final_states_judge_the_recovery_once() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    handle(&deps, sample("codepipeline-execution-failed.json"), now()).await.unwrap();
    let success = |execution: &str| {
        let mut event = sample("codepipeline-execution-succeeded.json");
        event["detail"]["execution-id"] = execution.into();
        event["id"] = format!("event-{execution}").into();
        event
    };
    let (a, b) =
        tokio::join!(handle(&deps, success("exec-a"), now()), handle(&deps, success("exec-b"), now()));
    let recovered = a.unwrap().sent.len() + b.unwrap().sent.len();
    assert_eq!(recovered, 1);
    let subjects: Vec<String> =
        inbox.messages().await.iter().map(|m| m["Subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(subjects.iter().filter(|s| s.contains("passing again")).count(), 1, "{subjects:?}");
}

/// The message went out and its sent marker failed to be written (every
/// attempt the SDK makes): the notifier used to fail the invocation, and
/// Lambda's retry a minute later found the claim stale and sent the message
/// again (#33). One marker failure no longer makes a duplicate.
#[tokio::test]
async fn a_sent_marker_that_fails_once_does_not_send_the_message_twice() {
    let n = Notifications::start().await;
    let inbox = n.inbox("all", None).await;
    let deps = n.deps(Format::Email).await;
    // The pipeline's last state and the claim are written; the sent
    // marker fails three times (the SDK's standard retry gives up), then
    // passes.
    n.fleet.aws.inject_fault_after("PutObject", 2, 500, "InternalError", 3);
    let event = sample("codepipeline-execution-failed.json");
    let first = handle(&deps, event.clone(), now()).await.unwrap();
    assert_eq!(first.sent.len(), 1);
    // Lambda's retry (or a redelivery) a minute later, past STALE_CLAIM.
    let later = now() + chrono::Duration::seconds(61);
    let again = handle(&deps, event, later).await.unwrap();
    assert!(again.sent.is_empty(), "{again:?}");
    assert_eq!(inbox.messages().await.len(), 1);
    assert_eq!(n.fleet.aws.calls_of("PutObject").len(), 3, "the faults were spent on the marker");
}
