//! Exposure through the emulator, each function as its role: deploy-hooks
//! records what completed deployments run, scan-gate re-judges running
//! images on Inspector findings, accepted policies and the daily schedule,
//! and the notifier tells each owner once per window.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shipgate_aws::Deadline;
use shipgate_core::exposure::RunningService;
use shipgate_tests::{ACCOUNT, Fleet, Inbox, REGION};

const REPO: &str = "payments-api";
const POLICY: &str = "version: 1\nowner: team-payments\nscan:\n  thresholds: {critical: 0, high: 0}\n";
const EXCEPTED: &str = "version: 1\nowner: team-payments\nscan:\n  thresholds: {critical: 0, high: 0}\n  exceptions:\n    - {id: CVE-2026-4040, expires: 2026-12-31, reason: not reachable from the API}\n";

fn at(t: &str) -> DateTime<Utc> {
    t.parse().unwrap()
}

fn now() -> DateTime<Utc> {
    at("2026-11-28T10:00:00Z")
}

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn image(repository: &str, digest: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}@{digest}")
}

fn deadline() -> Deadline {
    Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500))
}

/// The fleet with each function's dependencies, as deployed.
struct World {
    fleet: Fleet,
    hooks: deploy_hooks::Deps,
    scans: scan_gate::Deps,
    notifier: notifier::Deps,
}

impl World {
    async fn start() -> Self {
        let fleet = Fleet::start().await;
        let config = deploy_hooks::Config {
            fleet: fleet.config.clone(),
            test_listener: None,
            environment: Some("prod".into()),
            report_margin: Duration::from_millis(2500),
            check_backoff: Duration::from_millis(10),
        };
        let hooks = deploy_hooks::Deps::new(&fleet.sdk_for("deploy-hooks").await, &config).unwrap();
        let scans = scan_gate::Deps::new(&fleet.sdk_for("scan-gate").await, &fleet.config);
        let notifier = notifier::Deps::new(&fleet.sdk_for("notifier").await, &fleet.notifier_config());
        Self { fleet, hooks, scans, notifier }
    }

    /// Puts `repository@digest` in ECR, scanned, with these CVEs (id, severity).
    async fn scanned(&self, repository: &str, digest: &str, cves: &[(&str, &str)]) {
        // Created on first use; already there after.
        let ecr = aws_sdk_ecr::Client::new(&self.fleet.sdk);
        let _ = ecr.create_repository().repository_name(repository).send().await;
        let findings: Vec<Value> =
            cves.iter().map(|(id, severity)| json!({"name": id, "severity": severity})).collect();
        self.fleet.aws.seed_scan(json!({"repositoryName": repository, "imageDigest": digest,
            "status": "COMPLETE", "completedAt": at("2026-11-27T09:00:00Z").timestamp(), "findings": findings}));
    }

    /// A completed CodeDeploy deployment of `service` (in `cluster`) running
    /// `repository@digest`, handed to deploy-hooks as EventBridge delivers
    /// the SUCCESS state change.
    async fn deploy(
        &self,
        service: &str,
        repository: &str,
        digest: &str,
        time: &str,
    ) -> deploy_hooks::Recording {
        use aws_sdk_codedeploy::types::{
            AppSpecContent, ComputePlatform, EcsService, RevisionLocation, RevisionLocationType,
        };
        let ecs = aws_sdk_ecs::Client::new(&self.fleet.sdk);
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("app")
            .memory(256)
            .image(image(repository, digest))
            .build();
        let td = ecs.register_task_definition().family(service).container_definitions(container).send().await;
        let td = td.unwrap().task_definition.unwrap().task_definition_arn.unwrap();
        let codedeploy = aws_sdk_codedeploy::Client::new(&self.fleet.sdk);
        let _ = codedeploy
            .create_application()
            .application_name(service)
            .compute_platform(ComputePlatform::Ecs)
            .send()
            .await;
        let _ = codedeploy
            .create_deployment_group()
            .application_name(service)
            .deployment_group_name(format!("{service}-dg"))
            .service_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/codedeploy"))
            .ecs_services(EcsService::builder().cluster_name("prod").service_name(service).build())
            .send()
            .await;
        let appspec = format!(
            "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"{td}\"\n        LoadBalancerInfo: {{ContainerName: app, ContainerPort: 8080}}\n"
        );
        let revision = RevisionLocation::builder()
            .revision_type(RevisionLocationType::AppSpecContent)
            .app_spec_content(AppSpecContent::builder().content(appspec).build())
            .build();
        let id = codedeploy
            .create_deployment()
            .application_name(service)
            .deployment_group_name(format!("{service}-dg"))
            .revision(revision)
            .send()
            .await
            .unwrap()
            .deployment_id
            .unwrap();
        let event = succeeded(&id, service, time);
        match deploy_hooks::handle(&self.hooks, event, deadline()).await.unwrap() {
            deploy_hooks::Response::Recorded(recording) => recording,
            other => panic!("not a recording: {other:?}"),
        }
    }

    async fn running(&self, service: &str) -> Option<RunningService> {
        let record = self.fleet.get_json(&format!("running/prod/prod/{service}.json")).await?;
        Some(serde_json::from_value(record).unwrap())
    }

    async fn index(&self, digest: &str) -> Vec<String> {
        let index = self.fleet.get_json(&format!("running-by-digest/{digest}.json")).await;
        index.map(|i| serde_json::from_value(i["services"].clone()).unwrap()).unwrap_or_default()
    }

