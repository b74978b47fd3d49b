//! `make bench`: cold start, memory, warm latency, throughput and size of
//! Shipgate's functions, side by side with a Python 3.11 + boto3 scan-gate,
//! in one run on this machine. Writes `bench/README.md`.
//!
//! Each function's release binary (or the Python handler under awslambdaric)
//! runs against a Lambda Runtime API stub on 127.0.0.1 and the local AWS
//! emulator: init is the time from process start to its first request for
//! work; first event, from then to its first answer; their sum is what a
//! cold invocation costs; peak memory is the process's high-water mark
//! (VmHWM) after that answer. Warm CPU time is the process's user + system
//! time (`/proc/<pid>/stat`) over a batch, per event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shipgate_tests::{ACCOUNT, CONFIG_BUCKET, EVENT_BUS, FUNCTIONS, Fleet, REGION, workspace_root};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// Repetitions; `SHIPGATE_BENCH_SCALE=0.1` shrinks them for a quick look.
fn scaled(n: usize) -> usize {
    let scale: f64 = std::env::var("SHIPGATE_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    ((n as f64 * scale).round() as usize).max(2)
}
/// Cold starts per function: a 2-core machine shared with other work puts
/// single runs several milliseconds apart, so the median of 20 is reported
/// with its min and max, and the machine's load beside it.
const RUNS_DEFAULT: usize = 20;
const WARM_DEFAULT: usize = 100;
const THROUGHPUT_DEFAULT: usize = 500;
/// Warm events are sent in this many turns, Rust's and Python's alternately.
const TURNS: usize = 10;
const TARGET: &str = "x86_64-unknown-linux-gnu";

// --- The Lambda Runtime API stub --------------------------------------------

#[derive(Default)]
struct StubState {
    queue: VecDeque<(String, Value)>,
    first_next: Option<Instant>,
    handed_out: HashMap<String, Instant>,
    /// (request id, when handed out, when answered)
    answers: Vec<(String, Instant, Instant, bool)>,
}

#[derive(Clone)]
struct Stub {
    state: Arc<Mutex<StubState>>,
    work: Arc<Notify>,
    answered: Arc<Notify>,
    port: u16,
}

impl Stub {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stub = Self { state: Arc::default(), work: Arc::default(), answered: Arc::default(), port };
        let server = stub.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(server.clone().serve(socket));
            }
        });
        stub
    }

    fn push(&self, events: impl IntoIterator<Item = Value>) {
        let mut state = self.state.lock().unwrap();
        for event in events {
            let id = format!("req-{}", state.queue.len() + state.answers.len() + state.handed_out.len());
            state.queue.push_back((id, event));
        }
        drop(state);
        self.work.notify_waiters();
    }

    async fn wait_answers(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            let notified = self.answered.notified();
            if self.state.lock().unwrap().answers.len() >= n {
                return;
            }
            assert!(Instant::now() < deadline, "the function did not answer {n} invocations");
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }

    async fn serve(self, socket: tokio::net::TcpStream) {
        let (read, mut write) = socket.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                return;
            }
            let (mut length, mut chunked) = (0usize, false);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                    chunked = true;
                }
            }
            if chunked {
                loop {
                    let mut size = String::new();
                    reader.read_line(&mut size).await.unwrap_or(0);
                    let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                    let mut chunk = vec![0; n + 2];
                    reader.read_exact(&mut chunk).await.ok();
                    if n == 0 {
                        break;
                    }
                }
            } else if length > 0 {
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.ok();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let response = if path.ends_with("/invocation/next") {
                let (id, event) = self.next().await;
                let deadline =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                        + 60_000;
                let body = event.to_string();
                format!(
                    "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: {id}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                     Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:{REGION}:{ACCOUNT}:function:bench\r\n\
                     Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            } else {
                let ok = path.ends_with("/response");
                if let Some(id) = path.split('/').nth(4) {
                    let mut state = self.state.lock().unwrap();
                    if let Some(sent) = state.handed_out.remove(id) {
                        state.answers.push((id.to_owned(), sent, Instant::now(), ok));
                    }
                }
                self.answered.notify_waiters();
                "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}".to_owned()
            };
            if write.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    async fn next(&self) -> (String, Value) {
        loop {
            let notified = self.work.notified();
            {
                let mut state = self.state.lock().unwrap();
                state.first_next.get_or_insert_with(Instant::now);
                if let Some((id, event)) = state.queue.pop_front() {
                    state.handed_out.insert(id.clone(), Instant::now());
                    return (id, event);
                }
            }
            notified.await;
        }
    }
}

// --- Processes --------------------------------------------------------------

struct Subject {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
}

/// The environment Lambda gives `subject`: its role's credentials (the
/// Python baseline does scan-gate's work, so it runs as scan-gate).
fn env(fleet: &Fleet, subject: &Subject, stub: &Stub, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let function = FUNCTIONS.iter().find(|f| subject.name.contains(**f)).copied().unwrap_or("scan-gate");
    let credentials = fleet.credentials_of(function);
    let mut vars: Vec<(String, String)> = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", stub.port)),
        ("AWS_ENDPOINT_URL", fleet.aws.endpoint().to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", credentials.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key().to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("SHIPGATE_CONFIG_BUCKET", CONFIG_BUCKET.to_owned()),
        ("SHIPGATE_EVENT_BUS", EVENT_BUS.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    vars
}

/// A running subject, its standard output read as it comes (a function
/// blocked on a full pipe would measure nothing but the pipe).
struct Running {
    child: Child,
    output: std::thread::JoinHandle<String>,
}

fn spawn(subject: &Subject, vars: &[(String, String)]) -> Running {
    let mut child = Command::new(&subject.program)
        .args(&subject.args)
        .current_dir(&subject.cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", subject.program.display()));
    let mut stdout = child.stdout.take().unwrap();
    let output = std::thread::spawn(move || {
        use std::io::Read;
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    Running { child, output }
}

/// Peak resident memory of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn stop(mut running: Running) -> String {
    let _ = running.child.kill();
    let _ = running.child.wait();
    running.output.join().unwrap_or_default()
}

#[derive(Default, Clone)]
struct Cold {
    init: Vec<f64>,
    /// From the first request for work to the first answer.
    first: Vec<f64>,
    /// From process start to the first answer: init + first event.
    total: Vec<f64>,
    rss: Vec<f64>,
    phases: Option<String>,
}

/// User + system CPU time a process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    ticks_of(&stat) * 1000.0 / clock_ticks()
}

/// utime + stime, in clock ticks, of a `/proc/<pid>/stat` line: the 14th and
/// 15th fields (proc(5)), counted from the 3rd, the state letter, which
/// follows the command name (which may hold spaces and parentheses).
fn ticks_of(stat: &str) -> f64 {
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field =
        |n: usize| after.split_whitespace().nth(n - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    field(14) + field(15)
}

/// Clock ticks per second, asked of `getconf` once.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// A fixed piece of single-core CPU work (a chain of 30 million xorshift
/// steps, each depending on the last), timed in milliseconds: the same work
/// on every run, so its time says how fast the machine was during this one.
fn calibration_ms() -> f64 {
    let start = Instant::now();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..30_000_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    start.elapsed().as_secs_f64() * 1000.0
}

/// The machine's CPU time so far, in clock ticks, from the first line of
/// `/proc/stat` (proc(5): user nice system idle iowait irq softirq steal …):
/// (steal, all of it through steal). Steal is time this virtual machine was
/// ready to run and the hypervisor ran someone else: the neighbours' share
/// of a run, which the load average cannot see.
fn steal_of(stat: &str) -> (u64, u64) {
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .filter(|l| l.starts_with("cpu "))
        .map(|l| l.split_whitespace().skip(1).take(8).filter_map(|f| f.parse().ok()).collect())
        .unwrap_or_default();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

fn steal_now() -> (u64, u64) {
    steal_of(&std::fs::read_to_string("/proc/stat").unwrap_or_default())
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_owned()
}

/// One cold start: a new process, one event, its first answer.
async fn cold_start(
    fleet: &Fleet,
    subject: &Subject,
    extra: &[(&str, String)],
    event: Value,
    into: &mut Cold,
) {
    let stub = Stub::start().await;
    stub.push([event]);
    let vars = env(fleet, subject, &stub, extra);
    let started = Instant::now();
    let child = spawn(subject, &vars);
    stub.wait_answers(1).await;
    let rss = peak_rss_kib(child.child.id());
    let output = stop(child);
    let state = stub.state.lock().unwrap();
    let first_next = state.first_next.unwrap();
    let (_, _, answered, ok) = state.answers[0].clone();
    assert!(ok, "{} answered its first invocation with an error: {output}", subject.name);
    into.init.push((first_next - started).as_secs_f64() * 1000.0);
    into.first.push((answered - first_next).as_secs_f64() * 1000.0);
    into.total.push((answered - started).as_secs_f64() * 1000.0);
    into.rss.push(rss as f64 / 1024.0);
    if into.phases.is_none() {
        into.phases = output.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find_map(|v| {
            (v["message"] == "initialized" || v["fields"]["message"] == "initialized").then(|| {
                v["phases"].as_str().or(v["fields"]["phases"].as_str()).unwrap_or_default().to_owned()
            })
        });
    }
}

/// A subject kept warm between turns: its process, the stub it asks for work.
struct Warm {
    stub: Stub,
    running: Running,
    /// Invocations answered so far, the first (cold) one included.
    answered: usize,
}

/// What a warm process did with a batch of events: per-invocation handler
/// times (ms), the wall time for all of them (s), its CPU time (ms).
#[derive(Default)]
struct Batch {
    times: Vec<f64>,
    wall: f64,
    cpu: f64,
}

impl Batch {
    fn add(&mut self, other: Batch) {
        self.times.extend(other.times);
        self.wall += other.wall;
        self.cpu += other.cpu;
    }

    fn cpu_per_event(&self) -> f64 {
        self.cpu / self.times.len().max(1) as f64
    }
}

impl Warm {
    /// Starts `subject` and has it answer `first`, so what follows is warm.
    async fn start(fleet: &Fleet, subject: &Subject, first: Value) -> Self {
        let stub = Stub::start().await;
        let vars = env(fleet, subject, &stub, &[]);
        stub.push([first]);
        let running = spawn(subject, &vars);
        stub.wait_answers(1).await;
        Self { stub, running, answered: 1 }
    }

    async fn run(&mut self, events: Vec<Value>) -> Batch {
        let n = events.len();
        let pid = self.running.child.id();
        let cpu_before = cpu_ms(pid);
        let start = Instant::now();
        self.stub.push(events);
        self.stub.wait_answers(self.answered + n).await;
        let wall = start.elapsed().as_secs_f64();
        let cpu = cpu_ms(pid) - cpu_before;
        let state = self.stub.state.lock().unwrap();
        let times = state.answers[self.answered..]
            .iter()
            .map(|(_, sent, answered, _)| (*answered - *sent).as_secs_f64() * 1000.0)
            .collect();
        self.answered += n;
        Batch { times, wall, cpu }
    }

    fn stop(self) {
        stop(self.running);
    }
}

// --- Events -----------------------------------------------------------------

fn digest(i: usize) -> String {
    format!("sha256:{:064x}", i + 1)
}

fn scan_event(digest: &str) -> Value {
    json!({"version": "0", "id": format!("scan-{digest}"), "detail-type": "ECR Image Scan", "source": "aws.ecr",
        "account": ACCOUNT, "time": "2026-11-28T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"scan-status": "COMPLETE", "repository-name": "payments-api", "image-digest": digest,
            "image-tags": ["1.4.2"], "finding-severity-counts": {"HIGH": 2}}})
}

fn seed_scan(fleet: &Fleet, digest: &str) {
    let findings: Vec<Value> = (0..120)
        .map(|i| (i, ["LOW", "MEDIUM", "HIGH", "INFORMATIONAL"][i % 4]))
        .map(|(i, severity)| {
            json!({"name": format!("CVE-2026-{i:04}"), "severity": severity,
            "attributes": [{"key": "package_name", "value": format!("pkg-{}", i % 9)}]})
        })
        .collect();
    fleet
        .aws
        .seed_scan(json!({"repositoryName": "payments-api", "imageDigest": digest, "status": "COMPLETE",
        "completedAt": 1_795_860_000, "findings": findings}));
}

// --- Statistics and the report ----------------------------------------------

fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (s.len() - 1) as f64).round() as usize;
    s[rank.min(s.len() - 1)]
}

fn range(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.1} ({:.1}–{:.1})", median(v), min, max)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|m| m.trim().to_owned()))
        .unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {memory} memory, Linux x86_64; {rustc}; Python 3.11 + boto3 under awslambdaric"
    )
}

fn binary(function: &str) -> PathBuf {
    workspace_root().join("target").join(TARGET).join("release").join(function)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = workspace_root();
    let (runs, warm_n, throughput) = (
        scaled(RUNS_DEFAULT),
        scaled(WARM_DEFAULT).next_multiple_of(TURNS),
        scaled(THROUGHPUT_DEFAULT).next_multiple_of(TURNS),
    );
    for f in FUNCTIONS {
        assert!(binary(f).exists(), "{} is missing: run `make bench`, which builds it", binary(f).display());
    }
    let load_before = load();
    let steal_before = steal_now();
    let speed_before = calibration_ms();
    eprintln!("==> local AWS emulator");
    let fleet = Fleet::start().await;
    fleet.create_repository("payments-api").await;
    fleet.create_pipeline("payments").await;
    let policy = std::fs::read_to_string(root.join("examples/appsec.yaml"))
        .unwrap()
        .replace("fail_on_stale_exceptions: true", "fail_on_stale_exceptions: false");
    fleet.install_policy("payments-api", &policy).await;
    fleet.put_config("routes.yaml", "version: 1\nroutes:\n  - repository: payments-api\n    branches: [main]\n    pipeline: payments\n").await;
    let (topic, secret) = (fleet.topic_arn.clone(), fleet.webhook_secret_arn.clone());
    shipgate_tests::create_deployment_group(&fleet.sdk, "payments-api", "payments-api-dg").await;

    let python = Subject {
        name: "python scan-gate".into(),
        program: shipgate_tests::python(),
        args: vec!["-m".into(), "awslambdaric".into(), "handler.handler".into()],
        cwd: root.join("bench/python_scan_gate"),
    };
    let mut py_cold = Cold::default();
    let mut next_digest = 0;
    let mut cold: Vec<(String, Cold)> =
        FUNCTIONS.iter().map(|f| ((*f).to_owned(), Cold::default())).collect();
    // Round by round, every function and the Python baseline once each: a
    // minute of a busy neighbour slows one round of all of them, not all
    // the runs of whichever function it fell on.
    for run in 0..runs {
        eprintln!("==> cold starts: round {} of {runs}", run + 1);
        for (function, measured) in &mut cold {
            let function = function.as_str();
            let subject = Subject {
                name: function.to_owned(),
                program: binary(function),
                args: vec![],
                cwd: root.clone(),
            };
            let (event, extra): (Value, Vec<(&str, String)>) = match function {
                "scan-gate" => {
                    let d = digest(next_digest);
                    next_digest += 1;
                    seed_scan(&fleet, &d);
                    (scan_event(&d), vec![])
                }
                "source-trigger" => {
                    let mut e: Value = serde_json::from_str(
                        &std::fs::read_to_string(root.join("events/codecommit-push-main.json")).unwrap(),
                    )
                    .unwrap();
                    e["detail"]["commitId"] = format!("{run:040x}").into();
                    (e, vec![("SHIPGATE_WEBHOOK_SECRET_ARN", secret.clone())])
                }
                "policy-validator" => {
                    let version = fleet.put_config("policies/payments-api/appsec.yaml", &policy).await;
                    (
                        fleet.object_created(
                            "policies/payments-api/appsec.yaml",
                            &version,
                            &format!("{:020X}", run + 1),
                        ),
                        vec![],
                    )
                }
                "release-gate" => {
                    let d = digest(next_digest);
                    next_digest += 1;
                    seed_scan(&fleet, &d);
                    (
                        shipgate_tests::replay::gate_job(
                            &fleet,
                            &format!("bench-job-{run}"),
                            "bench-exec",
                            &d,
                            None,
                        )
                        .await,
                        vec![],
                    )
                }
                "deploy-hooks" => {
                    let d = digest(next_digest);
                    next_digest += 1;
                    let id = shipgate_tests::replay::deployment(&fleet, &d).await;
                    fleet.aws.control_post(
                        "/_shipgate/codedeploy/lifecycle",
                        &json!({"deploymentId": id, "currentHook": "BeforeInstall"}),
                    );
                    (
                        json!({"DeploymentId": id, "LifecycleEventHookExecutionId": format!("hook-{run}")}),
                        vec![],
                    )
                }
                _ => {
                    let mut e: Value = serde_json::from_str(
                        &std::fs::read_to_string(root.join("events/codepipeline-execution-failed.json"))
                            .unwrap(),
                    )
                    .unwrap();
                    e["detail"]["execution-id"] = format!("bench-{run}").into();
                    (e, vec![("SHIPGATE_TOPIC_ARN", topic.clone())])
                }
            };
            cold_start(&fleet, &subject, &extra, event, measured).await;
        }
        let d = digest(next_digest);
        next_digest += 1;
        seed_scan(&fleet, &d);
        cold_start(&fleet, &python, &[], scan_event(&d), &mut py_cold).await;
        fleet.forget_events().await;
    }

    eprintln!("==> warm handler times and throughput (scan-gate, Rust and Python)");
    let rust_scan =
        Subject { name: "scan-gate".into(), program: binary("scan-gate"), args: vec![], cwd: root.clone() };
    let mut batch = |n: usize, duplicates: usize| {
        let unique: Vec<String> = (0..n - duplicates)
            .map(|_| {
                let d = digest(next_digest);
                next_digest += 1;
                seed_scan(&fleet, &d);
                d
            })
            .collect();
        let mut events: Vec<Value> = unique.iter().map(|d| scan_event(d)).collect();
        for i in 0..duplicates {
            events.insert((i * 5 + 3).min(events.len()), scan_event(&unique[i % unique.len()]));
        }
        events
    };
    // Rust and Python take turns, a tenth of the events each: the machine
    // and the emulator drift over minutes (and the emulator's state grows
    // with every event), so each side is measured at the same moments as the other.
    let t = Instant::now();
    let mut rust = Warm::start(&fleet, &rust_scan, batch(1, 0).remove(0)).await;
    let mut py = Warm::start(&fleet, &python, batch(1, 0).remove(0)).await;
    // First the warm latency batch, then the throughput one (a fifth duplicates).
    let phases = [(warm_n / TURNS, 0), (throughput / TURNS, throughput / TURNS / 5)];
    let mut measured: [(Batch, Batch); 2] = Default::default();
    for ((per_turn, duplicates), (rust_batch, py_batch)) in phases.into_iter().zip(&mut measured) {
        for _ in 0..TURNS {
            rust_batch.add(rust.run(batch(per_turn, duplicates)).await);
            py_batch.add(py.run(batch(per_turn, duplicates)).await);
            fleet.forget_events().await;
        }
    }
    let [(rust_warm, py_warm), (rust_busy, py_busy)] = measured;
    rust.stop();
    py.stop();
    eprintln!("    warm turns: {:.1}s", t.elapsed().as_secs_f64());
    let load_after = load();
    let steal_after = steal_now();
    let speed_after = calibration_ms();
    let stolen =
        (steal_after.0 - steal_before.0) as f64 * 100.0 / (steal_after.1 - steal_before.1).max(1) as f64;

    let engine = std::fs::read_to_string(root.join("target/bench-engine.md"))
        .unwrap_or_else(|_| "(run `make bench`)".into());
    let scan_cold = cold.iter().find(|(f, _)| f == "scan-gate").map(|(_, c)| c.clone()).unwrap();
    let engine_ms = engine
        .lines()
        .find(|l| l.starts_with("| evaluate 10,000 findings against 500 exceptions |"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    let zip_of = |function: &str| {
        std::fs::metadata(root.join("target/lambda").join(function).join("bootstrap.zip"))
            .map_or(f64::NAN, |m| m.len() as f64 / 1_048_576.0)
    };
    let mut md = String::new();
    md.push_str("# Benchmarks\n\nRegenerated by `make bench` (which builds the release binaries with `cargo lambda build --release`,\nruns the policy-engine benchmark, then `cargo run -p shipgate-tests --bin shipgate-bench`). Do not edit by hand.\n\n");
    md.push_str(&format!(
        "Machine: {}. Load average (1 min) {load_before} when the run began, {load_after} when it ended. \
         The hypervisor gave {stolen:.1}% of this virtual machine's CPU time to other machines during the run \
         (steal time, `/proc/stat`). A fixed piece of CPU work (the calibration loop in `shipgate-bench`) took \
         {speed_before:.0} ms when the run began and {speed_after:.0} ms when it ended. This shared machine's \
         speed drifts between runs, and within one, by more than many changes move a figure: compare runs \
         by these lines, and figures within a run by their ratio.\n\n",
        machine()
    ));
    md.push_str(&format!(
        "Every figure is the median over {runs} runs, with (min–max): single runs on a shared 2-core machine\n\
         vary by milliseconds, so the spread is shown rather than hidden. Cold starts are taken round by round\n\
         (every function and the Python baseline once a round), warm events in {TURNS} turns, Rust's and Python's\n\
         alternately: a slow minute of the machine or the emulator falls on both sides of every comparison.\n\
         Functions are the x86_64 release builds\n\
         (`cargo lambda build --release --compiler cargo`): the aarch64 standard library that `--arm64`\n\
         needs cannot be installed from this machine's registries, so Graviton figures are not measured here.\n\
         Each process runs against a Lambda Runtime API stub on 127.0.0.1 and the local AWS emulator (moto)\n\
         on 127.0.0.1, so first-event times include real HTTP round trips to the emulator. The events the\n\
         functions send, which the tests read from a queue, are dropped after every round and turn here:\n\
         moto counts a queue's messages on every delivery, so a queue left to fill slows every event.\n\n"
    ));
    md.push_str("## Cold start and memory\n\n| function | init (ms) | first event (ms) | init + first event (ms) | peak RSS (MiB) | zip (MiB) | where init goes (first run) |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for (function, c) in &cold {
        md.push_str(&format!(
            "| {function} | {} | {} | {} | {} | {:.1} | {} |\n",
            range(&c.init),
            range(&c.first),
            range(&c.total),
            range(&c.rss),
            zip_of(function),
            c.phases.clone().unwrap_or_default()
        ));
    }
    md.push_str(&format!(
        "| Python scan-gate (baseline) | {} | {} | {} | {} | – | awslambdaric + boto3 import and 3 clients |\n\n",
        range(&py_cold.init),
        range(&py_cold.first),
        range(&py_cold.total),
        range(&py_cold.rss)
    ));
    md.push_str("## scan-gate against the Python baseline\n\n| measure | Rust | Python | Rust / Python |\n| --- | ---: | ---: | ---: |\n");
    let row = |md: &mut String, what: String, r: f64, p: f64, digits: usize| {
        md.push_str(&format!("| {what} | {r:.digits$} | {p:.digits$} | {:.3} |\n", r / p));
    };
    row(&mut md, "init (ms, median)".into(), median(&scan_cold.init), median(&py_cold.init), 1);
    row(&mut md, "first event (ms, median)".into(), median(&scan_cold.first), median(&py_cold.first), 1);
    row(
        &mut md,
        "init + first event (ms, median)".into(),
        median(&scan_cold.total),
        median(&py_cold.total),
        1,
    );
    row(&mut md, "peak RSS (MiB, median)".into(), median(&scan_cold.rss), median(&py_cold.rss), 1);
    row(
        &mut md,
        format!("warm handler p50 (ms, {warm_n} scans of 120 findings)"),
        percentile(&rust_warm.times, 50.0),
        percentile(&py_warm.times, 50.0),
        2,
    );
    row(
        &mut md,
        "warm handler p99 (ms)".into(),
        percentile(&rust_warm.times, 99.0),
        percentile(&py_warm.times, 99.0),
        2,
    );
    row(
        &mut md,
        "CPU time per warm event (ms, user + system)".into(),
        rust_warm.cpu_per_event(),
        py_warm.cpu_per_event(),
        2,
    );
    row(
        &mut md,
        format!("throughput ({throughput} events, 20% duplicates; events/s)"),
        throughput as f64 / rust_busy.wall,
        throughput as f64 / py_busy.wall,
        0,
    );
    md.push_str(
        "\nWarm handler time is from the Runtime API handing out an event to the function's answer. Python\n\
makes six S3, ECR and EventBridge calls per event, one after another, as boto3 code is written: the\n\
policy, the findings, the stored verdict, the verdict's conditional write, the event, and the write\n\
that marks it announced. Rust makes five and waits three times: the three reads at once, then the\n\
event, then the verdict's conditional write, already marked announced (a write that fails after the\n\
event went out is announced again by the retry, and the notifier's once-only marker tells the owner\n\
once). CPU time is the function process's own user + system time per event, the part of the bill\n\
the emulator's latency does not hide.\n\n",
    );

    let init_max = cold.iter().map(|(_, c)| median(&c.init)).fold(0.0, f64::max);
    let slowest = cold
        .iter()
        .max_by(|a, b| median(&a.1.init).total_cmp(&median(&b.1.init)))
        .map_or("", |(f, _)| f.as_str());
    let init_ratio = init_max / median(&py_cold.init);
    let warm_ratio = percentile(&rust_warm.times, 50.0) / percentile(&py_warm.times, 50.0);
    let rss_ratio = median(&scan_cold.rss) / median(&py_cold.rss);
    let zip_max = FUNCTIONS.iter().map(|f| zip_of(f)).fold(0.0, f64::max);
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    md.push_str("## Targets\n\n");
    md.push_str(&format!(
        "- Init ≤ 5 ms median for every function: {} (slowest: {slowest}, {init_max:.2} ms).\n",
        verdict(init_max <= 5.0)
    ));
    md.push_str(&format!(
        "- Init ≤ 0.02× Python, every function: {} ({init_ratio:.3}× for the slowest).\n",
        verdict(init_ratio <= 0.02)
    ));
    md.push_str(&format!(
        "- Warm scan-gate p50 ≤ 0.5× Python: {} ({warm_ratio:.2}×).\n",
        verdict(warm_ratio <= 0.5)
    ));
    md.push_str(&format!(
        "- Engine: 10,000 findings against 500 exceptions ≤ 0.5 ms: {} ({engine_ms:.3} ms).\n",
        verdict(engine_ms <= 0.5)
    ));
    md.push_str(&format!("- Peak memory ≤ 0.5× Python: {} ({rss_ratio:.2}×).\n", verdict(rss_ratio <= 0.5)));
    md.push_str(&format!("- Zip ≤ 8 MB: {} (largest {zip_max:.1} MiB).\n\n", verdict(zip_max <= 8.0)));
    md.push_str("## Policy engine (`cargo bench -p shipgate-core --bench engine`)\n\n");
    md.push_str(&engine);
    md.push('\n');
    let out = root.join("bench/README.md");
    std::fs::write(&out, &md).unwrap();
    print!("{md}");
    eprintln!("==> wrote {}", Path::new(&out).display());
}

#[cfg(test)]
mod tests {
    use super::{Batch, steal_of, ticks_of};

    #[test]
    fn turns_add_up_to_one_batch_and_cpu_is_shared_by_every_event() {
        let mut all = Batch::default();
        all.add(Batch { times: vec![1.0, 2.0], wall: 0.5, cpu: 4.0 });
        all.add(Batch { times: vec![3.0, 4.0, 5.0], wall: 0.25, cpu: 6.0 });
        assert_eq!(all.times, [1.0, 2.0, 3.0, 4.0, 5.0], "in the order the turns came");
        assert!((all.wall - 0.75).abs() < f64::EPSILON);
        assert!((all.cpu_per_event() - 2.0).abs() < f64::EPSILON, "{}", all.cpu_per_event());
    }

    #[test]
    fn steal_is_the_eighth_count_of_the_cpu_line() {
        // cpu user nice system idle iowait irq softirq steal guest guest_nice
        let stat = "cpu  100 2 30 800 5 0 3 60 40 0\ncpu0 50 1 15 400 2 0 1 30 20 0\n";
        assert_eq!(steal_of(stat), (60, 1000), "guest time is inside user time and is not added again");
        assert_eq!(steal_of("intr 1 2 3\n"), (0, 0));
    }

    #[test]
    fn cpu_time_is_user_plus_system_and_nothing_else() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
        let stat = "4242 (python3 (a) b) S 1 4242 4242 0 -1 4194304 5000 0 0 0 250 30 7 2 20 0 3 0 100 0 0";
        assert!((ticks_of(stat) - 280.0).abs() < f64::EPSILON, "{}", ticks_of(stat));
    }
}
