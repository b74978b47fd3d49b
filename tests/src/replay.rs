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

use crate::{
    ACCOUNT, CONFIG_BUCKET, EVENT_BUS, FUNCTIONS, Fleet, ListenerMode, REGION, TestListener, WEBHOOK_SECRET,
};

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

/// The Lambda runtime emulator: `cargo lambda watch --only-lambda-apis` on
/// 127.0.0.1, serving the Runtime API to each function binary, which runs as
/// Lambda runs it, in its own process with its own environment: its role's
/// credentials (from the emulator, per `infra/template.yaml`) and the
/// configuration the template gives it. Everything stops on drop.
#[derive(Debug)]
pub struct RuntimeEmulator {
    watch: Child,
    functions: Vec<Child>,
    pub port: u16,
}

impl RuntimeEmulator {
    /// Starts the Runtime API, then each function with `env` and its own
    /// access key; their output goes to `log` (else `SHIPGATE_REPLAY_LOG`,
    /// else nowhere).
    pub fn start(fleet: &Fleet, env: &BTreeMap<String, String>, log: Option<&std::path::Path>) -> Self {
        let log = || log.map_or_else(replay_log, append_to);
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let watch = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--quiet",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(crate::workspace_root())
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start cargo lambda watch: {e}; `make setup` installs cargo-lambda")
            });
        let mut emulator = Self { watch, functions: Vec::new(), port };
        let ready = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(120),
                "cargo lambda watch did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for function in FUNCTIONS {
            let credentials = fleet.credentials_of(function);
            let child = Command::new(crate::target_dir().join("debug").join(function))
                .envs(env)
                .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
                .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
                .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{function}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", function)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .stdin(Stdio::null())
                .stdout(log())
                .stderr(log())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {function}: {e}; it is built by `cargo build --bin {function}`")
                });
            emulator.functions.push(child);
        }
        emulator
    }
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        for child in &mut self.functions {
            let _ = child.kill();
            let _ = child.wait();
        }
        let group = format!("-{}", self.watch.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.watch.wait();
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    }
}

/// Where the runtime emulator's output goes by default: `SHIPGATE_REPLAY_LOG`, else nowhere.
fn replay_log() -> Stdio {
    std::env::var_os("SHIPGATE_REPLAY_LOG").map_or_else(Stdio::null, |path| append_to(path.as_ref()))
}

fn append_to(path: &std::path::Path) -> Stdio {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// The cargo that has the `lambda` subcommand: `.venv/bin` first.
fn cargo_lambda() -> std::path::PathBuf {
    let venv = crate::workspace_root().join(".venv/bin/cargo-lambda");
    if venv.exists() { venv } else { "cargo-lambda".into() }
}

impl LocalFleet {
    /// Invokes `function` with `payload` through the runtime emulator, as Lambda's Invoke API.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Value {
        invoke(self.runtime.port, function, payload).await
    }
}

