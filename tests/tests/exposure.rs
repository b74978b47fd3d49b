//! Exposure through the emulator, each function as its role: deploy-hooks
//! records what completed deployments run, scan-gate re-judges running
//! images on Inspector findings, accepted policies and the daily schedule,
//! and the notifier tells each owner once per window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipgate_core::exposure::RunningService;
use shipgate_tests::exposure::{Storm, World, at, deadline, digest, finding, image, storm, succeeded};
use shipgate_tests::{ACCOUNT, Inbox, REGION};

const REPO: &str = "payments-api";
const POLICY: &str = "version: 1\nowner: team-payments\nscan:\n  thresholds: {critical: 0, high: 0}\n";
const EXCEPTED: &str = "version: 1\nowner: team-payments\nscan:\n  thresholds: {critical: 0, high: 0}\n  exceptions:\n    - {id: CVE-2026-4040, expires: 2026-12-31, reason: not reachable from the API}\n";

fn now() -> DateTime<Utc> {
    at("2026-11-28T10:00:00Z")
}

fn policy_accepted(key: &str) -> Value {
    json!({"version": "0", "id": "pa-1", "detail-type": "Shipgate Policy Accepted", "source": "shipgate",
        "account": ACCOUNT, "time": "2026-11-28T11:00:00Z", "region": REGION, "resources": [],
        "detail": {"bucket": shipgate_tests::CONFIG_BUCKET, "key": key, "sha256": "00", "warnings": []}})
}

fn daily(time: &str) -> Value {
    json!({"version": "0", "id": "daily", "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": ACCOUNT, "time": time, "region": REGION, "resources": [], "detail": "{}"})
}

async fn bodies(inbox: &Inbox) -> Vec<(String, String, Value)> {
    inbox
        .messages()
        .await
        .into_iter()
        .map(|m| {
            let subject = m["Subject"].as_str().unwrap_or_default().to_owned();
            let body = m["Message"].as_str().unwrap_or_default().to_owned();
            (subject, body, m["MessageAttributes"].clone())
        })
        .collect()
}

#[tokio::test]
async fn a_completed_deployment_records_what_its_service_runs_and_drops_what_it_replaced() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let (one, two) = (digest(1), digest(2));
    w.scanned(REPO, &one, &[]).await;
    w.scanned(REPO, &two, &[]).await;

    let recording = w.deploy("payments", REPO, &one, "2026-11-27T09:00:00Z").await;
    assert_eq!(recording.recorded.as_deref(), Some("running/prod/prod/payments.json"), "{recording:?}");
    let record = w.running("payments").await.unwrap();
    assert_eq!(record.environment.as_deref(), Some("prod"));
    assert_eq!(
        (record.images[0].repository.as_str(), record.images[0].digest.as_str()),
        (REPO, one.as_str())
    );
    assert_eq!(w.index(&one).await, ["running/prod/prod/payments.json"]);

    // The same SUCCESS delivered again: nothing changes.
    let first = record.deployment.clone();
    let again =
        deploy_hooks::handle(&w.hooks, succeeded(&first, "payments", "2026-11-27T09:00:00Z"), deadline());
    let deploy_hooks::Response::Recorded(again) = again.await.unwrap() else { panic!() };
    assert_eq!(again.recorded, None, "{again:?}");

    // The next release replaces it; the old digest no longer names the service.
    w.deploy("payments", REPO, &two, "2026-11-28T09:00:00Z").await;
    assert_eq!(w.running("payments").await.unwrap().images[0].digest, two);
    assert_eq!(w.index(&two).await, ["running/prod/prod/payments.json"]);
    assert!(w.index(&one).await.is_empty());

    // A late SUCCESS of the older deployment does not roll the record back.
    let late =
        deploy_hooks::handle(&w.hooks, succeeded(&first, "payments", "2026-11-27T09:00:00Z"), deadline());
    let deploy_hooks::Response::Recorded(late) = late.await.unwrap() else { panic!() };
    assert!(late.ignored.unwrap().contains("already records"));
    assert_eq!(w.running("payments").await.unwrap().images[0].digest, two);
}

