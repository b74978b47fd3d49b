//! deploy-hooks against the local AWS emulator, with a real HTTP server on
//! 127.0.0.1 as the test listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use deploy_hooks::{Config, Deps, Response, handle, run_hook};
use serde_json::{Value, json};
use shipgate_aws::Deadline;
use shipgate_aws::codedeploy::CodeDeploy;
use shipgate_aws::ecr::Ecr;
use shipgate_aws::ecs::Ecs;
use shipgate_core::hooks::HookStatus;
use shipgate_tests::{ACCOUNT, Fleet, ListenerMode, REGION, TestListener};

const REPO: &str = "payments-api";
const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
const POLICY: &str = "version: 1\nowner: team-payments\ndeploy:\n  checks:\n    - {path: /healthz, expect_status: 200, timeout: 1s, attempts: 2, hook: AfterAllowTestTraffic}\n";

/// An Inspector client these tests never reach.
fn unused_inspector() -> shipgate_aws::clients::OnFirstUse<aws_sdk_inspector2::Client> {
    let sdk =
        aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
    shipgate_aws::clients::OnFirstUse::new(&sdk, aws_sdk_inspector2::Client::new)
}

fn deadline() -> Deadline {
    Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500))
}

struct Hooks {
    fleet: Fleet,
    task_definition: String,
}

/// Registers a payments-api task definition of these (container, image)
/// pairs; its ARN.
async fn register(fleet: &Fleet, containers: &[(&str, &str)]) -> String {
    register_on(fleet, containers, None).await
}

/// [`register`] with a `runtimePlatform` of `cpu` on Linux.
async fn register_on(
    fleet: &Fleet,
    containers: &[(&str, &str)],
    cpu: Option<aws_sdk_ecs::types::CpuArchitecture>,
) -> String {
    use aws_sdk_ecs::types::{OsFamily, RuntimePlatform};
    let mut request = aws_sdk_ecs::Client::new(&fleet.sdk).register_task_definition().family("payments-api");
    if let Some(cpu) = cpu {
        request = request.runtime_platform(
            RuntimePlatform::builder().cpu_architecture(cpu).operating_system_family(OsFamily::Linux).build(),
        );
    }
    for (name, image) in containers {
        request = request.container_definitions(shipgate_tests::compliant_container(name, image));
    }
    let registered = request.send().await.unwrap();
    registered.task_definition.unwrap().task_definition_arn.unwrap()
}

/// Puts `payments-api@digest` in ECR (a scanned linux/amd64 image).
fn in_ecr(fleet: &Fleet, digest: &str) {
    fleet.aws.seed_scan(
        json!({"repositoryName": REPO, "imageDigest": digest, "status": "COMPLETE", "findings": []}),
    );
}

impl Hooks {
    async fn start(policy: &str) -> Self {
        let fleet = Fleet::start().await;
        fleet.install_policy(REPO, policy).await;
        fleet.create_repository(REPO).await;
        in_ecr(&fleet, DIGEST);
        let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{DIGEST}");
        let task_definition = register(&fleet, &[("app", &image)]).await;
        Self { fleet, task_definition }
    }

    async fn deps(&self, listener: Option<&TestListener>) -> Deps {
        let config = Config {
            fleet: self.fleet.config.clone(),
            test_listener: listener.map(|l| l.url.clone()),
            environment: None,
            report_margin: Duration::from_millis(2500),
            check_backoff: Duration::from_millis(10),
        };
        Deps::new(&self.fleet.sdk_for("deploy-hooks").await, &config).unwrap()
    }

    /// A CodeDeploy ECS deployment of the task definition, at `hook`.
    async fn deployment(&self, hook: &str) -> String {
        let sdk = &self.fleet.sdk;
        shipgate_tests::create_deployment_group(sdk, "payments-api", "payments-api-dg").await;
        let id = shipgate_tests::create_ecs_deployment(
            sdk,
            "payments-api",
            "payments-api-dg",
            &self.task_definition,
        )
        .await;
        self.fleet.aws.control_post(
            "/_shipgate/codedeploy/lifecycle",
            &json!({"deploymentId": id, "currentHook": hook}),
        );
        id
    }

