//! The local replay: Shipgate's workflow, end to end, on one machine.
//!
//! The real function binaries run under cargo-lambda's Lambda runtime
//! emulator (`cargo lambda watch`) and talk to the local AWS emulator; the
//! replay plays the part of AWS around them: it uploads policies, pushes
//! commits, completes scans, runs the pipeline's gate action, walks the
//! blue/green deployment through its hooks (with a real HTTP test listener),
//! and delivers the state changes and Shipgate events to the notifier, in
//! the order AWS would. Each story states what must happen; the replay
//! passes only when every story ends as expected.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod blocked_release;
mod console_deployment;
mod daily_digest;
mod ecs_rollback;
mod expired_exception;
mod exposure;
mod finding_after_release;
mod multi_arch;
mod notifications;
mod policy;
mod release;
mod runtime;
mod sidecar;
mod ungated_deployment;

use runtime::invoke;
pub use runtime::{FunctionLogs, RuntimeEmulator};

use crate::documented::{DocumentedDeploy, documented_deploys};
use crate::{ACCOUNT, FUNCTIONS, Fleet, ListenerMode, REGION, TestListener, WEBHOOK_SECRET};

const REPO: &str = "payments-api";
const PIPELINE: &str = "payments";
const CLEAN: &str = "sha256:c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
const VULNERABLE: &str = "sha256:bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0";
const UNGATED: &str = "sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f";
const REBUILT: &str = "sha256:1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";
const EXCEPTED: &str = "sha256:e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4";
const RUNNING: &str = "sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// One invocation of one function, as it happened.
#[derive(Debug, Clone)]
pub struct Step {
    pub story: &'static str,
    pub function: &'static str,
    pub input: String,
    pub outcome: String,
    pub elapsed: Duration,
    pub ok: bool,
}

/// How a story ended.
#[derive(Debug, Clone)]
pub struct Story {
    pub name: &'static str,
    pub expected: &'static str,
    pub ok: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
    pub stories: Vec<Story>,
    /// SNS messages read back from the topic's subscription: (subject, severity).
    pub notifications: Vec<(String, String)>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.stories.is_empty() && self.stories.iter().all(|s| s.ok)
    }
}

/// Where progress goes (the demo prints it; the test keeps it quiet).
pub trait Progress {
    fn say(&mut self, line: &str);
}

impl Progress for std::io::Stderr {
    fn say(&mut self, line: &str) {
        let _ = writeln!(self, "{line}");
    }
}

/// Progress nobody reads.
#[derive(Debug)]
pub struct Quiet;

impl Progress for Quiet {
    fn say(&mut self, _: &str) {}
}

impl LocalFleet {
    /// Invokes `function` with `payload` through the runtime emulator, as Lambda's Invoke API.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Value {
        invoke(self.runtime.port, function, payload).await
    }
}

struct Replay<'p> {
    fleet: Fleet,
    runtime: RuntimeEmulator,
    report: Report,
    progress: &'p mut dyn Progress,
    notifications_queue: String,
    job_counter: u32,
}

/// The local AWS and Lambda as the demo runs them: the emulator provisioned
/// (the template's resources, each function's role, the demo's repository,
/// pipeline, routes, CodeDeploy application and an SNS subscription), a
/// healthy test listener, and the six function binaries served by the
/// runtime emulator. Dropping it stops everything.
#[derive(Debug)]
pub struct LocalFleet {
    pub fleet: Fleet,
    pub runtime: RuntimeEmulator,
    pub listener: TestListener,
    /// The SQS queue subscribed to the notification topic.
    pub notifications_queue: String,
}

/// Builds the functions and starts the local fleet as the documented deploy
/// commands leave it ([`fleet_as_documented`]), saying what it does.
pub async fn start(progress: &mut dyn Progress) -> LocalFleet {
    start_with(progress, &fleet_as_documented(), &[], FunctionLogs::Replay).await
}