/// An ECS native blue/green hook event (`POST_TEST_TRAFFIC_SHIFT`) for a
/// service revision running `payments-api@digest(n)`, scanned clean, under a
/// policy that needs no gate decision; the digest and the event.
async fn ecs_native_deployment(w: &World, n: u32) -> (String, Value) {
    w.fleet.install_policy(REPO, "version: 1\ndeploy: {require_gate_decision: false}\n").await;
    let d = digest(n);
    w.scanned(REPO, &d, &[]).await;
    let ecs = aws_sdk_ecs::Client::new(&w.fleet.sdk);
    let container = shipgate_tests::compliant_container("app", &image(REPO, &d));
    let td =
        ecs.register_task_definition().family("web").container_definitions(container).send().await.unwrap();
    let td = td.task_definition.unwrap().task_definition_arn.unwrap();
    let path = format!("{}/../events/ecs-native-hook-post-test-traffic.json", env!("CARGO_MANIFEST_DIR"));
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap().to_owned();
    w.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": td}),
    );
    (d, event)
}

#[tokio::test]
async fn ecs_native_records_at_post_production_traffic_shift_success() {
    let w = World::start().await;
    let (d, mut event) = ecs_native_deployment(&w, 7).await;
    // Before production traffic moves, nothing runs there yet.
    let response = deploy_hooks::handle(&w.hooks, event.clone(), deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "SUCCEEDED");
    assert!(w.index(&d).await.is_empty());

    event["lifecycleStage"] = "POST_PRODUCTION_TRAFFIC_SHIFT".into();
    let response = deploy_hooks::handle(&w.hooks, event.clone(), deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "SUCCEEDED");
    let service =
        shipgate_core::exposure::service_of_arn(event["executionDetails"]["serviceArn"].as_str().unwrap());
    let key = format!("running/prod/{}.json", service.unwrap());
    assert_eq!(w.index(&d).await, std::slice::from_ref(&key));
    let record: RunningService = serde_json::from_value(w.fleet.get_json(&key).await.unwrap()).unwrap();
    assert_eq!(record.images[0].digest, d);
}