    /// A passing release-gate decision for the digest, as release-gate writes it.
    async fn gate(&self) {
        self.gate_digests(&[DIGEST]).await;
    }

    /// One passing decision speaking for `digests` (an index and its image
    /// for the platform judged), with provenance for each.
    async fn gate_digests(&self, digests: &[&str]) {
        let key = "decisions/payments/exec-1/dec-1.json";
        let verdicts: serde_json::Map<String, Value> =
            digests.iter().map(|d| ((*d).to_owned(), json!("PASS"))).collect();
        let record = json!({"decision_id": "dec-1", "job_id": "job-1", "pipeline": "payments", "execution_id": "exec-1",
            "decided_at": "2026-11-28T12:00:00Z", "decision": "PASS", "digests": verdicts, "reasons": [],
            "violations": [], "exceptions_used": [], "announced": true, "repository_policy": false});
        self.fleet.put_config(key, &record.to_string()).await;
        for digest in digests {
            // The gate passed it on a clean scan, which ECR still holds.
            in_ecr(&self.fleet, digest);
            let provenance = json!({"digest": digest, "decision_id": "dec-1", "decision_key": key, "pipeline": "payments",
                "execution_id": "exec-1", "decided_at": "2026-11-28T12:00:00Z"});
            self.fleet.put_config(&format!("provenance/_base/{digest}.json"), &provenance.to_string()).await;
        }
    }

    fn invocation(deployment: &str) -> Value {
        json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": format!("hook-{deployment}")})
    }

    fn reports(&self) -> Vec<shipgate_tests::Call> {
        self.fleet.aws.calls_of("PutLifecycleEventHookExecutionStatus")
    }
}

async fn run(deps: &Deps, payload: Value) -> deploy_hooks::CodeDeployOutcome {
    match handle(deps, payload, deadline()).await.unwrap() {
        Response::CodeDeploy(outcome) => outcome,
        other => panic!("expected a CodeDeploy outcome, got {other:?}"),
    }
}

#[tokio::test]
async fn healthy_test_listener_succeeds() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let listener = TestListener::start(ListenerMode::Healthy).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let outcome = run(&hooks.deps(Some(&listener)).await, Hooks::invocation(&deployment)).await;
    assert_eq!(
        (outcome.status, outcome.hook.as_str(), outcome.reported_now),
        (HookStatus::Succeeded, "AfterAllowTestTraffic", true),
        "{:?}",
        outcome.reasons
    );
    assert_eq!(listener.hits(), 1);
    let reports = hooks.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].params["status"], "Succeeded");
    let events = hooks.fleet.events().await;
    assert_eq!(events[0]["detail-type"], "Shipgate Hook Result");
    assert_eq!(events[0]["detail"]["status"], "Succeeded");
    assert_eq!(events[0]["detail"]["application"], "payments-api");
}

#[tokio::test]
async fn failing_listener_fails_after_the_configured_attempts() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let listener = TestListener::start(ListenerMode::Failing).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let outcome = run(&hooks.deps(Some(&listener)).await, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed);
    assert_eq!(listener.hits(), 2, "attempts: 2");
    assert_eq!(outcome.reasons, ["check GET /healthz failed after 2 attempt(s): status 500, expected 200"]);
    assert_eq!(hooks.reports()[0].params["status"], "Failed");
}

#[tokio::test]
async fn listener_that_never_answers_fails_within_the_check_timeout() {
    let hooks = Hooks::start(&POLICY.replace("attempts: 2", "attempts: 1")).await;
    hooks.gate().await;
    let listener = TestListener::start(ListenerMode::Silent).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let outcome = run(&hooks.deps(Some(&listener)).await, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed);
    assert_eq!(outcome.reasons, ["check GET /healthz failed after 1 attempt(s): timed out after 1s"]);
}

#[tokio::test]
async fn ungated_digest_fails_without_calling_the_listener() {
    let hooks = Hooks::start(POLICY).await;
    let listener = TestListener::start(ListenerMode::Healthy).await;
    for hook in ["BeforeInstall", "AfterAllowTestTraffic"] {
        let deployment = hooks.deployment(hook).await;
        let outcome = run(&hooks.deps(Some(&listener)).await, Hooks::invocation(&deployment)).await;
        assert_eq!(outcome.status, HookStatus::Failed, "{hook}");
        assert!(outcome.reasons[0].contains("has no passing release-gate decision"), "{:?}", outcome.reasons);
    }
    assert_eq!(listener.hits(), 0);
}