/// Invokes a function through the runtime emulator, as Lambda's Invoke API.
async fn invoke(port: u16, function: &str, payload: &Value) -> Value {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request =
        hyper::Request::post(format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .unwrap();
    let response = client.request(request).await.unwrap_or_else(|e| panic!("invoking {function}: {e}"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}))
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

/// Builds the functions and starts the local fleet, saying what it does.
pub async fn start(progress: &mut dyn Progress) -> LocalFleet {
    start_with(progress, &[], None).await
}

/// [`start`], with the functions' log level at TRACE in JSON (as Lambda's
/// `ApplicationLogLevel: TRACE` and `LogFormat: JSON` set it) and their
/// output in `log`.
pub async fn start_tracing_to(progress: &mut dyn Progress, log: &std::path::Path) -> LocalFleet {
    start_with(progress, &[("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")], Some(log))
        .await
}

async fn start_with(
    progress: &mut dyn Progress,
    extra_env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> LocalFleet {
    progress.say("==> building the six functions (cargo build)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build"])
        .args(FUNCTIONS.iter().flat_map(|f| ["--bin", *f]))
        .current_dir(crate::workspace_root())
        .status()
        .unwrap();
    assert!(status.success(), "building the functions failed");

    progress
        .say("==> starting the local AWS emulator (moto + Shipgate extensions, enforcing IAM) on 127.0.0.1");
    let fleet = Fleet::start().await;
    progress.say(&format!("    {}", fleet.aws.endpoint()));
    let (topic_arn, notifications_queue, secret_arn) = provision(&fleet).await;
    let listener = TestListener::start(ListenerMode::Healthy).await;

    progress
        .say("==> starting cargo-lambda's Lambda runtime emulator on 127.0.0.1, each function as its role");
    let env: BTreeMap<String, String> = [
        ("AWS_ENDPOINT_URL", fleet.aws.endpoint().to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("SHIPGATE_CONFIG_BUCKET", CONFIG_BUCKET.to_owned()),
        ("SHIPGATE_EVENT_BUS", EVENT_BUS.to_owned()),
        ("SHIPGATE_TOPIC_ARN", topic_arn),
        ("SHIPGATE_WEBHOOK_SECRET_ARN", secret_arn),
        ("SHIPGATE_TEST_LISTENER_URL", listener.url.clone()),
        ("SHIPGATE_CHECK_BACKOFF_MS", "50".to_owned()),
        ("SHIPGATE_ENVIRONMENT", "prod".to_owned()),
        ("RUST_LOG", std::env::var("SHIPGATE_REPLAY_RUST_LOG").unwrap_or_else(|_| "warn".to_owned())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(extra_env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    .collect();
    let runtime = RuntimeEmulator::start(&fleet, &env, log);
    progress.say(&format!("    http://127.0.0.1:{}", runtime.port));
    LocalFleet { fleet, runtime, listener, notifications_queue }
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
    replay.exposure_story().await;
    replay.report
}

/// The AWS resources the workflow needs.
async fn provision(fleet: &Fleet) -> (String, String, String) {
    fleet.create_repository(REPO).await;
    fleet.create_pipeline(PIPELINE).await;
    fleet.put_config("routes.yaml", &format!(
        "version: 1\nroutes:\n  - repository: \"acme/{REPO}\"\n    branches: [main]\n    paths: [\"src/**\", \"Cargo.*\"]\n    pipeline: {PIPELINE}\n"
    )).await;
    let (topic_arn, secret_arn) = (fleet.topic_arn.clone(), fleet.webhook_secret_arn.clone());
    let sns = aws_sdk_sns::Client::new(&fleet.sdk);
    let sqs = aws_sdk_sqs::Client::new(&fleet.sdk);
    let queue = sqs.create_queue().queue_name("inbox").send().await.unwrap().queue_url.unwrap();
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:inbox"))
        .send()
        .await
        .unwrap();
    crate::create_deployment_group(&fleet.sdk, REPO, &format!("{REPO}-dg")).await;
    (topic_arn, queue, secret_arn)
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
    use aws_sdk_ecs::types::{ContainerDefinition, OsFamily, RuntimePlatform};
    let ecs = aws_sdk_ecs::Client::new(&fleet.sdk);
    let container = ContainerDefinition::builder().name("app").memory(512).image(image(digest)).build();
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
    const ARTIFACTS: &str = "codepipeline-artifacts-local";
    // Absent on first use; already there after.
    let _ = fleet.s3().create_bucket().bucket(ARTIFACTS).send().await;
    let key = format!("{PIPELINE}/BuildOutput/{job_id}.zip");
    let mut taskdef = json!({"family": REPO, "networkMode": "awsvpc", "containerDefinitions": [{"name": "app",
        "image": "<IMAGE1_NAME>", "user": "10001", "readonlyRootFilesystem": true,
        "logConfiguration": {"logDriver": "awslogs"},
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}]}]});
    if let Some(cpu) = cpu {
        taskdef["runtimePlatform"] = json!({"cpuArchitecture": cpu, "operatingSystemFamily": "LINUX"});
    }
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

    async fn policy_story(&mut self) {
        const S: &str = "policy";
        self.story(
            S,
            "a valid appsec.yaml becomes last-known-good; a broken one is rejected and changes nothing",
        );
        let policy = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let key = format!("policies/{REPO}/appsec.yaml");
        self.upload_policy(S, &key, &policy, "accepted").await;
        let broken = policy.replace("thresholds:", "tresholds:");
        self.upload_policy(S, &key, &broken, "rejected").await;
        self.finish(
            S,
            "a valid appsec.yaml becomes last-known-good; a broken one is rejected and changes nothing",
        );
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
            (json!([]), format!("{REPO}@{}", shipgate_core::image::short(digest)))
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
        self.job_counter += 1;
        let job_id = format!("job-{:04}", self.job_counter);
        let event = gate_job_on(&self.fleet, &job_id, execution_id, digest, continuation, cpu).await;
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

    async fn blocked_release_story(&mut self) {
        const S: &str = "blocked release";
        const E: &str = "an image with a critical CVE is stopped at the gate";
        self.story(S, E);
        let execution = self.push(S, "1111111111111111111111111111111111111111").await;
        let critical = json!({"name": "CVE-2024-3094", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "xz-utils"}]});
        self.scan(S, VULNERABLE, "1.4.1", "COMPLETE", vec![critical], "FAIL").await;
        self.gate(S, &execution, VULNERABLE, None, "failed", "CVE-2024-3094").await;
        let failed = eventbridge(
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change",
            json!({"pipeline": PIPELINE, "execution-id": execution, "state": "FAILED", "version": 1.0}),
        );
        self.step(S, "notifier", "Pipeline Execution FAILED", &failed, |out| {
            (out["sent"].as_array().is_some_and(|s| s.len() == 1), format!("sent {}", out["sent"]))
        })
        .await;
        self.finish(S, E);
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

    async fn release_story(&mut self, listener: &TestListener) {
        const S: &str = "release";
        const E: &str = "a clean image waits for its scan, passes the gate and the hooks, and deploys";
        self.story(S, E);
        let execution = self.push(S, "2222222222222222222222222222222222222222").await;
        self.scan(S, CLEAN, "1.4.2", "IN_PROGRESS", vec![], "").await;
        self.gate(S, &execution, CLEAN, None, "continue", "waiting for the scan").await;
        let token = self
            .fleet
            .aws
            .calls_of("PutJobSuccessResult")
            .last()
            .and_then(|c| c.params["continuationToken"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.scan(S, CLEAN, "1.4.2", "COMPLETE", passing_findings(), "PASS").await;
        self.gate(S, &execution, CLEAN, Some(&token), "succeeded", "PASS").await;
        let deployment = deployment(&self.fleet, CLEAN).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Succeeded", "").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Succeeded", "").await;
        let checked = listener.hits() > before;
        let succeeded = eventbridge(
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change",
            json!({"pipeline": PIPELINE, "execution-id": execution, "state": "SUCCEEDED", "version": 1.0}),
        );
        self.step(S, "notifier", "Pipeline Execution SUCCEEDED", &succeeded, |out| {
            let sent = out["sent"].to_string();
            (sent.contains("passing again"), format!("sent {sent}"))
        })
        .await;
        if !checked {
            self.report.steps.push(Step {
                story: S,
                function: "deploy-hooks",
                input: "test listener".into(),
                outcome: "UNEXPECTED: never called".into(),
                elapsed: Duration::ZERO,
                ok: false,
            });
        }
        self.finish(S, E);
    }

    async fn ungated_deployment_story(&mut self, listener: &TestListener) {
        const S: &str = "ungated deployment";
        const E: &str = "a console deployment of an image that never passed the gate is stopped";
        self.story(S, E);
        // Built and pushed by hand, so ECR has it (and its scan), but no gate ever judged it.
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": UNGATED, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": passing_findings()}));
        let deployment = deployment(&self.fleet, UNGATED).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Failed", "no passing release-gate decision").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Failed", "no passing release-gate decision")
            .await;
        if listener.hits() != before {
            self.report.steps.push(Step {
                story: S,
                function: "deploy-hooks",
                input: "test listener".into(),
                outcome: "UNEXPECTED: an ungated image was sent traffic".into(),
                elapsed: Duration::ZERO,
                ok: false,
            });
        }
        let failed = eventbridge(
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            json!({"deploymentId": deployment, "application": REPO, "deploymentGroup": format!("{REPO}-dg"), "state": "FAILURE"}),
        );
        self.step(S, "notifier", "Deployment FAILURE", &failed, |out| {
            (out["sent"].as_array().is_some_and(|s| s.len() == 1), format!("sent {}", out["sent"]))
        })
        .await;
        self.finish(S, E);
    }

    /// The daily digest, driven by EventBridge Scheduler's own payload (what
    /// the template's ScheduleV2 delivers): an exception a week from its end
    /// reaches its owner once.
    async fn daily_digest_story(&mut self) {
        const S: &str = "daily digest";
        const E: &str = "the Scheduler's daily event tells an owner once about an exception about to expire";
        self.story(S, E);
        // The notifier runs on the wall clock; the exception ends a week from today.
        let expires = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
        let policy = format!(
            "version: 1\nowner: team-checkout\nscan:\n  exceptions:\n    - {{id: CVE-2026-7777, package: openssl, expires: {expires}, reason: not reachable, ticket: SEC-77}}\n"
        );
        self.upload_policy(S, "policies/checkout-api/appsec.yaml", &policy, "accepted").await;
        let scheduled =
            sample("aws/eventbridge-scheduler-default-notification.aws-lambda-dotnet-issue-1864.json");
        let sent_now = |out: &Value| out["sent"].as_array().map_or(0, Vec::len);
        let out = self
            .step(S, "notifier", "Scheduler Scheduled Event (aws.scheduler)", &scheduled, |out| {
                let sent = out["sent"].to_string();
                (sent.contains("team-checkout expire soon"), format!("sent {sent}"))
            })
            .await;
        let first = sent_now(&out);
        let again = invoke(self.runtime.port, "notifier", &scheduled).await;
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        let received: Vec<Value> = crate::drain_queue(&sqs, &self.notifications_queue).await;
        let digests = received
            .iter()
            .filter(|m| m["Subject"].as_str().is_some_and(|s| s.contains("team-checkout expire soon")))
            .count();
        let names_it =
            received.iter().any(|m| m["Message"].as_str().is_some_and(|b| b.contains("CVE-2026-7777")));
        self.verify(
            S,
            "notifier",
            format!(
                "one digest for team-checkout naming CVE-2026-7777 (first run sent {first}, the second {})",
                sent_now(&again)
            ),
            digests == 1 && names_it && sent_now(&again) == 0,
        );
        self.finish(S, E);
    }

    /// An ECS native blue/green deployment rolling back: ECS re-invokes the
    /// traffic-shift hook with the weights pointing back to blue, and
    /// deploy-hooks answers SUCCEEDED at once, even for a revision whose
    /// checks fail.
    async fn ecs_rollback_story(&mut self) {
        const S: &str = "ECS rollback";
        const E: &str = "an ECS native rollback is never blocked, while the same revision going forward is";
        self.story(S, E);
        let rollback = sample("aws/ecs-native-hook-production-traffic-shift-rollback.aws-ecs-docs.json");
        let revision =
            rollback["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap_or_default().to_owned();
        let (_, task_definition) = deployment_with_task_definition(&self.fleet, UNGATED).await;
        self.fleet.aws.control_post(
            "/_shipgate/ecs/service-revisions",
            &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition}),
        );
        let mut forward = rollback.clone();
        forward["lifecycleStage"] = "POST_TEST_TRAFFIC_SHIFT".into();
        forward["executionDetails"]["productionTrafficWeights"] = json!({});
        self.step(S, "deploy-hooks", "ECS POST_TEST_TRAFFIC_SHIFT (ungated image)", &forward, |out| {
            (out["hookStatus"] == "FAILED", format!("{}", out["hookStatus"]))
        })
        .await;
        let _ = self.fleet.events().await;
        self.step(S, "deploy-hooks", "ECS PRODUCTION_TRAFFIC_SHIFT, back to blue", &rollback, |out| {
            (out["hookStatus"] == "SUCCEEDED", format!("{} without checks", out["hookStatus"]))
        })
        .await;
        let said = self
            .fleet
            .events()
            .await
            .iter()
            .any(|e| e["detail-type"] == "Shipgate Hook Result" && e["detail"]["rollback"] == true);
        self.verify(S, "deploy-hooks", "a Shipgate Hook Result marked as a rollback".into(), said);
        self.finish(S, E);
    }

    /// Delivers every Shipgate event the functions put on the bus to the
    /// notifier (as the EventBridge rule would), then reads the topic.
    async fn notification_story(&mut self) {
        const S: &str = "notifications";
        const E: &str = "blocks, rejections and the recovery reach SNS once each, with filterable attributes";
        self.story(S, E);
        let events = self.fleet.events().await;
        let mut delivered = 0;
        for event in &events {
            let detail_type = event["detail-type"].as_str().unwrap_or_default().to_owned();
            if detail_type == "Shipgate Policy Accepted" {
                continue; // the notifier's rule does not route it
            }
            delivered += 1;
            let input = detail_type.trim_start_matches("Shipgate ").to_owned();
            self.step(S, "notifier", &input, event, |out| {
                (out.get("sent").is_some(), format!("sent {}", out["sent"]))
            })
            .await;
        }
        // A redelivery of everything sends nothing new.
        let mut repeated = 0;
        for event in events.iter().filter(|e| e["detail-type"] != "Shipgate Policy Accepted") {
            let out = invoke(self.runtime.port, "notifier", event).await;
            repeated += out["sent"].as_array().map_or(0, Vec::len);
        }
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        for envelope in crate::drain_queue(&sqs, &self.notifications_queue).await {
            let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
            let severity =
                envelope["MessageAttributes"]["severity"]["Value"].as_str().unwrap_or_default().to_owned();
            self.report.notifications.push((subject, severity));
        }
        let subjects: Vec<&str> = self.report.notifications.iter().map(|(s, _)| s.as_str()).collect();
        let expected = [
            "Policy policies/payments-api/appsec.yaml rejected",
            "Image payments-api:1.4.1 fails its scan policy",
            "Release of payments-api to prod blocked by Shipgate",
            "Pipeline payments failed",
            "Pipeline payments is passing again",
            "Deployment of payments-api stopped at BeforeInstall",
            "Deployment of payments-api stopped at AfterAllowTestTraffic",
            "Deployment of payments-api (payments-api-dg) failed; rolling back",
        ];
        for want in expected {
            let found = subjects.iter().filter(|s| s.contains(want)).count();
            let ok = found == 1;
            let outcome = if ok {
                format!("received once: {want}")
            } else {
                format!("UNEXPECTED: {found} messages like {want:?}")
            };
            self.report.steps.push(Step {
                story: S,
                function: "sns",
                input: "topic subscription".into(),
                outcome,
                elapsed: Duration::ZERO,
                ok,
            });
        }
        let ok = repeated == 0 && delivered > 0;
        self.report.steps.push(Step {
            story: S,
            function: "notifier",
            input: "every event again".into(),
            outcome: if ok {
                "nothing sent twice".into()
            } else {
                format!("UNEXPECTED: {repeated} duplicate messages")
            },
            elapsed: Duration::ZERO,
            ok,
        });
        self.finish(S, E);
    }
    /// A `docker buildx` build for amd64 and arm64 pushes an image index; ECR
    /// scans each platform's image, not the index. The service runs on
    /// Graviton, so the arm64 image is the one judged (its amd64 sibling's
    /// CRITICAL does not block it), and the deployment, naming the index
    /// digest as the task definition does, passes its hooks; the same index
    /// in an X86_64 task would run the amd64 image, and is stopped.
    async fn multi_arch_story(&mut self, listener: &TestListener) {
        const S: &str = "multi-arch release";
        const E: &str = "a Graviton task is judged by the arm64 image of its index and deploys; an x86 task of it is stopped";
        self.story(S, E);
        let index = self.fleet.push_image_index(REPO, "1.6.0", &["linux/amd64", "linux/arm64"]).await;
        let (amd64, arm64) = (index.child("linux/amd64").to_owned(), index.child("linux/arm64").to_owned());
        let execution = self.push(S, "5555555555555555555555555555555555555555").await;
        let critical = json!({"name": "CVE-2026-6060", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "glibc"}]});
        let mut amd64_findings = passing_findings();
        amd64_findings.push(critical);
        self.scan(S, &amd64, "", "COMPLETE", amd64_findings, "FAIL").await;
        self.scan(S, &arm64, "", "COMPLETE", passing_findings(), "PASS").await;
        self.gate_on(S, &execution, &index.digest, None, Some("ARM64"), "succeeded", "PASS").await;
        let judged: Vec<String> = self
            .fleet
            .aws
            .calls_of("DescribeImageScanFindings")
            .iter()
            .rev()
            .take(1)
            .map(|c| c.params["imageId"]["imageDigest"].as_str().unwrap_or_default().to_owned())
            .collect();
        self.verify(
            S,
            "release-gate",
            "the arm64 image's scan judged, not the index's".into(),
            judged == [arm64.clone()],
        );
        let mut provenance = Vec::new();
        for digest in [&index.digest, &arm64] {
            let digest = shipgate_core::digest::Digest::parse(digest).expect("ECR's digests are sha256");
            let key = shipgate_core::hooks::provenance_key(&digest, Some("prod"));
            provenance.push(self.fleet.get_json(&key).await.is_some());
        }
        self.verify(
            S,
            "release-gate",
            "provenance for the index and its arm64 image".into(),
            provenance == [true, true],
        );
        use aws_sdk_ecs::types::CpuArchitecture;
        let (deployment, _) = deployment_on(&self.fleet, &index.digest, Some(CpuArchitecture::Arm64)).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Succeeded", "").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Succeeded", "").await;
        let checked = listener.hits() > before;
        self.verify(S, "deploy-hooks", "the test listener checked".into(), checked);
        // The same index in an X86_64 task would run the amd64 image, which
        // never passed: stopped before any traffic.
        let (x86, _) = deployment_on(&self.fleet, &index.digest, None).await;
        self.hook(S, &x86, "BeforeInstall", "Failed", "no passing release-gate decision").await;
        self.finish(S, E);
    }

    /// A finding that arrives after release: Inspector keeps rescanning and
    /// adds findings to an image that already passed (AWS also sends an
    /// `Inspector2 Finding` event; release-gate judges the current findings at
    /// decision time, so it needs none). The next release of the same digest
    /// is blocked.
    async fn finding_after_release_story(&mut self) {
        const S: &str = "finding after release";
        const E: &str = "a CVE found after an image shipped blocks the next release of the same digest";
        self.story(S, E);
        let execution = self.push(S, "3333333333333333333333333333333333333333").await;
        self.scan(S, REBUILT, "1.5.0", "COMPLETE", passing_findings(), "PASS").await;
        self.gate(S, &execution, REBUILT, None, "succeeded", "PASS").await;
        // Inspector's rescan, days later: a new critical CVE in the same image.
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-4040", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "openssl"}]}));
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": REBUILT, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": findings}));
        let execution = self.push(S, "4444444444444444444444444444444444444444").await;
        self.gate(S, &execution, REBUILT, None, "failed", "CVE-2026-4040").await;
        self.finish(S, E);
    }

    /// An exception that ended yesterday: what passed yesterday (the verdict
    /// scan-gate stored then, judged at yesterday's noon, as `shipgate scan
    /// evaluate --now` judges) is blocked today, and the release agrees with
    /// the engine judging the same findings at today's `now`.
    async fn expired_exception_story(&mut self) {
        const S: &str = "expired exception";
        const E: &str =
            "an image that passed yesterday under an exception is blocked today, when it has expired";
        self.story(S, E);
        let now = chrono::Utc::now();
        let yesterday = (now - chrono::Duration::days(1)).date_naive();
        let yesterday_noon = yesterday.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
        let example = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let policy = example.replace(
            "  exceptions:\n",
            &format!(
                "  exceptions:\n    - {{id: CVE-2026-5050, package: libexpat, expires: {yesterday}, reason: \"parser not reachable\", ticket: SEC-2050}}\n"
            ),
        );
        self.upload_policy(S, &format!("policies/{REPO}/appsec.yaml"), &policy, "accepted").await;
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-5050", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "libexpat"}]}));
        let judge = |at| {
            let report: shipgate_core::findings::ScanReport = serde_json::from_value(json!({
                "imageScanStatus": {"status": "COMPLETE"},
                "imageScanFindings": {"findingSeverityCounts": {"CRITICAL": 2, "LOW": 1}, "findings": findings}}))
            .unwrap();
            let document = shipgate_core::validate::parse_policy(&policy, None).unwrap().document;
            let prod = document.environment(Some("prod")).unwrap();
            shipgate_core::scan::evaluate_scan(prod, REPO, &report, at)
        };
        let then = judge(yesterday_noon);
        self.engine(S, yesterday_noon, &then, shipgate_core::scan::Verdict::Pass);
        // What scan-gate stored yesterday, still in the bucket today.
        let stored = shipgate_core::verdict::VerdictRecord {
            repository: REPO.into(),
            digest: EXCEPTED.into(),
            image_tags: vec!["1.5.1".into()],
            scanned_at: yesterday_noon,
            policy_key: Some(format!("policies/{REPO}/appsec.lkg.json")),
            policy_sha256: Some(shipgate_core::lkg::sha256_hex(policy.as_bytes())),
            judged_at: yesterday_noon,
            verdict: then.clone(),
            environments: [("prod".to_owned(), then)].into(),
            announced: true,
        };
        self.fleet
            .put_config(&format!("verdicts/{REPO}/{EXCEPTED}.json"), &serde_json::to_string(&stored).unwrap())
            .await;
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": EXCEPTED, "status": "COMPLETE",
            "completedAt": yesterday_noon.timestamp(), "findings": findings}));
        let execution = self.push(S, "5555555555555555555555555555555555555555").await;
        self.gate(S, &execution, EXCEPTED, None, "failed", "CVE-2026-5050").await;
        let now = chrono::Utc::now();
        self.engine(S, now, &judge(now), shipgate_core::scan::Verdict::Fail);
        self.finish(S, E);
    }
}