/// The story the issue asks for, through the functions: a CVE lands on a
/// running image, its owner hears once; an exception with expiry is added,
/// the owner hears it is accepted until that date; the day after, it is
/// exposed again.
#[tokio::test]
async fn a_cve_after_release_tells_the_owner_once_and_an_exception_accepts_it_until_its_date() {
    let w = World::start().await;
    let inbox = w.fleet.inbox("owner", Some(r#"{"owner": ["team-payments"]}"#)).await;
    w.fleet.install_policy(REPO, POLICY).await;
    let d = digest(3);
    w.scanned(REPO, &d, &[]).await;
    w.deploy("payments", REPO, &d, "2026-11-27T09:00:00Z").await;

    // Inspector finds a critical CVE in the running image.
    w.scanned(REPO, &d, &[("CVE-2026-4040", "CRITICAL")]).await;
    let rejudged = w.rejudge(finding(REPO, &d, "CVE-2026-4040"), now()).await;
    assert_eq!(rejudged.announced, [format!("prod/prod/payments/app/{d}/1")]);
    // The same finding event again (or an update of it): no second flip.
    let again = w.rejudge(finding(REPO, &d, "CVE-2026-4040"), now()).await;
    assert!(again.announced.is_empty(), "{again:?}");
    let exposure = &w.running("payments").await.unwrap().images[0].exposure;
    assert_eq!((exposure.status.as_str(), exposure.seq, exposure.announced), ("failing", 1, true));
    assert!(exposure.blocking[0].contains("CVE-2026-4040"), "{:?}", exposure.blocking);

    assert_eq!(w.deliver(now()).await, 1);
    assert!(w.flush(at("2026-11-28T10:14:59Z")).await.sent.is_empty(), "the window is still open");
    let report = w.flush(at("2026-11-28T10:15:00Z")).await;
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let messages = bodies(&inbox).await;
    assert_eq!(messages.len(), 1);
    let (subject, body, attributes) = &messages[0];
    assert_eq!(subject, "[Shipgate] team-payments: 1 service running an image that fails policy");
    assert!(
        body.contains(&format!("EXPOSED: prod/payments in prod runs payments-api@{}", &d[..19])),
        "{body}"
    );
    assert!(body.contains("CVE-2026-4040"), "{body}");
    assert!(body.contains("rebuild the exposed images"), "{body}");
    assert_eq!(attributes["event_type"]["Value"], "exposure.exposed");
    assert_eq!(attributes["severity"]["Value"], "critical");
    // The next minute's flush sends nothing again.
    assert!(w.flush(at("2026-11-28T10:16:00Z")).await.sent.is_empty());
    assert!(inbox.messages().await.is_empty());

    // The team accepts the finding until the end of the year.
    w.fleet.install_policy(REPO, EXCEPTED).await;
    let later = at("2026-11-28T11:00:00Z");
    let rejudged = w.rejudge(policy_accepted("policies/payments-api/appsec.yaml"), later).await;
    assert_eq!(rejudged.announced, [format!("prod/prod/payments/app/{d}/2")]);
    assert_eq!(w.deliver(later).await, 1);
    w.flush(at("2026-11-28T11:15:00Z")).await;
    let messages = bodies(&inbox).await;
    assert_eq!(messages.len(), 1);
    let (subject, body, attributes) = &messages[0];
    assert_eq!(subject, "[Shipgate] team-payments: 1 service no longer exposed");
    assert!(body.contains("accepted: prod/payments in prod runs"), "{body}");
    assert!(body.contains("CVE-2026-4040 until 2026-12-31"), "{body}");
    assert_eq!(attributes["event_type"]["Value"], "exposure.cleared");

    // The daily run before the exception ends changes nothing; the one after does.
    assert!(w.rejudge(daily("2026-12-31T00:05:00Z"), at("2026-12-31T00:05:00Z")).await.announced.is_empty());
    let expired = w.rejudge(daily("2027-01-01T00:05:00Z"), at("2027-01-01T00:05:00Z")).await;
    assert_eq!(expired.announced, [format!("prod/prod/payments/app/{d}/3")]);
}

/// The daily re-judge of every image started at 10:00 and read the
/// findings then; a critical found at 10:05 was judged by its own re-judge
/// first. The daily run's PASS arrives last and must not replace the newer
/// FAIL (it used to: the owner was told "passing").
#[tokio::test]
async fn a_stale_rejudgement_never_replaces_a_newer_one() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let d = digest(4);
    w.scanned(REPO, &d, &[]).await;
    w.deploy("payments", REPO, &d, "2026-11-27T09:00:00Z").await;
    w.scanned(REPO, &d, &[("CVE-2026-4041", "CRITICAL")]).await;
    let newer = w.rejudge(finding(REPO, &d, "CVE-2026-4041"), at("2026-11-28T10:05:00Z")).await;
    assert_eq!(newer.announced, [format!("prod/prod/payments/app/{d}/1")]);
    // The findings as the 10:00 run read them, before the critical.
    w.scanned(REPO, &d, &[]).await;
    let stale = w.rejudge(daily("2026-11-28T10:00:00Z"), at("2026-11-28T10:00:00Z")).await;
    assert!(stale.announced.is_empty(), "{stale:?}");
    let exposure = &w.running("payments").await.unwrap().images[0].exposure;
    assert_eq!((exposure.status.as_str(), exposure.seq), ("failing", 1));
    assert_eq!(exposure.judged_at, Some(at("2026-11-28T10:05:00Z")));
}

#[tokio::test]
async fn an_announcement_that_failed_is_made_by_the_retry_and_only_then() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let d = digest(4);
    w.scanned(REPO, &d, &[]).await;
    w.deploy("payments", REPO, &d, "2026-11-27T09:00:00Z").await;
    w.scanned(REPO, &d, &[("CVE-2026-4040", "CRITICAL")]).await;
    // EventBridge refuses the announcement (all three of the SDK's
    // attempts): the flip is recorded but not announced, and the invocation fails.
    w.fleet.aws.inject_fault("PutEvents", 500, "InternalException", 3);
    let err = scan_gate::handle(&w.scans, finding(REPO, &d, "CVE-2026-4040"), now()).await.unwrap_err();
    assert!(err.to_string().contains("PutEvents"), "{err}");
    let exposure = w.running("payments").await.unwrap().images[0].exposure.clone();
    assert_eq!((exposure.seq, exposure.announced), (1, false));
    // Lambda's retry announces that flip (the same one, seq 1), once.
    let retried = w.rejudge(finding(REPO, &d, "CVE-2026-4040"), now()).await;
    assert_eq!(retried.announced, [format!("prod/prod/payments/app/{d}/1")]);
    assert!(w.rejudge(finding(REPO, &d, "CVE-2026-4040"), now()).await.announced.is_empty());
}

/// A CVE flips every running image of several teams at once: each owner gets
/// one digest, every flip is gathered although the invocations race on the
/// same windows, and no invocation fails for good.
#[tokio::test]
async fn a_storm_of_flips_sends_each_owner_one_digest() {
    let w = World::start().await;
    let report = storm(&w, Storm { owners: 3, per_owner: 5 }, now()).await;
    assert_eq!((report.images, report.flips), (15, 15), "{report:?}");
    assert_eq!(report.messages, 3, "{report:?}");
    assert_eq!(report.failed_invocations, 0, "{report:?}");
    assert_eq!(report.scan_gate_invocations, 15, "{report:?}");
    // Every window holds its owner's five flips, and said so.
    let windows = w
        .fleet
        .s3()
        .list_objects_v2()
        .bucket(shipgate_tests::CONFIG_BUCKET)
        .prefix("state/notifier/exposure/");
    let windows = windows.send().await.unwrap();
    assert_eq!(windows.contents().len(), 3);
    for object in windows.contents() {
        let window = w.fleet.get_json(object.key().unwrap()).await.unwrap();
        assert_eq!(window["changes"].as_array().unwrap().len(), 5, "{window}");
        assert_eq!(window["sent"], true);
    }
}