#[tokio::test]
async fn checks_run_only_at_their_hook() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let listener = TestListener::start(ListenerMode::Failing).await;
    for hook in ["BeforeInstall", "AfterInstall", "BeforeAllowTraffic", "AfterAllowTraffic"] {
        let deployment = hooks.deployment(hook).await;
        let outcome = run(&hooks.deps(Some(&listener)).await, Hooks::invocation(&deployment)).await;
        assert_eq!((outcome.status, outcome.hook.as_str()), (HookStatus::Succeeded, hook));
    }
    assert_eq!(listener.hits(), 0);
}

#[tokio::test]
async fn due_checks_without_a_configured_listener_fail() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let outcome = run(&hooks.deps(None).await, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed);
    assert!(outcome.reasons[0].contains("SHIPGATE_TEST_LISTENER_URL is not configured"));
}

#[tokio::test]
async fn unknown_deployment_fails_with_a_clear_reason() {
    let hooks = Hooks::start(POLICY).await;
    let outcome = run(&hooks.deps(None).await, Hooks::invocation("d-NOSUCHDEP")).await;
    assert_eq!(outcome.status, HookStatus::Failed);
    assert_eq!(outcome.reasons, ["CodeDeploy does not know deployment d-NOSUCHDEP"]);
    assert!(!outcome.reported_now);
    assert_eq!(hooks.reports()[0].outcome, "DeploymentDoesNotExistException", "the report was attempted");
}

#[tokio::test]
async fn panic_in_a_check_still_reports_failed() {
    let hooks = Hooks::start(POLICY).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let deps = hooks.deps(None).await;
    let outcome = run_hook(&deps, &deployment, "hook-panic", deadline(), async {
        panic!("a check blew up");
        #[allow(unreachable_code)]
        deploy_hooks::HookOutcome {
            status: HookStatus::Succeeded,
            hook: String::new(),
            reasons: vec![],
            digests: vec![],
            repository: None,
            owner: None,
            application: None,
            deployment_group: None,
            rollback: false,
        }
    })
    .await
    .unwrap();
    assert_eq!(outcome.status, HookStatus::Failed);
    assert!(outcome.reasons[0].contains("internal error: a check blew up"), "{:?}", outcome.reasons);
    assert_eq!(hooks.reports()[0].params["status"], "Failed");
}

#[tokio::test(start_paused = true)]
async fn slow_dependency_reports_before_the_deadline() {
    use aws_sdk_codedeploy::operation::put_lifecycle_event_hook_execution_status::PutLifecycleEventHookExecutionStatusOutput;
    use aws_sdk_eventbridge::operation::put_events::PutEventsOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let report = mock!(aws_sdk_codedeploy::Client::put_lifecycle_event_hook_execution_status)
        .match_requests(|r| {
            r.deployment_id() == Some("d-SLOW") && r.status().is_some_and(|s| s.as_str() == "Failed")
        })
        .then_output(|| PutLifecycleEventHookExecutionStatusOutput::builder().build());
    let emit = mock!(aws_sdk_eventbridge::Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(0).build());
    // Every AWS call goes to mocks: with the clock paused, no real I/O may run.
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::Config::builder().behavior_version_latest().build());
    let deps = Deps {
        codedeploy: CodeDeploy::new(mock_client!(aws_sdk_codedeploy, RuleMode::Sequential, [&report])),
        ecs: Ecs::new(aws_sdk_ecs::Client::from_conf(
            aws_sdk_ecs::Config::builder().behavior_version_latest().build(),
        )),
        ecr: Ecr::new(aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::Config::builder().behavior_version_latest().build(),
        )),
        inspector: unused_inspector(),
        http: shipgate_aws::http::client(shipgate_aws::http::public_roots()).unwrap(),
        bucket: shipgate_aws::s3::Bucket::new(s3, "unused"),
        bus: shipgate_aws::events::Bus::new(
            mock_client!(aws_sdk_eventbridge, RuleMode::Sequential, [&emit]),
            "shipgate",
        ),
        probe: None,
        environment: None,
    };
    let budget = Deadline::from_remaining(Duration::from_secs(300), Duration::from_millis(2500));
    let start = tokio::time::Instant::now();
    let outcome = run_hook(&deps, "d-SLOW", "hook-slow", budget, async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        unreachable!("the dependency never answers in time")
    })
    .await
    .unwrap();
    assert_eq!(outcome.status, HookStatus::Failed);
    assert!(outcome.reasons[0].contains("ran out of time"));
    assert_eq!(report.num_calls(), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(300) - Duration::from_millis(2500));
}

