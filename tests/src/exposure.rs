//! The exposure world: the fleet with deploy-hooks, scan-gate and the
//! notifier in process, each as its role, and what drives them (completed
//! deployments, Inspector findings, the notifier's schedule). The
//! integration tests use it, and [`storm`] runs one CVE across many running
//! images for the benchmark.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use shipgate_aws::Deadline;
use shipgate_core::exposure::RunningService;

use crate::{ACCOUNT, Fleet, REGION};

pub fn at(t: &str) -> DateTime<Utc> {
    t.parse().unwrap()
}

/// A distinct, well-formed digest per `n`.
pub fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

pub fn image(repository: &str, digest: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}@{digest}")
}

pub fn deadline() -> Deadline {
    Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500))
}

/// The fleet with each function's dependencies, as deployed (deploy-hooks
/// for the `prod` environment).
#[derive(Debug)]
pub struct World {
    pub fleet: Fleet,
    pub hooks: deploy_hooks::Deps,
    pub scans: scan_gate::Deps,
    pub notifier: notifier::Deps,
}

impl World {
    pub async fn start() -> Self {
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
    pub async fn scanned(&self, repository: &str, digest: &str, cves: &[(&str, &str)]) {
        // Created on first use; already there after.
        let ecr = aws_sdk_ecr::Client::new(&self.fleet.sdk);
        let _ = ecr.create_repository().repository_name(repository).send().await;
        let findings: Vec<Value> =
            cves.iter().map(|(id, severity)| json!({"name": id, "severity": severity})).collect();
        self.fleet.aws.seed_scan(json!({"repositoryName": repository, "imageDigest": digest,
            "status": "COMPLETE", "completedAt": at("2026-11-27T09:00:00Z").timestamp(), "findings": findings}));
    }

    /// A completed CodeDeploy deployment of ECS service `prod/<service>`
    /// running `repository@digest`, handed to deploy-hooks as EventBridge
    /// delivers the SUCCESS state change at `time`.
    pub async fn deploy(
        &self,
        service: &str,
        repository: &str,
        digest: &str,
        time: &str,
    ) -> deploy_hooks::Recording {
        let ecs = aws_sdk_ecs::Client::new(&self.fleet.sdk);
        let container = aws_sdk_ecs::types::ContainerDefinition::builder()
            .name("app")
            .memory(256)
            .image(image(repository, digest))
            .build();
        let td = ecs.register_task_definition().family(service).container_definitions(container).send().await;
        let td = td.unwrap().task_definition.unwrap().task_definition_arn.unwrap();
        let (sdk, group) = (&self.fleet.sdk, format!("{service}-dg"));
        crate::create_deployment_group_of(sdk, service, &group, Some(("prod", service))).await;
        let id = crate::create_ecs_deployment(sdk, service, &group, &td).await;
        self.recorded(succeeded(&id, service, time)).await
    }

    /// deploy-hooks' answer to a deployment state change.
    pub async fn recorded(&self, event: Value) -> deploy_hooks::Recording {
        match deploy_hooks::handle(&self.hooks, event, deadline()).await.unwrap() {
            deploy_hooks::Response::Recorded(recording) => recording,
            other => panic!("not a recording: {other:?}"),
        }
    }

    /// The running record of ECS service `prod/<service>` in `prod`.
    pub async fn running(&self, service: &str) -> Option<RunningService> {
        let record = self.fleet.get_json(&format!("running/prod/prod/{service}.json")).await?;
        Some(serde_json::from_value(record).unwrap())
    }

    /// The running keys the digest index names for `digest`.
    pub async fn index(&self, digest: &str) -> Vec<String> {
        let index = self.fleet.get_json(&format!("running-by-digest/{digest}.json")).await;
        index.map(|i| serde_json::from_value(i["services"].clone()).unwrap()).unwrap_or_default()
    }

    /// scan-gate's re-judging for `event` (a finding, a policy, the schedule).
    pub async fn rejudge(&self, event: Value, now: DateTime<Utc>) -> scan_gate::exposure::Rejudged {
        match scan_gate::handle(&self.scans, event, now).await.unwrap() {
            scan_gate::Handled::Rejudged(r) => r,
            other => panic!("not a re-judging: {other:?}"),
        }
    }

    /// Hands every `Shipgate Exposure Changed` event on the bus to the
    /// notifier (twice each: EventBridge delivers at least once); how many.
    pub async fn deliver(&self, now: DateTime<Utc>) -> usize {
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

    /// The notifier's exposure schedule firing at `at`.
    pub async fn flush(&self, at: DateTime<Utc>) -> notifier::Report {
        notifier::handle(&self.notifier, flush_input(&self.fleet, at), at).await.unwrap()
    }
}

/// What EventBridge Scheduler sends the notifier each minute: the template's
/// `ExposureDigests` input, fired at `at`.
pub fn flush_input(fleet: &crate::Fleet, at: DateTime<Utc>) -> Value {
    fleet.deployed("notifier").schedule("ExposureDigests").fire(at)
}

/// CodeDeploy's `SUCCESS` state change for a deployment of `application`.
pub fn succeeded(deployment: &str, application: &str, time: &str) -> Value {
    json!({"version": "0", "id": format!("ev-{deployment}"), "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy", "account": ACCOUNT, "time": time, "region": REGION, "resources": [],
        "detail": {"region": REGION, "application": application, "deploymentId": deployment, "state": "SUCCESS",
            "deploymentGroup": format!("{application}-dg")}})
}

/// An `Inspector2 Finding` on `repository@digest`, shaped as AWS documents it
/// (`events/aws/inspector2-finding-ecr.aws-ecr-docs.json`).
pub fn finding(repository: &str, digest: &str, cve: &str) -> Value {
    let path = crate::workspace_root().join("events/aws/inspector2-finding-ecr.aws-ecr-docs.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ecr = &mut event["detail"]["resources"][0]["details"]["awsEcrContainerImage"];
    ecr["repositoryName"] = repository.into();
    ecr["imageHash"] = digest.into();
    event["detail"]["title"] = format!("{cve} - openssl").into();
    event
}

/// How big a storm: `owners` teams, each with its own repository and policy,
/// running `per_owner` services.
#[derive(Debug, Clone, Copy)]
pub struct Storm {
    pub owners: usize,
    pub per_owner: usize,
}

/// What a storm did.
#[derive(Debug, Clone, Default)]
pub struct StormReport {
    pub images: usize,
    pub owners: usize,
    /// Flips scan-gate announced.
    pub flips: usize,
    /// SNS messages people received.
    pub messages: usize,
    pub scan_gate_invocations: usize,
    pub notifier_invocations: usize,
    /// Invocations that failed and were retried (as Lambda retries an
    /// asynchronous invocation, at most twice).
    pub retried_invocations: usize,
    /// Invocations that failed their last attempt (the dead-letter queue's).
    pub failed_invocations: usize,
    /// Writes to the config bucket during the storm, and those that lost a
    /// compare-and-swap race (412/409) and were read and decided again.
    pub writes: usize,
    pub lost_races: usize,
    /// From the first finding to the last digest sent (the window's wait
    /// excluded: the schedule fires at its end).
    pub wall: Duration,
    pub setup: Duration,
}

/// The concurrency `infra/template.yaml` reserves for scan-gate and the
/// notifier with `ReserveConcurrency=true`: at most this many invocations at
/// once (`tests/tests/exposure.rs` holds these to the template).
pub const SCAN_GATE_CONCURRENCY: usize = 20;
pub const NOTIFIER_CONCURRENCY: usize = 10;

/// One CVE lands on every running image at once: Inspector sends a finding
/// per image, scan-gate re-judges (as many at once as its reserved
/// concurrency), the notifier gathers every flip (its concurrency), and the
/// schedule sends the digests.
pub async fn storm(world: &World, size: Storm, now: DateTime<Utc>) -> StormReport {
    let started = Instant::now();
    let mut images = Vec::new();
    for owner in 0..size.owners {
        let repository = format!("team-{owner}-api");
        let policy = format!("version: 1\nowner: team-{owner}\nscan:\n  thresholds: {{critical: 0}}\n");
        world.fleet.install_policy(&repository, &policy).await;
        for n in 0..size.per_owner {
            images.push((
                repository.clone(),
                format!("svc-{owner}-{n}"),
                digest((owner * 10_000 + n) as u32),
            ));
        }
    }
    for (repository, _, d) in &images {
        world.scanned(repository, d, &[]).await;
    }
    let deployed = stream::iter(&images)
        .map(|(repository, service, d)| world.deploy(service, repository, d, "2026-11-27T09:00:00Z"))
        .buffer_unordered(SCAN_GATE_CONCURRENCY);
    assert!(deployed.all(|r| async move { r.recorded.is_some() }).await, "every deployment recorded");
    let inbox = world.fleet.inbox("storm", None).await;
    world.fleet.events().await;
    for (repository, _, d) in &images {
        world.scanned(repository, d, &[("CVE-2026-9999", "CRITICAL")]).await;
    }
    let setup = started.elapsed();

    let requests_before =
        world.fleet.aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().len();
    let started = Instant::now();
    let mut report =
        StormReport { images: images.len(), owners: size.owners, setup, ..StormReport::default() };
    let findings: Vec<Value> =
        images.iter().map(|(repository, _, d)| finding(repository, d, "CVE-2026-9999")).collect();
    let outcomes: Vec<Attempts<scan_gate::Handled>> = stream::iter(findings)
        .map(|event| invoke(move || scan_gate::handle(&world.scans, event.clone(), now)))
        .buffer_unordered(SCAN_GATE_CONCURRENCY)
        .collect()
        .await;
    for outcome in &outcomes {
        report.scan_gate_invocations += outcome.attempts;
        if let Some(scan_gate::Handled::Rejudged(r)) = &outcome.answer {
            report.flips += r.announced.len();
        }
    }
    let events = world.fleet.events().await;
    let outcomes: Vec<Attempts<notifier::Report>> = stream::iter(events)
        .map(|event| invoke(move || notifier::handle(&world.notifier, event.clone(), now)))
        .buffer_unordered(NOTIFIER_CONCURRENCY)
        .collect()
        .await;
    report.notifier_invocations = outcomes.iter().map(|o| o.attempts).sum();
    let window_end = shipgate_core::exposure::window_start(now, world.notifier.exposure_window)
        + world.notifier.exposure_window;
    let flushed =
        invoke(|| notifier::handle(&world.notifier, flush_input(&world.fleet, window_end), window_end)).await;
    report.notifier_invocations += flushed.attempts;
    report.wall = started.elapsed();
    for outcome in outcomes
        .iter()
        .map(|o| (o.attempts, o.answer.is_some()))
        .chain([(flushed.attempts, flushed.answer.is_some())])
    {
        report.retried_invocations += outcome.0 - 1;
        report.failed_invocations += usize::from(!outcome.1);
    }
    report.messages = inbox.messages().await.len();
    let requests = world.fleet.aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().clone();
    let writes: Vec<&Value> = requests[requests_before..]
        .iter()
        .filter(|r| {
            r["method"] == "PUT" && r["path"].as_str().is_some_and(|p| p.contains(crate::CONFIG_BUCKET))
        })
        .collect();
    report.writes = writes.len();
    report.lost_races = writes.iter().filter(|r| matches!(r["status"].as_u64(), Some(409 | 412))).count();
    report
}

/// An invocation and Lambda's retries of it: how many attempts, and the
/// answer of the last (none when every attempt failed).
struct Attempts<T> {
    attempts: usize,
    answer: Option<T>,
}

/// Invokes as Lambda invokes asynchronously: once, then at most twice more
/// while it fails (`EventInvokeConfig: {MaximumRetryAttempts: 2}`).
async fn invoke<T, E: std::fmt::Display, F>(mut call: impl FnMut() -> F) -> Attempts<T>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut attempts = 0;
    while attempts < 3 {
        attempts += 1;
        match call().await {
            Ok(answer) => return Attempts { attempts, answer: Some(answer) },
            Err(e) => eprintln!("invocation failed (attempt {attempts}): {e}"),
        }
    }
    Attempts { attempts, answer: None }
}