#[tokio::test]
async fn a_finding_on_an_image_nothing_runs_changes_nothing() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let rejudged = w.rejudge(finding(REPO, &digest(9), "CVE-2026-4040"), now()).await;
    assert_eq!((rejudged.services, rejudged.images), (0, 0));
    assert!(w.fleet.events().await.is_empty());
    let ec2 = json!({"version": "0", "id": "x", "detail-type": "Inspector2 Finding", "source": "aws.inspector2",
        "account": ACCOUNT, "time": "2026-11-28T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"resources": [{"type": "AWS_EC2_INSTANCE", "id": "i-1"}]}});
    let handled = scan_gate::handle(&w.scans, ec2, now()).await.unwrap();
    assert!(matches!(handled, scan_gate::Handled::Ignored { .. }), "{handled:?}");
}

/// `shipgate exposure`, run as a person would with their own credentials
/// against the emulator: what fails, by owner and environment; JSON for
/// scripts; exit 1 while something is exposed.
#[tokio::test]
async fn the_cli_lists_exposed_services_by_owner_and_environment() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let (bad, good) = (digest(5), digest(6));
    w.scanned(REPO, &bad, &[]).await;
    w.scanned(REPO, &good, &[]).await;
    w.deploy("payments", REPO, &bad, "2026-11-27T09:00:00Z").await;
    w.deploy("ledger", REPO, &good, "2026-11-27T09:00:00Z").await;
    w.scanned(REPO, &bad, &[("CVE-2026-4040", "CRITICAL")]).await;
    w.rejudge(finding(REPO, &bad, "CVE-2026-4040"), now()).await;

    let shipgate = |args: &[&str]| {
        let out = std::process::Command::new(shipgate_tests::target_dir().join("debug/shipgate"))
            .arg("exposure")
            .args(args)
            .env("AWS_ENDPOINT_URL", w.fleet.aws.endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", shipgate_tests::ADMIN_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", "shipgate-local-admin-secret")
            .env("SHIPGATE_CONFIG_BUCKET", shipgate_tests::CONFIG_BUCKET)
            .output()
            .expect("the shipgate binary is built with the workspace");
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, text, stderr) = shipgate(&[]);
    assert_eq!(code, 1, "{text}{stderr}");
    let short = &bad[..19];
    assert_eq!(
        text,
        format!(
            "team-payments\n  prod\n    EXPOSED prod/payments (app) runs payments-api@{short}, since 2026-11-28 10:00 UTC\n              - 1 CRITICAL finding, more than the 0 allowed (CVE-2026-4040)\n1 running image(s) fail today's policy, across 2 recorded service(s).\n"
        )
    );
    let (code, json, _) = shipgate(&["--format", "json", "--all"]);
    assert_eq!(code, 1);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["services"], 2);
    let statuses: Vec<(&str, &str)> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["service"].as_str().unwrap(), i["status"].as_str().unwrap()))
        .collect();
    // The ledger image was never judged again: passing since its deployment, owner unknown.
    assert_eq!(statuses, [("prod/payments", "failing"), ("prod/ledger", "passing")]);

    // The bucket unreadable (wrong key): exit 2, saying why.
    let out = std::process::Command::new(shipgate_tests::target_dir().join("debug/shipgate"))
        .args(["exposure", "--bucket", shipgate_tests::CONFIG_BUCKET])
        .env("AWS_ENDPOINT_URL", w.fleet.aws.endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "AKIANOBODY")
        .env("AWS_SECRET_ACCESS_KEY", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ListObjectsV2"), "{out:?}");
}