/// [`start`] for a person at a terminal (`make local`): each function's
/// log lines on stderr, prefixed with its name, at INFO unless `RUST_LOG`
/// says otherwise.
pub async fn start_for_terminal(progress: &mut dyn Progress) -> LocalFleet {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    start_with(progress, &fleet_as_documented(), &[("RUST_LOG", &level)], FunctionLogs::Terminal).await
}

/// [`start`], with the functions' log level at TRACE in JSON (as Lambda's
/// `ApplicationLogLevel: TRACE` and `LogFormat: JSON` set it) and their
/// output in `log`.
pub async fn start_tracing_to(progress: &mut dyn Progress, log: &std::path::Path) -> LocalFleet {
    let extra = [("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")];
    start_with(progress, &fleet_as_documented(), &extra, FunctionLogs::File(log)).await
}

/// What the emulator stands in for each `<placeholder>` of a documented
/// command: the test listener for its URL, made-up ids for the rest.
pub fn local_value(listener: &TestListener, placeholder: &str) -> String {
    match placeholder {
        "TestListenerUrl output" => listener.url.clone(),
        other => format!("local-{}", other.split_whitespace().next().unwrap_or(other).to_lowercase()),
    }
}

/// Builds the functions and starts the local fleet deployed as `deploy`
/// says (its parameters, placeholders filled by [`local_value`]), each
/// function with its environment from the template and `extra_env`.
pub async fn start_with(
    progress: &mut dyn Progress,
    deploy: &DocumentedDeploy,
    extra_env: &[(&str, &str)],
    logs: FunctionLogs<'_>,
) -> LocalFleet {
    progress.say("==> building the six functions (cargo build)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build"])
        .args(FUNCTIONS.iter().flat_map(|f| ["--bin", *f]))
        .current_dir(crate::workspace_root())
        .status()
        .unwrap();
    assert!(status.success(), "building the functions failed");

    let listener = TestListener::start(ListenerMode::Healthy).await;
    let parameters = deploy.parameters_with(|p| local_value(&listener, p));
    progress
        .say("==> starting the local AWS emulator (moto + Shipgate extensions, enforcing IAM) on 127.0.0.1");
    progress.say(&format!("    deployed as {} says: {parameters:?}", deploy.source));
    let fleet = Fleet::start_with(parameters).await;
    progress.say(&format!("    {}", fleet.aws.endpoint()));
    let notifications_queue = provision(&fleet).await;

    progress
        .say("==> starting cargo-lambda's Lambda runtime emulator on 127.0.0.1, each function as its role");
    let env: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", fleet.aws.endpoint().to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        // The listener answers at once: retries need not wait long.
        ("SHIPGATE_CHECK_BACKOFF_MS", "50".to_owned()),
        ("RUST_LOG", std::env::var("SHIPGATE_REPLAY_RUST_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    .collect();
    let runtime = RuntimeEmulator::start(&fleet, &env, logs);
    progress.say(&format!("    http://127.0.0.1:{}", runtime.port));
    LocalFleet { fleet, runtime, listener, notifications_queue }
}

/// The fleet's parameters after every documented fleet deploy, in reading
/// order. A later `sam deploy` of the same stack keeps the parameters it does
/// not name: SAM CLI sends `UsePreviousValue` for them
/// (`samcli/commands/deploy/deploy_context.py`, `merge_parameters`, aws-sam-cli
/// 1.170.0 as `infra/requirements-sam.txt` pins it).
pub fn fleet_as_documented() -> DocumentedDeploy {
    let fleet: Vec<DocumentedDeploy> =
        documented_deploys().into_iter().filter(DocumentedDeploy::is_fleet).collect();
    assert!(!fleet.is_empty(), "the documentation deploys no fleet");
    DocumentedDeploy {
        source: fleet.iter().map(|d| d.source.as_str()).collect::<Vec<_>>().join(" then "),
        template: fleet[0].template.clone(),
        parameters: fleet.into_iter().flat_map(|d| d.parameters).collect(),
    }
}

/// The `UserParameters` the example pipeline's gate action passes, as the
/// documented pipeline deploy (its parameters, placeholders filled by
/// [`local_value`]) gives it: `infra/pipeline/template.yaml` resolved by the
/// emulator.
pub fn documented_gate_parameters(local: &LocalFleet) -> String {
    let deploy = documented_deploys()
        .into_iter()
        .find(|d| d.template == "infra/pipeline/template.yaml")
        .expect("the documentation deploys the example pipeline");
    let parameters = deploy.parameters_with(|p| local_value(&local.listener, p));
    let stages = local.fleet.aws.control_post(
        "/_shipgate/templates/resolve",
        &json!({"template": deploy.template, "parameters": parameters,
            "path": ["Resources", "Pipeline", "Properties", "Stages"]}),
    );
    let gate = parameters.get("ReleaseGateFunctionName").expect("the pipeline names the release gate");
    stages["value"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|stage| stage["Actions"].as_array().cloned().unwrap_or_default())
        .find(|action| action["Configuration"]["FunctionName"] == gate.as_str())
        .and_then(|action| action["Configuration"]["UserParameters"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no action of the pipeline invokes {gate}: {stages}"))
}

/// What one release said at each step: the gate, then each CodeDeploy hook.
#[derive(Debug)]
pub struct Release {
    pub gate: Value,
    pub hooks: Vec<(&'static str, Value)>,
    /// The test listener's requests during the hooks.
    pub listener_hits: usize,
}

/// A clean image of the example application (in the repository and
/// deployment group [`start_with`] provisions), under the example policy,
/// released through the gate (with `user_parameters`, as the pipeline's gate
/// action passes them) and both CodeDeploy hooks of its deployment.
pub async fn release(local: &LocalFleet, user_parameters: &str) -> Release {
    let fleet = &local.fleet;
    let policy = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
    fleet.install_policy(REPO, &policy).await;
    fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": CLEAN, "status": "COMPLETE",
        "completedAt": chrono::Utc::now().timestamp(), "findings": passing_findings()}));
    let mut job = gate_job(fleet, "job-documented", "execution-documented", CLEAN, None).await;
    job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        user_parameters.into();
    let gate = local.invoke("release-gate", &job).await;
    let deployment = deployment(fleet, CLEAN).await;
    let before = local.listener.hits();
    let mut hooks = Vec::new();
    for hook in ["BeforeInstall", "AfterAllowTestTraffic"] {
        fleet.aws.control_post(
            "/_shipgate/codedeploy/lifecycle",
            &json!({"deploymentId": deployment, "currentHook": hook}),
        );
        let event = json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": format!("{deployment}-{hook}")});
        hooks.push((hook, local.invoke("deploy-hooks", &event).await));
    }
    Release { gate, hooks, listener_hits: local.listener.hits() - before }
}

/// Runs every story and returns what happened.
pub async fn run(progress: &mut dyn Progress) -> Report {
    let LocalFleet { fleet, runtime, listener, notifications_queue } = start(progress).await;
    let mut replay =
        Replay { fleet, runtime, report: Report::default(), progress, notifications_queue, job_counter: 0 };
    replay.policy_story().await;
    replay.blocked_release_story().await;
    replay.release_story(&listener).await;
    replay.ungated_deployment_story(&listener).await;
    replay.notification_story().await;
    replay.daily_digest_story().await;
    replay.ecs_rollback_story().await;
    replay.finding_after_release_story().await;
    replay.expired_exception_story().await;
    replay.multi_arch_story(&listener).await;
    replay.console_deployment_story().await;
    replay.sidecar_story().await;
    replay.exposure_story().await;
    replay.report
}

/// The AWS resources the workflow needs; the queue the notification topic
/// delivers to.
async fn provision(fleet: &Fleet) -> String {
    fleet.create_repository(REPO).await;
    fleet.create_pipeline(PIPELINE).await;
    fleet.put_config("routes.yaml", &format!(
        "version: 1\nroutes:\n  - repository: \"acme/{REPO}\"\n    branches: [main]\n    paths: [\"src/**\", \"Cargo.*\"]\n    pipeline: {PIPELINE}\n"
    )).await;
    let sns = aws_sdk_sns::Client::new(&fleet.sdk);
    let sqs = aws_sdk_sqs::Client::new(&fleet.sdk);
    let queue = sqs.create_queue().queue_name("inbox").send().await.unwrap().queue_url.unwrap();
    sns.subscribe()
        .topic_arn(&fleet.topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:inbox"))
        .send()
        .await
        .unwrap();
    crate::create_deployment_group(&fleet.sdk, REPO, &format!("{REPO}-dg")).await;
    queue
}

/// GitHub's delivery of a push of `commit` to main, signed with the webhook secret.
pub fn push_request(commit: &str) -> Value {
    let mut request = sample("github-push-main.json");
    let mut body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    body["after"] = commit.into();
    body["head_commit"]["id"] = commit.into();
    let body = body.to_string();
    request["headers"]["x-hub-signature-256"] = crate::github_signature(WEBHOOK_SECRET, &body).into();
    request["body"] = body.into();
    request
}

fn sample(name: &str) -> Value {
    let path = crate::workspace_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn image(digest: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{digest}")
}

fn eventbridge(source: &str, detail_type: &str, detail: Value) -> Value {
    json!({"version": "0", "id": format!("replay-{}", &shipgate_core::lkg::sha256_hex(detail.to_string().as_bytes())[..16]), "detail-type": detail_type,
        "source": source, "account": ACCOUNT, "time": chrono::Utc::now().to_rfc3339(), "region": REGION,
        "resources": [], "detail": detail})
}

/// A blue/green deployment of `digest`: the CodeDeploy deployment's id.
pub async fn deployment(fleet: &Fleet, digest: &str) -> String {
    deployment_with_task_definition(fleet, digest).await.0
}

/// A blue/green deployment of `digest`: its task definition, and the
/// CodeDeploy deployment whose AppSpec names it, as (deployment id, task
/// definition ARN).
pub async fn deployment_with_task_definition(fleet: &Fleet, digest: &str) -> (String, String) {
    deployment_on(fleet, digest, None).await
}

/// [`deployment_with_task_definition`] of a task whose `runtimePlatform` has
/// `cpu` on Linux (`None`: unset, ECS's X86_64).
pub async fn deployment_on(
    fleet: &Fleet,
    digest: &str,
    cpu: Option<aws_sdk_ecs::types::CpuArchitecture>,
) -> (String, String) {
    deployment_of(fleet, crate::compliant_container("app", &image(digest)), cpu).await
}

/// A blue/green deployment of a task definition running `container`.
pub async fn deployment_of(
    fleet: &Fleet,
    container: aws_sdk_ecs::types::ContainerDefinition,
    cpu: Option<aws_sdk_ecs::types::CpuArchitecture>,
) -> (String, String) {
    use aws_sdk_ecs::types::{OsFamily, RuntimePlatform};
    let ecs = aws_sdk_ecs::Client::new(&fleet.sdk);
    let platform = cpu.map(|cpu| {
        RuntimePlatform::builder().cpu_architecture(cpu).operating_system_family(OsFamily::Linux).build()
    });
    let td = ecs
        .register_task_definition()
        .family(REPO)
        .container_definitions(container)
        .set_runtime_platform(platform)
        .send()
        .await
        .unwrap();
    let td_arn = td.task_definition.unwrap().task_definition_arn.unwrap();
    let deployment_id = crate::create_ecs_deployment(&fleet.sdk, REPO, &format!("{REPO}-dg"), &td_arn).await;
    (deployment_id, td_arn)
}

/// The Gate action's invocation: the build output (imageDetail.json and a
/// compliant taskdef.json) uploaded as CodePipeline would, the job seeded for
/// GetJobDetails, and the `CodePipeline.job` event.
pub async fn gate_job(
    fleet: &Fleet,
    job_id: &str,
    execution_id: &str,
    digest: &str,
    continuation: Option<&str>,
) -> Value {
    gate_job_on(fleet, job_id, execution_id, digest, continuation, None).await
}

/// The build output's task definition: one compliant container running the
/// built image, on `cpu` (`ARM64`; `None` leaves `runtimePlatform` unset,
/// ECS's X86_64).
pub fn release_taskdef(cpu: Option<&str>) -> Value {
    let mut taskdef = json!({"family": REPO, "networkMode": "awsvpc", "containerDefinitions": [{"name": "app",
        "image": "<IMAGE1_NAME>", "user": "10001", "readonlyRootFilesystem": true,
        "logConfiguration": {"logDriver": "awslogs"},
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}]}]});
    if let Some(cpu) = cpu {
        taskdef["runtimePlatform"] = json!({"cpuArchitecture": cpu, "operatingSystemFamily": "LINUX"});
    }
    taskdef
}

/// [`gate_job`] for a task definition whose `runtimePlatform` has `cpu`
/// (`ARM64`); `None` leaves it unset (ECS's X86_64).
pub async fn gate_job_on(
    fleet: &Fleet,
    job_id: &str,
    execution_id: &str,
    digest: &str,
    continuation: Option<&str>,
    cpu: Option<&str>,
) -> Value {
    gate_job_with(fleet, job_id, execution_id, digest, continuation, release_taskdef(cpu)).await
}

/// [`gate_job`] whose build output carries `taskdef`.
pub async fn gate_job_with(
    fleet: &Fleet,
    job_id: &str,
    execution_id: &str,
    digest: &str,
    continuation: Option<&str>,
    taskdef: Value,
) -> Value {
    const ARTIFACTS: &str = "codepipeline-artifacts-local";
    // Absent on first use; already there after.
    let _ = fleet.s3().create_bucket().bucket(ARTIFACTS).send().await;
    let key = format!("{PIPELINE}/BuildOutput/{job_id}.zip");
    let zip = crate::zip_files(&[
        ("imageDetail.json", json!({"ImageURI": image(digest)}).to_string()),
        ("taskdef.json", taskdef.to_string()),
    ]);
    fleet.s3().put_object().bucket(ARTIFACTS).key(&key).body(zip.into()).send().await.unwrap();
    fleet.aws.control_post(
        "/_shipgate/codepipeline/jobs",
        &json!({"jobId": job_id, "pipelineName": PIPELINE, "pipelineExecutionId": execution_id}),
    );
    let mut event = sample("codepipeline-gate-job.json");
    event["CodePipeline.job"]["id"] = job_id.into();
    let credentials = fleet.artifact_credentials(ARTIFACTS);
    event["CodePipeline.job"]["data"]["artifactCredentials"] = json!({
        "accessKeyId": credentials.access_key_id(),
        "secretAccessKey": credentials.secret_access_key(),
        "sessionToken": credentials.session_token(),
    });
    event["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"] =
        json!({"bucketName": ARTIFACTS, "objectKey": key});
    if let Some(token) = continuation {
        event["CodePipeline.job"]["data"]["continuationToken"] = token.into();
    }
    event
}

impl Replay<'_> {
    /// Invokes `function` and records the step; `check` says whether the
    /// outcome is the expected one and how to show it.
    async fn step(
        &mut self,
        story: &'static str,
        function: &'static str,
        input: &str,
        payload: &Value,
        check: impl FnOnce(&Value) -> (bool, String),
    ) -> Value {
        let start = Instant::now();
        let output = invoke(self.runtime.port, function, payload).await;
        let elapsed = start.elapsed();
        let (ok, outcome) = check(&output);
        let outcome = if ok { outcome } else { format!("UNEXPECTED: {outcome} ({output})") };
        self.progress.say(&format!(
            "    {:<14} {:<46} {} ({} ms)",
            function,
            input,
            outcome,
            elapsed.as_millis()
        ));
        self.report.steps.push(Step { story, function, input: input.to_owned(), outcome, elapsed, ok });
        output
    }

    /// Records what AWS (the emulator) saw, independently of what the
    /// function said it did: a function that only claims success fails here.
    fn verify(&mut self, story: &'static str, function: &'static str, what: String, ok: bool) {
        let outcome =
            if ok { format!("AWS shows {what}") } else { format!("UNEXPECTED: AWS does not show {what}") };
        if !ok {
            self.progress.say(&format!("    {function:<14} {outcome}"));
        }
        self.report.steps.push(Step {
            story,
            function,
            input: "check against AWS".into(),
            outcome,
            elapsed: Duration::ZERO,
            ok,
        });
    }

    /// Records what the policy engine (the code behind `shipgate scan
    /// evaluate --now`) said of the same findings at `at`.
    fn engine(
        &mut self,
        story: &'static str,
        at: chrono::DateTime<chrono::Utc>,
        verdict: &shipgate_core::scan::ScanVerdict,
        expect: shipgate_core::scan::Verdict,
    ) {
        let ok = verdict.verdict == expect;
        let said = verdict.verdict.as_str();
        let outcome = if ok { format!("verdict {said}") } else { format!("UNEXPECTED: verdict {said}") };
        let input = format!("scan evaluate --now {}", at.format("%Y-%m-%dT%H:%M:%SZ"));
        self.progress.say(&format!("    {:<14} {input:<46} {outcome}", "shipgate"));
        self.report.steps.push(Step {
            story,
            function: "shipgate",
            input,
            outcome,
            elapsed: Duration::ZERO,
            ok,
        });
    }

    fn story(&mut self, name: &'static str, expected: &'static str) {
        self.progress.say(&format!("\n--- {name}: {expected}"));
    }

    fn finish(&mut self, name: &'static str, expected: &'static str) {
        let ok = self.report.steps.iter().filter(|s| s.story == name).all(|s| s.ok);
        self.report.stories.push(Story { name, expected, ok });
    }

    async fn upload_policy(&mut self, story: &'static str, key: &str, yaml: &str, expect: &'static str) {
        let version = self.fleet.put_config(key, yaml).await;
        self.job_counter += 1;
        let event = self.fleet.object_created(key, &version, &format!("{:020X}", self.job_counter));
        self.step(story, "policy-validator", &format!("S3 Object Created {key}"), &event, |out| {
            (out["outcome"] == expect, out["outcome"].as_str().unwrap_or("?").to_owned())
        })
        .await;
        let lkg_key = key.replace("appsec.yaml", "appsec.lkg.json");
        let lkg = self.fleet.get_json(&lkg_key).await.unwrap_or_default();
        let current = lkg["source"]["version_id"] == version.as_str();
        let ok = if expect == "accepted" { current } else { !current && !lkg.is_null() };
        let what = if expect == "accepted" {
            format!("{lkg_key} at the new version")
        } else {
            format!("{lkg_key} still at the previous version")
        };
        self.verify(story, "policy-validator", what, ok);
    }

    async fn push(&mut self, story: &'static str, commit: &str) -> String {
        let request = push_request(commit);
        let out = self
            .step(
                story,
                "source-trigger",
                &format!("GitHub push {} to main", &commit[..8]),
                &request,
                |out| {
                    let body: Value =
                        serde_json::from_str(out["body"].as_str().unwrap_or("{}")).unwrap_or_default();
                    (
                        out["statusCode"] == 200,
                        format!("{} started {}", out["statusCode"], body["started"][0]["pipeline"]),
                    )
                },
            )
            .await;
        let body: Value = serde_json::from_str(out["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        let started = self.fleet.aws.calls_of("StartPipelineExecution").iter().any(|c| {
            c.outcome == "Started"
                && c.params["sourceRevisions"][0]["revisionValue"] == commit
                && c.params["name"] == PIPELINE
        });
        self.verify(
            story,
            "source-trigger",
            format!("an execution of {PIPELINE} at {}", &commit[..8]),
            started,
        );
        body["started"][0]["executionId"].as_str().unwrap_or_default().to_owned()
    }

    async fn scan(
        &mut self,
        story: &'static str,
        digest: &str,
        tag: &str,
        status: &str,
        findings: Vec<Value>,
        expect: &'static str,
    ) {
        self.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": digest, "status": status,
            "completedAt": chrono::Utc::now().timestamp(), "findings": findings}));
        if status != "COMPLETE" {
            return;
        }
        let mut event = sample("ecr-scan-complete.json");
        event["detail"]["image-digest"] = digest.into();
        // An image index's per-platform images carry no tag of their own.
        let (tags, name) = if tag.is_empty() {
            (json!([]), format!("{REPO}@{}", &digest[..19]))
        } else {
            (json!([tag]), format!("{REPO}:{tag}"))
        };
        event["detail"]["image-tags"] = tags;
        self.step(story, "scan-gate", &format!("ECR Image Scan {name}"), &event, |out| {
            (out["verdict"] == expect, format!("verdict {}", out["verdict"].as_str().unwrap_or("?")))
        })
        .await;
        let record = self.fleet.get_json(&format!("verdicts/{REPO}/{digest}.json")).await.unwrap_or_default();
        let stored = record["verdict"]["verdict"] == expect;
        self.verify(story, "scan-gate", format!("a stored {expect} verdict for {name}"), stored);
    }

    /// The Gate action: the build output, the job CodePipeline creates, and the invocation.
    async fn gate(
        &mut self,
        story: &'static str,
        execution_id: &str,
        digest: &str,
        continuation: Option<&str>,
        expect: &'static str,
        says: &'static str,
    ) -> Value {
        self.gate_on(story, execution_id, digest, continuation, None, expect, says).await
    }

    /// [`Self::gate`] for a task definition on `cpu` (`ARM64`).
    #[allow(clippy::too_many_arguments)]
    async fn gate_on(
        &mut self,
        story: &'static str,
        execution_id: &str,
        digest: &str,
        continuation: Option<&str>,
        cpu: Option<&str>,
        expect: &'static str,
        says: &'static str,
    ) -> Value {
        self.gate_taskdef(story, execution_id, digest, continuation, release_taskdef(cpu), expect, says).await
    }

    /// [`Self::gate`] of a build output carrying `taskdef`.
    #[allow(clippy::too_many_arguments)]
    async fn gate_taskdef(
        &mut self,
        story: &'static str,
        execution_id: &str,
        digest: &str,
        continuation: Option<&str>,
        taskdef: Value,
        expect: &'static str,
        says: &'static str,
    ) -> Value {
        self.job_counter += 1;
        let job_id = format!("job-{:04}", self.job_counter);
        let event = gate_job_with(&self.fleet, &job_id, execution_id, digest, continuation, taskdef).await;
        let input = if continuation.is_some() { "Gate job (continued)" } else { "Gate job" };
        let out = self
            .step(story, "release-gate", &format!("{input} {job_id}"), &event, |out| {
                let full = out["summary"].as_str().unwrap_or_default();
                let summary: String = full.chars().take(60).collect();
                (
                    out["result"] == expect && full.contains(says),
                    format!("{}: {summary}", out["result"].as_str().unwrap_or("?")),
                )
            })
            .await;
        let reports: Vec<crate::Call> = self
            .fleet
            .aws
            .calls()
            .into_iter()
            .filter(|c| c.params["jobId"] == job_id.as_str() && c.action.starts_with("PutJob"))
            .collect();
        let reported = match (reports.as_slice(), expect) {
            ([one], "failed") => one.action == "PutJobFailureResult",
            ([one], "continue") => {
                one.action == "PutJobSuccessResult" && one.params["continuationToken"].is_string()
            }
            ([one], _) => {
                one.action == "PutJobSuccessResult" && one.params["outputVariables"]["IMAGE_DIGEST"] == digest
            }
            _ => false,
        };
        self.verify(story, "release-gate", format!("one {expect} result for {job_id}"), reported);
        out
    }

    async fn hook(
        &mut self,
        story: &'static str,
        deployment: &str,
        hook: &str,
        expect: &'static str,
        says: &'static str,
    ) {
        self.fleet.aws.control_post(
            "/_shipgate/codedeploy/lifecycle",
            &json!({"deploymentId": deployment, "currentHook": hook}),
        );
        let event = json!({"DeploymentId": deployment, "LifecycleEventHookExecutionId": format!("{deployment}-{hook}")});
        self.step(story, "deploy-hooks", &format!("CodeDeploy hook {hook}"), &event, |out| {
            let reason = out["reasons"]
                .get(0)
                .and_then(Value::as_str)
                .map(|r| format!(": {}", r.chars().take(50).collect::<String>()))
                .unwrap_or_default();
            let said = out["reasons"].to_string().contains(says);
            (
                out["status"] == expect && out["hook"] == hook && out["reported_now"] == true && said,
                format!("{}{reason}", out["status"].as_str().unwrap_or("?")),
            )
        })
        .await;
        let execution = format!("{deployment}-{hook}");
        let reports: Vec<crate::Call> = self
            .fleet
            .aws
            .calls_of("PutLifecycleEventHookExecutionStatus")
            .into_iter()
            .filter(|c| c.params["lifecycleEventHookExecutionId"] == execution.as_str())
            .collect();
        let ok = reports.len() == 1 && reports[0].params["status"] == expect;
        self.verify(story, "deploy-hooks", format!("one {expect} status for {hook}"), ok);
    }
}