impl Replay<'_> {
    /// Exposure: what runs is recorded when its deployment succeeds; a CVE
    /// published later reaches the owner as an exposed running service, and
    /// an exception with an expiry date as accepted until that date. The
    /// notifier gathers flips for 15 minutes; the replay fires its schedule
    /// with a scheduled time past the window instead of waiting.
    async fn exposure_story(&mut self) {
        const S: &str = "exposure";
        const E: &str = "a CVE published after release tells the owner the running service is exposed; an exception tells them until when it is accepted";
        self.story(S, E);
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": RUNNING, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": passing_findings()}));
        let deployment = deployment(&self.fleet, RUNNING).await;
        let succeeded = eventbridge(
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            json!({"deploymentId": deployment, "application": REPO, "deploymentGroup": format!("{REPO}-dg"), "state": "SUCCESS"}),
        );
        self.step(S, "deploy-hooks", "Deployment SUCCESS (EventBridge)", &succeeded, |out| {
            (out["recorded"].is_string(), format!("recorded {}", out["recorded"]))
        })
        .await;
        let key = format!("running/prod/{REPO}/{REPO}-dg.json");
        let runs = self.fleet.get_json(&key).await.is_some_and(|r| r["images"][0]["digest"] == RUNNING);
        self.verify(S, "deploy-hooks", format!("{key} running {}", &RUNNING[..19]), runs);

        // The CVE is published; Inspector's rescan finds it in the running image.
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-6060", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "openssl"}]}));
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": RUNNING, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": findings}));
        let finding = crate::exposure::finding(REPO, RUNNING, "CVE-2026-6060");
        let flips = |out: &Value| out["announced"].as_array().map_or(0, Vec::len);
        self.step(S, "scan-gate", "Inspector2 Finding CVE-2026-6060", &finding, |out| {
            (flips(out) == 1, format!("{} running image flipped to failing", flips(out)))
        })
        .await;
        let at = chrono::Utc::now() + chrono::Duration::minutes(15);
        self.exposure_digest(S, at, "running an image that fails policy", "CVE-2026-6060").await;

        // The team accepts the finding for a month.
        let expires = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
        let example = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let policy = example.replace(
            "  exceptions:\n",
            &format!(
                "  exceptions:\n    - {{id: CVE-2026-6060, package: openssl, expires: {expires}, reason: \"fix released next sprint\", ticket: SEC-6060}}\n"
            ),
        );
        self.upload_policy(S, &format!("policies/{REPO}/appsec.yaml"), &policy, "accepted").await;
        let accepted =
            self.fleet.events().await.into_iter().find(|e| e["detail-type"] == "Shipgate Policy Accepted");
        let accepted = accepted.unwrap_or_default();
        self.step(S, "scan-gate", "Shipgate Policy Accepted", &accepted, |out| {
            (flips(out) == 1, format!("{} running image flipped to passing", flips(out)))
        })
        .await;
        let at = at + chrono::Duration::minutes(30);
        self.exposure_digest(
            S,
            at,
            "no longer exposed",
            &format!("CVE-2026-6060 in openssl until {expires}"),
        )
        .await;
        self.finish(S, E);
    }

    /// Delivers the exposure flips on the bus to the notifier, fires its
    /// schedule at `at`, and checks the one message the owner receives.
    async fn exposure_digest(
        &mut self,
        story: &'static str,
        at: chrono::DateTime<chrono::Utc>,
        subject: &str,
        body: &str,
    ) {
        for event in self.fleet.events().await {
            if event["detail-type"] != "Shipgate Exposure Changed" {
                continue;
            }
            self.step(story, "notifier", "Shipgate Exposure Changed", &event, |out| {
                let queued = out["queued"].as_array().map_or(0, Vec::len);
                (
                    queued == 1 && out["sent"].as_array().is_some_and(Vec::is_empty),
                    "gathered in its owner's window".into(),
                )
            })
            .await;
        }
        let flush = crate::exposure::flush_input(at);
        let input = format!("schedule at {}", at.format("%H:%M:%SZ"));
        self.step(story, "notifier", &input, &flush, |out| {
            let sent = out["sent"].to_string();
            (sent.contains(subject), format!("sent {sent}"))
        })
        .await;
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        let received = crate::drain_queue(&sqs, &self.notifications_queue).await;
        let matching: Vec<&Value> =
            received.iter().filter(|m| m["Subject"].as_str().is_some_and(|s| s.contains(subject))).collect();
        let says = matching.iter().any(|m| m["Message"].as_str().is_some_and(|b| b.contains(body)));
        let to_owner = matching.iter().all(|m| m["MessageAttributes"]["owner"]["Value"] == "team-payments");
        for m in &matching {
            let severity =
                m["MessageAttributes"]["severity"]["Value"].as_str().unwrap_or_default().to_owned();
            self.report.notifications.push((m["Subject"].as_str().unwrap_or_default().to_owned(), severity));
        }
        self.verify(
            story,
            "sns",
            format!("one message to team-payments, {subject:?}, saying {body:?}"),
            matching.len() == 1 && says && to_owner,
        );
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