fn ecs_event() -> Value {
    serde_json::from_str(include_str!("../../events/ecs-native-hook-post-test-traffic.json")).unwrap()
}

#[tokio::test]
async fn ecs_native_hook_answers_in_the_response() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap();
    hooks.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": hooks.task_definition}),
    );
    let listener = TestListener::start(ListenerMode::Healthy).await;
    let response = handle(&hooks.deps(Some(&listener)).await, event.clone(), deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap(), json!({"hookStatus": "SUCCEEDED"}));
    assert_eq!(listener.hits(), 1, "POST_TEST_TRAFFIC_SHIFT runs the AfterAllowTestTraffic checks");

    let failing = TestListener::start(ListenerMode::Failing).await;
    let response = handle(&hooks.deps(Some(&failing)).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap(), json!({"hookStatus": "FAILED"}));
    assert!(hooks.reports().is_empty(), "ECS hooks answer in the response, not through CodeDeploy");
}

#[tokio::test]
async fn ecs_native_hook_of_an_ungated_image_fails() {
    let hooks = Hooks::start(POLICY).await;
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap();
    hooks.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": hooks.task_definition}),
    );
    let response = handle(&hooks.deps(None).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "FAILED");
}

#[tokio::test]
async fn neither_kind_of_invocation_is_refused() {
    let hooks = Hooks::start(POLICY).await;
    let err = handle(&hooks.deps(None).await, json!({"hello": "world"}), deadline()).await.unwrap_err();
    assert!(err.to_string().starts_with("invalid event: not a deployment hook invocation"), "{err}");
}

/// ECS resolves an image referenced by tag to a digest when it creates the
/// service revision; that digest is what runs, so it is what must be gated.
#[tokio::test]
async fn ecs_native_provenance_uses_the_digest_the_service_revision_resolved() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let tagged = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}:1.4.1");
    let task_definition = register(&hooks.fleet, &[("app", &tagged)]).await;
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap();
    hooks.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition,
            "containerImages": [{"containerName": "app", "image": tagged, "imageDigest": DIGEST}]}),
    );
    let listener = TestListener::start(ListenerMode::Healthy).await;
    let response = handle(&hooks.deps(Some(&listener)).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "SUCCEEDED");
}

/// On a rollback ECS re-invokes the traffic-shift hooks with the weights
/// pointing back to the previous revision: answered SUCCEEDED at once, said
/// in the hook-result event, whatever the checks would say.
#[tokio::test]
async fn ecs_native_rollback_is_never_blocked() {
    let hooks = Hooks::start(POLICY).await;
    let mut event = ecs_event();
    let target = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap().to_owned();
    event["lifecycleStage"] = "PRODUCTION_TRAFFIC_SHIFT".into();
    event["executionDetails"]["productionTrafficWeights"] = json!({target.clone(): 0,
        "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/payments-api/1": 100});
    // Ungated, unknown to ECS and with a failing listener: every check would fail.
    let failing = TestListener::start(ListenerMode::Failing).await;
    let response = handle(&hooks.deps(Some(&failing)).await, event.clone(), deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "SUCCEEDED");
    assert_eq!(failing.hits(), 0);
    let events = hooks.fleet.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail"]["rollback"], true);
    assert_eq!(events[0]["detail"]["status"], "Succeeded");

    // The same stage moving traffic to the target is not a rollback.
    event["executionDetails"]["productionTrafficWeights"] = json!({target: 100,
        "arn:aws:ecs:us-east-1:123456789012:service-revision/prod/payments-api/1": 0});
    let response = handle(&hooks.deps(Some(&failing)).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "FAILED");
}