/// Findings the example policy passes: a LOW, and a CRITICAL its exception covers.
fn passing_findings() -> Vec<Value> {
    vec![
        json!({"name": "CVE-2026-1001", "severity": "LOW", "attributes": [{"key": "package_name", "value": "tzdata"}]}),
        // Excepted by examples/appsec.yaml until 2027-01-31, with a reason and a ticket.
        json!({"name": "CVE-2023-45853", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "zlib"}]}),
    ]
}

/// The report as people read it: the timeline, then one line per story.
pub fn render(report: &Report) -> String {
    let mut out = String::from("\nTimeline\n");
    out.push_str(&format!("{:<21} {:<16} {:<46} {:>7}  {}\n", "story", "function", "input", "ms", "outcome"));
    for s in &report.steps {
        out.push_str(&format!(
            "{:<21} {:<16} {:<46} {:>7}  {}\n",
            s.story,
            s.function,
            s.input,
            s.elapsed.as_millis(),
            s.outcome
        ));
    }
    out.push_str("\nNotifications received on the SNS subscription\n");
    for (subject, severity) in &report.notifications {
        out.push_str(&format!("  [{severity:<8}] {subject}\n"));
    }
    out.push_str("\nSummary\n");
    for story in &report.stories {
        out.push_str(&format!(
            "  {:<6} {:<21} {}\n",
            if story.ok { "ok" } else { "FAILED" },
            story.name,
            story.expected
        ));
    }
    let passed = report.stories.iter().filter(|s| s.ok).count();
    out.push_str(&format!("\n{passed} of {} stories ended as expected\n", report.stories.len()));
    out
}