    async fn rejudge(&self, event: Value, now: DateTime<Utc>) -> scan_gate::exposure::Rejudged {
        match scan_gate::handle(&self.scans, event, now).await.unwrap() {
            scan_gate::Handled::Rejudged(r) => r,
            other => panic!("not a re-judging: {other:?}"),
        }
    }

    /// Hands every `Shipgate Exposure Changed` event on the bus to the
    /// notifier (twice each: EventBridge delivers at least once); how many.
    async fn deliver(&self, now: DateTime<Utc>) -> usize {
        let mut delivered = 0;
        for event in self.fleet.events().await {
            if event["detail-type"] != "Shipgate Exposure Changed" {
                continue;
            }
            delivered += 1;
            for _ in 0..2 {
                let report = notifier::handle(&self.notifier, event.clone(), now).await.unwrap();
                assert!(report.sent.is_empty(), "a flip is gathered, not sent at once: {report:?}");
            }
        }
        delivered
    }

    async fn flush(&self, at: DateTime<Utc>) -> notifier::Report {
        let input = json!({"shipgate": "flush-exposure-digests", "scheduled_time": at});
        notifier::handle(&self.notifier, input, at).await.unwrap()
    }
}

fn succeeded(deployment: &str, application: &str, time: &str) -> Value {
    json!({"version": "0", "id": format!("ev-{deployment}"), "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy", "account": ACCOUNT, "time": time, "region": REGION, "resources": [],
        "detail": {"region": REGION, "application": application, "deploymentId": deployment, "state": "SUCCESS",
            "deploymentGroup": format!("{application}-dg")}})
}

/// An `Inspector2 Finding` on `repository@digest`, shaped as AWS documents it.
fn finding(repository: &str, digest: &str, cve: &str) -> Value {
    let path =
        format!("{}/../events/aws/inspector2-finding-ecr.aws-ecr-docs.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ecr = &mut event["detail"]["resources"][0]["details"]["awsEcrContainerImage"];
    ecr["repositoryName"] = repository.into();
    ecr["imageHash"] = digest.into();
    event["detail"]["title"] = format!("{cve} - openssl").into();
    event
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

#[tokio::test]
async fn ecs_native_records_at_post_production_traffic_shift_success() {
    let w = World::start().await;
    w.fleet.install_policy(REPO, "version: 1\ndeploy: {require_gate_decision: false}\n").await;
    let d = digest(7);
    w.scanned(REPO, &d, &[]).await;
    let ecs = aws_sdk_ecs::Client::new(&w.fleet.sdk);
    let container = aws_sdk_ecs::types::ContainerDefinition::builder()
        .name("app")
        .memory(256)
        .image(image(REPO, &d))
        .build();
    let td =
        ecs.register_task_definition().family("web").container_definitions(container).send().await.unwrap();
    let td = td.task_definition.unwrap().task_definition_arn.unwrap();
    let path = format!("{}/../events/ecs-native-hook-post-test-traffic.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap().to_owned();
    w.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": td}),
    );
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
/// one digest naming all of their services, and every flip is gathered
/// although the notifier's invocations race on the same windows.
#[tokio::test]
async fn a_storm_of_flips_sends_each_owner_one_digest() {
    let w = World::start().await;
    let owners = ["team-a", "team-b", "team-c"];
    let mut services = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let repository = format!("repo-{i}");
        w.fleet.install_policy(&repository, &POLICY.replace("team-payments", owner)).await;
        for j in 0..4 {
            let (service, d) = (format!("svc-{i}-{j}"), digest(100 + (i * 10 + j) as u32));
            w.scanned(&repository, &d, &[]).await;
            w.deploy(&service, &repository, &d, "2026-11-27T09:00:00Z").await;
            services.push((repository.clone(), d));
        }
    }
    let inbox = w.fleet.inbox("storm", None).await;
    for (repository, d) in &services {
        w.scanned(repository, d, &[("CVE-2026-9999", "CRITICAL")]).await;
    }
    // Every image's finding at once, as Inspector sends them.
    let judged = futures_util::future::join_all(
        services.iter().map(|(repository, d)| w.rejudge(finding(repository, d, "CVE-2026-9999"), now())),
    )
    .await;
    assert_eq!(judged.iter().map(|r| r.announced.len()).sum::<usize>(), services.len());
    // The notifier's invocations, concurrently, each delivered twice.
    let events: Vec<Value> = w.fleet.events().await;
    assert_eq!(events.len(), services.len());
    let deliveries =
        events.iter().chain(events.iter()).map(|e| notifier::handle(&w.notifier, e.clone(), now()));
    for report in futures_util::future::join_all(deliveries).await {
        assert_eq!(report.unwrap().queued.len(), 1);
    }
    let report = w.flush(at("2026-11-28T10:15:00Z")).await;
    assert_eq!(report.sent.len(), owners.len(), "{report:?}");
    let messages = bodies(&inbox).await;
    assert_eq!(messages.len(), owners.len());
    for (subject, body, attributes) in &messages {
        assert!(subject.ends_with(": 4 services running an image that fails policy"), "{subject}");
        assert_eq!(body.matches("EXPOSED: ").count(), 4, "{body}");
        assert!(owners.contains(&attributes["owner"]["Value"].as_str().unwrap()));
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