/// A hook configured for an environment the policy does not define fails
/// closed, naming the ones it does; it never falls back to the base policy.
#[tokio::test]
async fn an_environment_the_policy_does_not_define_fails_the_hook() {
    let policy = format!("{POLICY}environments:\n  prod: {{deploy: {{require_gate_decision: true}}}}\n");
    let hooks = Hooks::start(&policy).await;
    hooks.gate().await;
    let listener = TestListener::start(ListenerMode::Healthy).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let mut deps = hooks.deps(Some(&listener)).await;
    deps.environment = Some("prd".into());
    let outcome = run(&deps, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed);
    assert!(
        outcome.reasons[0].contains("environment \"prd\" is not one the policy defines (prod)"),
        "{:?}",
        outcome.reasons
    );
    assert_eq!(listener.hits(), 0);
}

/// Each image is judged by its own repository's policy: a sidecar whose
/// repository waives gate decisions does not waive them for the app.
#[tokio::test]
async fn each_image_is_judged_by_its_own_repositorys_policy() {
    let hooks = Hooks::start(POLICY).await;
    hooks.fleet.install_policy("sidecar", "version: 1\ndeploy:\n  require_gate_decision: false\n").await;
    let ungated = "sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
    in_ecr(&hooks.fleet, ungated);
    let image =
        |repo: &str, digest: &str| format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repo}@{digest}");
    let task_definition =
        register(&hooks.fleet, &[("sidecar", &image("sidecar", DIGEST)), ("app", &image(REPO, ungated))])
            .await;
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap();
    hooks.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition}),
    );
    let response = handle(&hooks.deps(None).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "FAILED");
    let events = hooks.fleet.events().await;
    let reasons = events[0]["detail"]["reasons"].to_string();
    assert!(reasons.contains("sha256:0f0f0f0f0f0f has no passing release-gate decision"), "{reasons}");
}

/// A decision opens the hooks of its own environment only: a PASS decided
/// for the base policy (or dev) does not open the prod hooks.
#[tokio::test]
async fn a_decision_for_another_environment_does_not_open_the_hook() {
    let policy = format!("{POLICY}environments:\n  prod: {{scan: {{thresholds: {{MEDIUM: 0}}}}}}\n");
    let hooks = Hooks::start(&policy).await;
    hooks.gate().await; // decided without an environment
    let listener = TestListener::start(ListenerMode::Healthy).await;
    let deployment = hooks.deployment("AfterAllowTestTraffic").await;
    let mut prod = hooks.deps(Some(&listener)).await;
    prod.environment = Some("prod".into());
    let outcome = run(&prod, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed, "{:?}", outcome.reasons);
    assert!(outcome.reasons[0].contains("has no passing release-gate decision"), "{:?}", outcome.reasons);
}

/// CodeDeploy answers every report attempt after `delay` (paused clock),
/// after checks that used the hook's whole budget: the report has what is
/// left (the margin, less the response slack) for all its attempts, so it
/// lands when CodeDeploy is merely slow and gives up when it never answers in
/// time, before Lambda's deadline either way, and nothing is announced for a
/// report that did not land.
#[tokio::test(start_paused = true)]
async fn a_slow_report_lands_or_gives_up_before_the_lambda_deadline() {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    let remaining = Duration::from_secs(300);
    for (delay, lands) in [(Duration::from_millis(900), true), (Duration::from_secs(30), false)] {
        let http = shipgate_tests::SlowHttp::new(delay);
        let emit = mock!(aws_sdk_eventbridge::Client::put_events).then_output(|| {
            aws_sdk_eventbridge::operation::put_events::PutEventsOutput::builder()
                .failed_entry_count(0)
                .build()
        });
        let s3 =
            aws_sdk_s3::Client::from_conf(aws_sdk_s3::Config::builder().behavior_version_latest().build());
        let deps = Deps {
            codedeploy: CodeDeploy::connect(&http.sdk_config()),
            ecs: Ecs::new(aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::Config::builder().behavior_version_latest().build(),
            )),
            ecr: Ecr::new(aws_sdk_ecr::Client::from_conf(
                aws_sdk_ecr::Config::builder().behavior_version_latest().build(),
            )),
            inspector: unused_inspector(),
            http: shipgate_aws::http::client(shipgate_aws::http::public_roots()).unwrap(),
            bucket: shipgate_aws::s3::Bucket::new(s3, "unused"),
            bus: shipgate_aws::events::Bus::new(
                mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, [&emit]),
                "shipgate",
            ),
            probe: None,
            environment: None,
        };
        let deadline = Deadline::from_remaining(remaining, Duration::from_millis(2500));
        let start = tokio::time::Instant::now();
        let outcome = run_hook(&deps, "d-SLOWREPORT", "hook-slow-report", deadline, async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            unreachable!("the checks never finish in time")
        })
        .await;
        assert!(
            start.elapsed() <= remaining - shipgate_aws::deadline::RESPONSE_SLACK,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(outcome.is_ok(), lands, "{delay:?}: {outcome:?}");
        assert_eq!(emit.num_calls(), usize::from(lands), "announced only what was reported");
    }
}