/// Fail closed: a running image whose repository no policy covers any more
/// is failing, saying so; a schedule input that is not the exposure
/// schedule's is refused naming what is wrong.
#[tokio::test]
async fn no_policy_fails_closed_and_bad_schedule_input_is_named() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, POLICY).await;
    let d = digest(8);
    w.scanned(REPO, &d, &[]).await;
    w.deploy("payments", REPO, &d, "2026-11-27T09:00:00Z").await;
    w.fleet
        .s3()
        .delete_object()
        .bucket(shipgate_tests::CONFIG_BUCKET)
        .key(format!("policies/{REPO}/appsec.lkg.json"))
        .send()
        .await
        .unwrap();
    let rejudged = w.rejudge(daily("2026-11-29T00:05:00Z"), now()).await;
    assert_eq!(rejudged.announced.len(), 1, "{rejudged:?}");
    let exposure = &w.running("payments").await.unwrap().images[0].exposure;
    assert_eq!(exposure.status.as_str(), "failing");
    assert!(
        exposure.blocking[0].contains("no accepted policy for repository payments-api"),
        "{:?}",
        exposure.blocking
    );

    let err = notifier::handle(
        &w.notifier,
        json!({"shipgate": "flush-everything", "scheduled_time": now()}),
        now(),
    );
    assert!(err.await.unwrap_err().to_string().contains("unknown request \"flush-everything\""));
    let err = notifier::handle(&w.notifier, json!({"shipgate": "flush-exposure-digests"}), now());
    assert!(err.await.unwrap_err().to_string().contains("scheduled_time"));
}

/// The storm (`make storm`) runs scan-gate and the notifier at the
/// concurrency the template reserves with `ReserveConcurrency=true`, and a
/// first deploy reserves none.
#[tokio::test]
async fn the_storm_runs_at_the_concurrency_the_template_reserves() {
    use shipgate_tests::exposure::{NOTIFIER_CONCURRENCY, SCAN_GATE_CONCURRENCY};
    let reserved =
        shipgate_tests::Fleet::start_with([("ReserveConcurrency".into(), "true".into())].into()).await;
    assert_eq!(reserved.deployed("scan-gate").reserved_concurrency, Some(SCAN_GATE_CONCURRENCY as u64));
    assert_eq!(reserved.deployed("notifier").reserved_concurrency, Some(NOTIFIER_CONCURRENCY as u64));
    let first = shipgate_tests::Fleet::start().await;
    assert_eq!(first.deployed("scan-gate").reserved_concurrency, None);
}

/// The SUCCESS rule hears every deployment in the Region: a Lambda
/// deployment's completes too, and is ignored with its reason, not failed
/// into the dead-letter queue.
#[tokio::test]
async fn a_completed_lambda_deployment_is_ignored_not_failed() {
    let w = World::start().await;
    let sdk = &w.fleet.sdk;
    shipgate_tests::create_deployment_group_of(sdk, "orders", "orders-dg", None).await;
    let appspec = "version: 0.0\nResources:\n  - orders:\n      Type: AWS::Lambda::Function\n      Properties: {Name: orders, Alias: live, CurrentVersion: \"1\", TargetVersion: \"2\"}\n";
    let revision = shipgate_tests::appspec_content(appspec);
    let id = shipgate_tests::create_deployment_of(sdk, "orders", "orders-dg", revision).await;
    let recording = w.recorded(succeeded(&id, "orders", "2026-11-27T09:00:00Z")).await;
    assert_eq!(recording.recorded, None);
    assert!(
        recording.ignored.as_deref().is_some_and(|r| r.contains("not an ECS deployment")),
        "{recording:?}"
    );
}

/// Production traffic moved and the checks passed, but the running record
/// could not be written (S3 failing past the SDK's retries): ECS used to be
/// told SUCCEEDED and never called that hook again, so what the service runs
/// was never recorded (#33). deploy-hooks now asks ECS to call again for the
/// record alone, and the next call records it.
#[tokio::test]
async fn a_record_that_fails_at_post_production_traffic_shift_is_written_on_the_callback() {
    let w = World::start().await;
    let (d, mut event) = ecs_native_deployment(&w, 8).await;
    event["lifecycleStage"] = "POST_PRODUCTION_TRAFFIC_SHIFT".into();
    // Every attempt the SDK makes at the first write of the record fails.
    w.fleet.aws.inject_fault("PutObject", 500, "InternalError", 3);
    let response =
        serde_json::to_value(deploy_hooks::handle(&w.hooks, event.clone(), deadline()).await.unwrap())
            .unwrap();
    assert_eq!(response["hookStatus"], "IN_PROGRESS", "{response}");
    assert_eq!(response["hookDetails"]["shipgateRecordOnly"], true);
    assert!(w.index(&d).await.is_empty(), "nothing recorded yet");
    // ECS calls again with the hook details it was given.
    event["hookDetails"] = response["hookDetails"].clone();
    let response =
        serde_json::to_value(deploy_hooks::handle(&w.hooks, event.clone(), deadline()).await.unwrap())
            .unwrap();
    assert_eq!(response["hookStatus"], "SUCCEEDED", "{response}");
    assert_eq!(w.index(&d).await.len(), 1, "recorded on the callback");
}