/// A hook delivered twice: the first delivery reports Failed (the image had
/// no gate decision yet); by the redelivery the gate has passed it, but
/// CodeDeploy refuses the second report as already completed, so nothing is
/// announced for it. One `Shipgate Hook Result`, the one reported, carrying
/// the hook execution id messages are deduplicated on.
#[tokio::test]
async fn a_duplicate_hook_delivery_announces_nothing_it_did_not_report() {
    let hooks = Hooks::start(POLICY).await;
    let deployment = hooks.deployment("BeforeInstall").await;
    let deps = hooks.deps(None).await;
    let first = run(&deps, Hooks::invocation(&deployment)).await;
    assert_eq!((first.status, first.reported_now), (HookStatus::Failed, true));
    hooks.gate().await;
    let second = run(&deps, Hooks::invocation(&deployment)).await;
    assert_eq!((second.status, second.reported_now), (HookStatus::Succeeded, false));
    let results: Vec<Value> = hooks
        .fleet
        .events()
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "Shipgate Hook Result")
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["detail"]["status"], "Failed");
    assert_eq!(results[0]["detail"]["execution"], format!("hook-{deployment}"));
    let statuses: Vec<Value> = hooks.reports().iter().map(|c| c.params["status"].clone()).collect();
    assert_eq!(statuses, ["Failed", "Succeeded"], "the second report was refused, not missing");
}

/// An image index gated for Graviton (the decision speaks for the index and
/// its arm64 image) opens an ARM64 task's hooks, whether ECS reports the
/// index digest or resolved the arm64 image; the same index in an X86_64
/// task runs the amd64 image, which never passed, and is stopped.
#[tokio::test]
async fn an_index_gated_for_arm64_opens_arm64_tasks_only() {
    use aws_sdk_ecs::types::CpuArchitecture;
    let hooks = Hooks::start("version: 1\n").await;
    let index = hooks.fleet.push_image_index(REPO, "1.6.0", &["linux/amd64", "linux/arm64"]).await;
    hooks.gate_digests(&[&index.digest, index.child("linux/arm64")]).await;
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{}", index.digest);
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap().to_owned();
    let cases = [
        (Some(CpuArchitecture::Arm64), index.digest.as_str(), "SUCCEEDED"),
        (Some(CpuArchitecture::Arm64), index.child("linux/arm64"), "SUCCEEDED"),
        (None, index.digest.as_str(), "FAILED"),
    ];
    for (cpu, reported, expect) in cases {
        let task_definition = register_on(&hooks.fleet, &[("app", &image)], cpu.clone()).await;
        hooks.fleet.aws.control_post(
            "/_shipgate/ecs/service-revisions",
            &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition,
                "containerImages": [{"containerName": "app", "image": image, "imageDigest": reported}]}),
        );
        let response = handle(&hooks.deps(None).await, event.clone(), deadline()).await.unwrap();
        assert_eq!(
            serde_json::to_value(&response).unwrap()["hookStatus"],
            expect,
            "{cpu:?} reporting {reported}"
        );
    }
    let events = hooks.fleet.events().await;
    let reasons = events.last().unwrap()["detail"]["reasons"].to_string();
    let amd64 = &index.child("linux/amd64")[..19];
    assert!(
        reasons.contains(&format!(
            "runs {amd64} on a host of this task's platform, which has no passing release-gate decision"
        )),
        "{reasons}"
    );
}

/// An X86_64 task may land on a host of any x86-64 level: an index with a
/// `v3` image opens the hook only when that image passed the gate too.
#[tokio::test]
async fn an_index_opens_only_when_every_image_a_host_may_pull_passed() {
    let hooks = Hooks::start("version: 1\n").await;
    let index = hooks.fleet.push_image_index(REPO, "1.7.0", &["linux/amd64", "linux/amd64/v3"]).await;
    hooks.gate_digests(&[&index.digest, index.child("linux/amd64")]).await;
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{}", index.digest);
    let event = ecs_event();
    let revision = event["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap().to_owned();
    let task_definition = register_on(&hooks.fleet, &[("app", &image)], None).await;
    hooks.fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition,
            "containerImages": [{"containerName": "app", "image": image, "imageDigest": index.digest}]}),
    );
    let response = handle(&hooks.deps(None).await, event, deadline()).await.unwrap();
    assert_eq!(serde_json::to_value(&response).unwrap()["hookStatus"], "FAILED");
    let events = hooks.fleet.events().await;
    let reasons = events.last().unwrap()["detail"]["reasons"].to_string();
    assert!(reasons.contains(&format!("runs {}", &index.child("linux/amd64/v3")[..19])), "{reasons}");
}

/// A console deployment reuses a gated digest in a task definition the gate
/// never saw, with `privileged: true`: deploy-hooks judges the task
/// definition being deployed, and stops it at BeforeInstall.
#[tokio::test]
async fn a_gated_digest_in_a_privileged_task_definition_is_stopped() {
    let mut hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{DIGEST}");
    let mut container = shipgate_tests::compliant_container("app", &image);
    container.privileged = Some(true);
    let registered = aws_sdk_ecs::Client::new(&hooks.fleet.sdk)
        .register_task_definition()
        .family("payments-api")
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    hooks.task_definition = registered.task_definition.unwrap().task_definition_arn.unwrap();
    let deployment = hooks.deployment("BeforeInstall").await;
    let outcome = run(&hooks.deps(None).await, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed, "{:?}", outcome.reasons);
    assert_eq!(outcome.reasons, ["privileged (app): runs privileged (privileged: true)"]);
}

/// A digest that passed the gate when it was built, and has a critical
/// finding today: deploying it again is judged on today's findings.
#[tokio::test]
async fn a_digest_that_passed_once_but_fails_today_is_stopped() {
    let hooks = Hooks::start(POLICY).await;
    hooks.gate().await;
    hooks.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "COMPLETE",
        "findings": [{"name": "CVE-2026-5050", "severity": "CRITICAL", "attributes": []}]}));
    let deployment = hooks.deployment("BeforeInstall").await;
    let outcome = run(&hooks.deps(None).await, Hooks::invocation(&deployment)).await;
    assert_eq!(outcome.status, HookStatus::Failed, "{:?}", outcome.reasons);
    assert_eq!(outcome.reasons.len(), 1, "{:?}", outcome.reasons);
    assert!(
        outcome.reasons[0].starts_with(&format!("today's scan of {REPO}@{}: 1 CRITICAL", &DIGEST[..19])),
        "{:?}",
        outcome.reasons
    );
}

/// CodeDeploy's rollback of a failed deployment restores what ran before:
/// never blocked, whatever the checks would say of it.
#[tokio::test]
async fn a_codedeploy_rollback_is_never_blocked() {
    let hooks = Hooks::start(POLICY).await;
    let failed = hooks.deployment("AfterAllowTestTraffic").await;
    let rollback = hooks.deployment("BeforeInstall").await;
    hooks.fleet.aws.control_post(
        "/_shipgate/codedeploy/rollbacks",
        &json!({"deploymentId": failed, "rollbackDeploymentId": rollback}),
    );
    // Ungated, and no listener for the policy's check: every check would fail.
    let outcome = run(&hooks.deps(None).await, Hooks::invocation(&rollback)).await;
    assert_eq!(outcome.status, HookStatus::Succeeded, "{:?}", outcome.reasons);
    assert!(outcome.reasons[0].contains("never blocks a rollback"), "{:?}", outcome.reasons);
    assert_eq!(hooks.fleet.events().await[0]["detail"]["rollback"], true);
}
