//! The harness for Shipgate's integration tests: a real local AWS.
//!
//! [`Emulator::start`] launches `emulator/shipgate_moto.py` (moto server plus
//! Shipgate's extensions) on 127.0.0.1 with a port the OS picks, and stops it
//! when dropped. The emulator also exits by itself when this process dies,
//! because it watches its standard input. Tests talk to it only through the
//! real SDK clients, plus the extension's small control API to seed scan
//! results, arm faults and read back what was reported.

// A harness panics to fail the test that uses it; that is its error handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod exposure;
pub mod local;
pub mod replay;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;
use shipgate_core::manifest;

/// The six functions, by crate and binary name: the one list the replay,
/// the benchmark and the infra tests use. A test holds it equal to the
/// folders under `functions/`, which is the list the Makefile builds.
pub const FUNCTIONS: [&str; 6] =
    ["source-trigger", "policy-validator", "scan-gate", "release-gate", "deploy-hooks", "notifier"];

pub const REGION: &str = "us-east-1";
/// The emulator's administrator (`tests/emulator/iam_enforcement.py`).
pub const ADMIN_KEY_ID: &str = "AKIASHIPGATEADMIN001";
const ADMIN_SECRET: &str = "shipgate-local-admin-secret";
pub const ACCOUNT: &str = "123456789012";
const READY: &str = "SHIPGATE_EMULATOR_READY ";
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator; dropping it stops the process.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    endpoint: String,
    port: u16,
}

/// One call the extension served, as recorded by it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Call {
    pub service: String,
    pub action: String,
    pub params: Value,
    pub outcome: String,
}

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where cargo puts build output: `CARGO_TARGET_DIR`, else `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// The Python that has moto: `SHIPGATE_PYTHON`, else the project's `.venv`,
/// else `python3` from the PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python3");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}

impl Emulator {
    /// Starts a fresh emulator with nothing in it.
    ///
    /// # Panics
    /// When the emulator cannot start; the message says how to install it.
    pub fn start() -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("emulator/shipgate_moto.py");
        let python = python();
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `make test` to set up", python.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let found =
                lines.by_ref().map_while(Result::ok).find_map(|l| l.strip_prefix(READY).map(str::to_owned));
            let _ = tx.send(found);
            // Keep draining so the emulator never blocks on a full pipe.
            for _ in lines {}
        });
        let endpoint = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(endpoint)) => endpoint,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the local AWS emulator did not start ({other:?}) with {}: \
                     is moto installed? `make test` installs it",
                    python.display()
                );
            }
        };
        let port = endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).expect("endpoint has a port");
        Self { child, endpoint, port }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Shipgate's production SDK configuration (timeouts, retries), pointed
    /// at the emulator as its administrator: for provisioning and for reading
    /// back what happened. Functions run as their own identities
    /// ([`Fleet::sdk_for`]).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_as(Credentials::new(ADMIN_KEY_ID, ADMIN_SECRET, None, None, "emulator-admin")).await
    }

    /// Seeds one image's scan, served by `DescribeImageScanFindings`.
    pub fn seed_scan(&self, scan: Value) {
        self.control("POST", "/_shipgate/ecr/scan-findings", Some(&scan));
    }

    /// Makes the next `count` calls of `action` fail with `status` and `code`.
    pub fn inject_fault(&self, action: &str, status: u16, code: &str, count: u32) {
        let body = json!({"action": action, "status": status, "errorCode": code, "count": count});
        self.control("POST", "/_shipgate/faults", Some(&body));
    }

    /// Every call the extension served, in order.
    pub fn calls(&self) -> Vec<Call> {
        let body = self.control("GET", "/_shipgate/calls", None);
        serde_json::from_value(body["calls"].clone()).expect("calls are well-formed")
    }

    /// The calls of one action.
    pub fn calls_of(&self, action: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.action == action).collect()
    }

    /// Creates an IAM role that `principal` (`codepipeline.amazonaws.com`) may
    /// assume, as moto's `CreatePipeline` insists, and returns its ARN.
    pub fn create_service_role(&self, name: &str, principal: &str) -> String {
        let body = json!({"name": name, "principal": principal});
        self.control("POST", "/_shipgate/iam/service-roles", Some(&body))["arn"].as_str().unwrap().to_owned()
    }

    /// Temporary credentials (key, secret, session token) of a role holding
    /// `policies`, as STS AssumeRole gives them: what CodePipeline hands a
    /// job as its `artifactCredentials`.
    pub fn session(&self, name: &str, policies: &[Value]) -> Credentials {
        let body = json!({"name": name, "policies": policies});
        let keys = self.control("POST", "/_shipgate/iam/sessions", Some(&body));
        let field = |k: &str| keys[k].as_str().unwrap().to_owned();
        Credentials::new(
            field("accessKeyId"),
            field("secretAccessKey"),
            Some(field("sessionToken")),
            None,
            "emulator-session",
        )
    }

    /// The SDK configuration of a new IAM user holding exactly `policies`:
    /// how a test runs as an identity other than a function's role.
    pub async fn sdk_config_with_policies(&self, name: &str, policies: &[Value]) -> SdkConfig {
        let body = json!({"name": name, "policies": policies});
        let keys = self.control("POST", "/_shipgate/iam/users", Some(&body));
        let field = |k: &str| keys[k].as_str().unwrap().to_owned();
        let credentials =
            Credentials::new(field("accessKeyId"), field("secretAccessKey"), None, None, "user");
        self.sdk_config_as(credentials).await
    }

    /// The SDK configuration of another identity, pointed at the emulator.
    pub async fn sdk_config_as(&self, credentials: Credentials) -> SdkConfig {
        shipgate_aws::config_loader()
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// Creates a pipeline with a Source and a Build stage (moto wants its
    /// role to trust CodePipeline).
    pub async fn create_pipeline(&self, name: &str) {
        use aws_sdk_codepipeline::types::*;
        let role_arn = self.create_service_role(&format!("{name}-role"), "codepipeline.amazonaws.com");
        let action = |name: &str, category: ActionCategory, provider: &str| {
            ActionDeclaration::builder()
                .name(name)
                .action_type_id(
                    ActionTypeId::builder()
                        .category(category)
                        .owner(ActionOwner::Aws)
                        .provider(provider)
                        .version("1")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap()
        };
        let stage = |name: &str, a: ActionDeclaration| {
            StageDeclaration::builder().name(name).actions(a).build().unwrap()
        };
        let pipeline = PipelineDeclaration::builder()
            .name(name)
            .role_arn(role_arn)
            .artifact_store(
                ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap(),
            )
            .stages(stage("Source", action("Source", ActionCategory::Source, "CodeCommit")))
            .stages(stage("Build", action("Build", ActionCategory::Build, "CodeBuild")))
            .build()
            .unwrap();
        aws_sdk_codepipeline::Client::new(&self.sdk_config().await)
            .create_pipeline()
            .pipeline(pipeline)
            .send()
            .await
            .unwrap();
    }

    /// POSTs to the control API (seeding what the extension offers).
    pub fn control_post(&self, path: &str, body: &Value) -> Value {
        self.control("POST", path, Some(body))
    }

    /// GETs from the control API.
    pub fn control_get(&self, path: &str) -> Value {
        self.control("GET", path, None)
    }

    /// A JSON exchange with the control API.
    pub fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let (head, payload) = self.http(method, path, &body, &[("Content-Type", "application/json")]);
        assert!(head.contains(" 200 "), "{method} {path}: {head}");
        serde_json::from_str(&payload).unwrap_or(Value::Null)
    }

    /// A minimal HTTP/1.1 exchange with the emulator on loopback.
    fn http(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (String, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("emulator is reachable");
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        stream.write_all(request.as_bytes()).expect("request written");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response read");
        let (head, payload) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (head.lines().next().unwrap_or_default().to_owned(), payload.to_owned())
    }
}

/// Creates a CodeDeploy ECS application and its deployment group.
pub async fn create_deployment_group(sdk: &SdkConfig, application: &str, group: &str) {
    create_deployment_group_of(sdk, application, group, None).await;
}

/// [`create_deployment_group`] deploying ECS service `(cluster, service)`,
/// as `GetDeploymentGroup` then names it. Either may exist already.
pub async fn create_deployment_group_of(
    sdk: &SdkConfig,
    application: &str,
    group: &str,
    service: Option<(&str, &str)>,
) {
    use aws_sdk_codedeploy::types::{ComputePlatform, EcsService};
    let codedeploy = aws_sdk_codedeploy::Client::new(sdk);
    let _ = codedeploy
        .create_application()
        .application_name(application)
        .compute_platform(ComputePlatform::Ecs)
        .send()
        .await;
    let service =
        service.map(|(cluster, name)| EcsService::builder().cluster_name(cluster).service_name(name).build());
    let _ = codedeploy
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .service_role_arn(format!("arn:aws:iam::{ACCOUNT}:role/codedeploy"))
        .set_ecs_services(service.map(|s| vec![s]))
        .send()
        .await;
}

/// A CodeDeploy ECS deployment in `application`'s `group` whose AppSpec
/// content names `task_definition`: the deployment id.
pub async fn create_ecs_deployment(
    sdk: &SdkConfig,
    application: &str,
    group: &str,
    task_definition: &str,
) -> String {
    use aws_sdk_codedeploy::types::{AppSpecContent, RevisionLocation, RevisionLocationType};
    let appspec = format!(
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: \"{task_definition}\"\n        LoadBalancerInfo: {{ContainerName: app, ContainerPort: 8080}}\n"
    );
    let revision = RevisionLocation::builder()
        .revision_type(RevisionLocationType::AppSpecContent)
        .app_spec_content(AppSpecContent::builder().content(appspec).build())
        .build();
    aws_sdk_codedeploy::Client::new(sdk)
        .create_deployment()
        .application_name(application)
        .deployment_group_name(group)
        .revision(revision)
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap()
}

/// The names of the JSON files in `dir` (not its subfolders), sorted.
pub fn json_files(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    files
}

/// Creates an SQS queue; returns its URL and ARN.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn = attrs.attributes.unwrap()[&QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// An SQS queue subscribed to the fleet's notification topic: what people
/// would receive.
#[derive(Debug)]
pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl Inbox {
    /// Every message delivered since the last call (SNS envelopes).
    pub async fn messages(&self) -> Vec<Value> {
        drain_queue(&self.sqs, &self.url).await
    }
}

/// Every message waiting in an SQS queue (JSON bodies), deleting them.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return messages;
        }
        for m in batch {
            messages.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
}

/// `sha256=<hex HMAC-SHA256>` of `body`, as GitHub signs a webhook.
pub fn github_signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A zip archive of `(name, text)` files, as CodePipeline stores artifacts.
pub fn zip_files(files: &[(&str, String)]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut buffer);
    for (name, body) in files {
        writer.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(body.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    buffer.into_inner()
}

/// How a [`TestListener`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// `200 OK` to everything.
    Healthy,
    /// `500 Internal Server Error` to everything.
    Failing,
    /// Accepts connections and never answers.
    Silent,
}

/// A real HTTP server on 127.0.0.1 (a port the OS picks) standing in for a
/// deployment's test listener; it counts the requests it receives.
#[derive(Debug)]
pub struct TestListener {
    pub url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestListener {
    pub async fn start(mode: ListenerMode) -> Self {
        Self::serve(mode, None).await
    }

    /// An `https://127.0.0.1:port` listener whose certificate (for
    /// `IP:127.0.0.1`) is signed by the test CA of `tests/fixtures/tls`
    /// ([`TestListener::test_ca`]).
    pub async fn start_tls(mode: ListenerMode) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = workspace_root().join("tests/fixtures/tls");
        let chain = vec![CertificateDer::from_pem_file(dir.join("listener.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("listener.key")).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Self::serve(mode, Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))).await
    }

    /// The roots that trust [`TestListener::start_tls`]'s certificate.
    pub fn test_ca() -> rustls::RootCertStore {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let ca = workspace_root().join("tests/fixtures/tls/ca.pem");
        roots.add(CertificateDer::from_pem_file(ca).unwrap()).unwrap();
        roots
    }

    async fn serve(mode: ListenerMode, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                let counter = counter.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => answer(socket, mode, &counter).await,
                        Some(acceptor) => {
                            // A client that refuses the certificate ends the handshake here.
                            if let Ok(stream) = acceptor.accept(socket).await {
                                answer(stream, mode, &counter).await;
                            }
                        }
                    }
                });
            }
        });
        Self { url, hits, task }
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads one request and answers it as `mode` says.
async fn answer<S>(mut socket: S, mode: ListenerMode, counter: &std::sync::atomic::AtomicUsize)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 4096];
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let status = match mode {
        ListenerMode::Healthy => "200 OK",
        ListenerMode::Failing => "500 Internal Server Error",
        ListenerMode::Silent => {
            // Hold the connection open, answering nothing.
            std::future::pending::<()>().await;
            return;
        }
    };
    let response = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

impl Drop for TestListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Captures every log line of this test process (nextest runs each test in
/// its own process, so the global subscriber is this test's alone).
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the capture as the global subscriber at `filter` (`trace`
    /// catches the SDK's own logging too).
    pub fn install(filter: &str) -> Self {
        let capture = Self::default();
        shipgate_aws::telemetry::install(capture.clone(), filter, true);
        capture
    }

    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// What the template's logical ids stand for in the emulator: the values
/// CloudFormation would substitute for `Ref` and `GetAtt` on deploy.
fn template_resources(topic_arn: &str, secret_arn: &str, key_arn: &str) -> Value {
    let arn = |service: &str, resource: &str| format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}");
    let key_id = key_arn.rsplit('/').next().unwrap_or(key_arn);
    let mut resources = json!({
        "ConfigBucket": {"Ref": CONFIG_BUCKET, "Arn": format!("arn:aws:s3:::{CONFIG_BUCKET}")},
        "ShipgateBus": {"Ref": EVENT_BUS, "Name": EVENT_BUS, "Arn": arn("events", &format!("event-bus/{EVENT_BUS}"))},
        "NotificationTopic": {"Ref": topic_arn, "TopicArn": topic_arn, "TopicName": TOPIC},
        "WebhookSecret": {"Ref": secret_arn, "Id": secret_arn},
        "DeadLetterQueue": {
            "Ref": format!("http://127.0.0.1/{ACCOUNT}/{DEAD_LETTER_QUEUE}"),
            "Arn": arn("sqs", DEAD_LETTER_QUEUE),
            "QueueName": DEAD_LETTER_QUEUE,
        },
        "ShipgateKey": {"Ref": key_id, "Arn": key_arn, "KeyId": key_id},
    });
    for function in FUNCTIONS {
        let logical: String =
            function.split('-').map(|w| w[..1].to_uppercase() + &w[1..]).collect::<String>() + "Function";
        resources[logical] = json!({"Ref": function, "Arn": arn("lambda", &format!("function:{function}"))});
    }
    resources
}

/// An image index in ECR and its per-platform images.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    pub digest: String,
    /// (`os/arch`, the image's digest), in the order pushed.
    pub children: Vec<(String, String)>,
}

impl ImageIndex {
    /// The digest of the image for `platform` (`linux/arm64`).
    pub fn child(&self, platform: &str) -> &str {
        self.children.iter().find(|(p, _)| p == platform).map(|(_, d)| d.as_str()).unwrap()
    }
}

/// The fleet's resources as `infra/template.yaml` deploys them (the
/// versioned config bucket, the Shipgate bus, the notification topic, the
/// webhook secret, the dead-letter queue), a queue that receives every event
/// put on the bus (so tests read back what a function emitted), and one
/// identity per function holding exactly its role's policies from the
/// template. `sdk` is the administrator's; a function runs as
/// [`Fleet::sdk_for`] gives it.
#[derive(Debug)]
pub struct Fleet {
    pub aws: Emulator,
    pub sdk: SdkConfig,
    pub config: shipgate_aws::env::FleetConfig,
    pub topic_arn: String,
    pub webhook_secret_arn: String,
    identities: BTreeMap<String, Identity>,
    sqs: aws_sdk_sqs::Client,
    events_queue: String,
}

/// A function's identity in the emulator: an IAM user holding exactly its
/// role's policies.
#[derive(Debug)]
struct Identity {
    credentials: Credentials,
    policies: Vec<Value>,
}

/// The config bucket: named as `events/` names it, so every sample payload
/// meets the emulator's resources.
pub const CONFIG_BUCKET: &str = "shipgate-config-123456789012";
pub const EVENT_BUS: &str = "shipgate";
pub const TOPIC: &str = "shipgate-notifications";
pub const WEBHOOK_SECRET_NAME: &str = "shipgate/github-webhook";
/// The GitHub webhook secret the fleet's secret holds.
pub const WEBHOOK_SECRET: &str = "shipgate-local-webhook-secret";
const DEAD_LETTER_QUEUE: &str = "shipgate-dead-letters";

impl Fleet {
    pub async fn start() -> Self {
        let aws = Emulator::start();
        let sdk = aws.sdk_config().await;
        // The Shipgate key encrypts the bucket, the topic, the secret and the
        // queue, as in the template, so using them needs the key too.
        let key = aws.control("POST", "/_shipgate/kms/keys", Some(&json!({"description": "ShipgateKey"})));
        let key_arn = key["arn"].as_str().unwrap().to_owned();
        let s3 = shipgate_aws::clients::s3(&sdk);
        s3.create_bucket().bucket(CONFIG_BUCKET).send().await.unwrap();
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(&key_arn)
            .build()
            .unwrap();
        let rule =
            ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(by_default).build();
        s3.put_bucket_encryption()
            .bucket(CONFIG_BUCKET)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder().rules(rule).build().unwrap(),
            )
            .send()
            .await
            .unwrap();
        s3.put_bucket_versioning()
            .bucket(CONFIG_BUCKET)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
        eventbridge.create_event_bus().name(EVENT_BUS).send().await.unwrap();
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let events_queue =
            sqs.create_queue().queue_name("shipgate-events").send().await.unwrap().queue_url.unwrap();
        let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:shipgate-events");
        eventbridge
            .put_rule()
            .name("everything")
            .event_bus_name(EVENT_BUS)
            .event_pattern(r#"{"source":["shipgate"]}"#)
            .send()
            .await
            .unwrap();
        eventbridge
            .put_targets()
            .rule("everything")
            .event_bus_name(EVENT_BUS)
            .targets(
                aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().unwrap(),
            )
            .send()
            .await
            .unwrap();
        let config = shipgate_aws::env::FleetConfig {
            config_bucket: CONFIG_BUCKET.to_owned(),
            event_bus: EVENT_BUS.to_owned(),
        };
        let topic_arn = aws_sdk_sns::Client::new(&sdk)
            .create_topic()
            .name(TOPIC)
            .attributes("KmsMasterKeyId", &key_arn)
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
        let webhook_secret_arn = aws_sdk_secretsmanager::Client::new(&sdk)
            .create_secret()
            .name(WEBHOOK_SECRET_NAME)
            .secret_string(WEBHOOK_SECRET)
            .kms_key_id(&key_arn)
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();
        sqs.create_queue()
            .queue_name(DEAD_LETTER_QUEUE)
            .attributes(aws_sdk_sqs::types::QueueAttributeName::KmsMasterKeyId, &key_arn)
            .send()
            .await
            .unwrap();
        let resources = template_resources(&topic_arn, &webhook_secret_arn, &key_arn);
        let identities = aws.control(
            "POST",
            "/_shipgate/iam/functions",
            Some(&json!({"resources": resources, "region": REGION})),
        )["functions"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, keys)| {
                let field = |k: &str| keys[k].as_str().unwrap().to_owned();
                let credentials =
                    Credentials::new(field("accessKeyId"), field("secretAccessKey"), None, None, "role");
                let policies = keys["policies"].as_array().cloned().unwrap_or_default();
                (name.clone(), Identity { credentials, policies })
            })
            .collect();
        Self { aws, sdk, config, topic_arn, webhook_secret_arn, identities, sqs, events_queue }
    }

    /// The SDK configuration `function` runs with: an identity holding
    /// exactly its role's policies from `infra/template.yaml`, so a call the
    /// template does not allow fails here as it would on AWS.
    ///
    /// # Panics
    /// When the template has no function of that name.
    pub async fn sdk_for(&self, function: &str) -> SdkConfig {
        self.aws.sdk_config_as(self.identity(function).credentials.clone()).await
    }

    /// The policies `function`'s role holds, resolved as deployed.
    pub fn policies_of(&self, function: &str) -> Vec<Value> {
        self.identity(function).policies.clone()
    }

    fn identity(&self, function: &str) -> &Identity {
        self.identities.get(function).unwrap_or_else(|| {
            panic!("infra/template.yaml has no function {function} (it has {:?})", self.identities.keys())
        })
    }

    /// A CodePipeline job's `artifactCredentials`: a session of a role that
    /// may read `bucket`'s objects and nothing else, as CodePipeline hands one
    /// to an action.
    pub fn artifact_credentials(&self, bucket: &str) -> Credentials {
        let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
        self.aws.session("codepipeline-artifacts", &[policy])
    }

    /// A queue subscribed to the notification topic, with an optional SNS
    /// filter policy.
    pub async fn inbox(&self, name: &str, filter: Option<&str>) -> Inbox {
        let (url, arn) = create_queue(&self.sqs, name).await;
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let mut subscribe = sns.subscribe().topic_arn(&self.topic_arn).protocol("sqs").endpoint(arn);
        if let Some(filter) = filter {
            subscribe = subscribe.attributes("FilterPolicy", filter);
        }
        subscribe.send().await.unwrap();
        Inbox { sqs: self.sqs.clone(), url }
    }

    /// The notifier's configuration as the template sets it (default
    /// categories, email, 15-minute exposure windows), for this fleet.
    pub fn notifier_config(&self) -> notifier::Config {
        notifier::Config {
            config_bucket: self.config.config_bucket.clone(),
            topic_arn: self.topic_arn.clone(),
            categories: shipgate_core::notify::Category::DEFAULTS.into_iter().collect(),
            format: notifier::Format::Email,
            exposure_window: chrono::Duration::minutes(15),
        }
    }

    /// The access key `function` signs with, for the runtime emulator.
    pub fn credentials_of(&self, function: &str) -> &Credentials {
        &self.identity(function).credentials
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        shipgate_aws::clients::s3(&self.sdk)
    }

    /// Every event the bus delivered since the last call, in order.
    pub async fn events(&self) -> Vec<Value> {
        drain_queue(&self.sqs, &self.events_queue).await
    }

    /// Drops the events the bus delivered so far, unread: for a long run
    /// that never reads them, since moto counts a queue's messages on every
    /// delivery to it, so an undrained queue makes every event slower.
    pub async fn forget_events(&self) {
        self.sqs.purge_queue().queue_url(&self.events_queue).send().await.unwrap();
    }

    /// Puts an object in the config bucket; returns its version id.
    pub async fn put_config(&self, key: &str, body: &str) -> String {
        let out = self
            .s3()
            .put_object()
            .bucket(CONFIG_BUCKET)
            .key(key)
            .body(body.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
        out.version_id.unwrap()
    }

    /// Reads an object from the config bucket as JSON, if it exists.
    pub async fn get_json(&self, key: &str) -> Option<Value> {
        let out = self.s3().get_object().bucket(CONFIG_BUCKET).key(key).send().await.ok()?;
        let bytes = out.body.collect().await.unwrap().to_vec();
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Installs a last-known-good policy for `scope` (a repository name, or
    /// `default`) as policy-validator would have written it.
    pub async fn install_policy(&self, scope: &str, yaml: &str) {
        let key = format!("policies/{scope}/appsec.yaml");
        let source = shipgate_core::lkg::PolicySource {
            bucket: CONFIG_BUCKET.to_owned(),
            key: key.clone(),
            version_id: None,
            sequencer: None,
            uploaded_at: chrono::Utc::now(),
        };
        let shipgate_core::lkg::Judged::Valid(lkg) =
            shipgate_core::lkg::judge_upload(yaml.as_bytes(), source, chrono::Utc::now())
        else {
            panic!("test policy for {scope} is invalid")
        };
        let body = serde_json::to_string(&lkg).unwrap();
        self.put_config(&format!("policies/{scope}/appsec.lkg.json"), &body).await;
    }

    /// Creates a pipeline (see [`Emulator::create_pipeline`]).
    pub async fn create_pipeline(&self, name: &str) {
        self.aws.create_pipeline(name).await;
    }

    /// Creates an ECR repository.
    pub async fn create_repository(&self, name: &str) {
        aws_sdk_ecr::Client::new(&self.sdk).create_repository().repository_name(name).send().await.unwrap();
    }

    /// Pushes a blob with ECR's layer-upload APIs, as `docker push` does,
    /// and returns its digest.
    pub async fn push_blob(&self, repository: &str, blob: &[u8]) -> String {
        let ecr = aws_sdk_ecr::Client::new(&self.sdk);
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(blob)));
        let upload = ecr.initiate_layer_upload().repository_name(repository).send().await.unwrap();
        let id = upload.upload_id().unwrap().to_owned();
        ecr.upload_layer_part()
            .repository_name(repository)
            .upload_id(&id)
            .part_first_byte(0)
            .part_last_byte(blob.len() as i64 - 1)
            .layer_part_blob(aws_smithy_types::Blob::new(blob))
            .send()
            .await
            .unwrap();
        ecr.complete_layer_upload()
            .repository_name(repository)
            .upload_id(&id)
            .layer_digests(&digest)
            .send()
            .await
            .unwrap();
        digest
    }

    /// Pushes one image built for `platform` (`os/arch`): its config blob,
    /// then its OCI manifest (tagged `tag` if given). Returns ECR's digest.
    pub async fn push_image(&self, repository: &str, tag: Option<&str>, platform: &str) -> String {
        let (os, arch) = platform.split_once('/').unwrap();
        let config = json!({"architecture": arch, "os": os, "created": "2026-11-28T12:00:00Z",
            "config": {"User": "10001"}, "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created_by": format!("{repository} {tag:?} {platform}")}]});
        let config = config.to_string();
        let config_digest = self.push_blob(repository, config.as_bytes()).await;
        let manifest = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": []});
        self.put_image(repository, &manifest, manifest::OCI_MANIFEST, tag).await
    }

    async fn put_image(
        &self,
        repository: &str,
        manifest: &Value,
        media_type: &str,
        tag: Option<&str>,
    ) -> String {
        let out = aws_sdk_ecr::Client::new(&self.sdk)
            .put_image()
            .repository_name(repository)
            .image_manifest(manifest.to_string())
            .image_manifest_media_type(media_type)
            .set_image_tag(tag.map(str::to_owned))
            .send()
            .await
            .unwrap();
        out.image().and_then(|i| i.image_id()).and_then(|id| id.image_digest()).unwrap().to_owned()
    }

    /// Pushes what `docker buildx build --platform ... --push` pushes: one
    /// image per platform (`os/arch`, e.g. `linux/arm64`), then the OCI image
    /// index naming them, plus a provenance attestation as buildx adds.
    /// Digests are ECR's, from `PutImage`.
    pub async fn push_image_index(&self, repository: &str, tag: &str, platforms: &[&str]) -> ImageIndex {
        let mut children = Vec::new();
        let mut entries = Vec::new();
        for platform in platforms {
            let (os, arch) = platform.split_once('/').unwrap();
            let digest = self.push_image(repository, None, platform).await;
            entries.push(json!({"mediaType": manifest::OCI_MANIFEST, "digest": digest, "size": 512,
                "platform": {"architecture": arch, "os": os}}));
            children.push(((*platform).to_owned(), digest));
        }
        entries.push(
            json!({"mediaType": manifest::OCI_MANIFEST, "digest": format!("sha256:{}", "a".repeat(64)),
            "size": 566, "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            "platform": {"architecture": "unknown", "os": "unknown"}}),
        );
        let index = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": entries});
        let digest = self.put_image(repository, &index, manifest::OCI_INDEX, Some(tag)).await;
        ImageIndex { digest, children }
    }

    /// The EventBridge `Object Created` event S3 sends for an upload.
    pub fn object_created(&self, key: &str, version_id: &str, sequencer: &str) -> Value {
        json!({
            "version": "0", "id": format!("evt-{sequencer}"), "detail-type": "Object Created", "source": "aws.s3",
            "account": ACCOUNT, "time": "2026-11-28T09:30:00Z", "region": REGION,
            "resources": [format!("arn:aws:s3:::{CONFIG_BUCKET}")],
            "detail": {"version": "0", "bucket": {"name": CONFIG_BUCKET},
                "object": {"key": key, "size": 100, "etag": "e", "version-id": version_id, "sequencer": sequencer},
                "request-id": "r", "requester": ACCOUNT, "reason": "PutObject"}
        })
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client for the SDK that answers every request with `200 {}` after
/// `delay` (on tokio's clock: tests pause it), counting the requests: an AWS
/// API that is slow to answer, for the report-deadline tests.
#[derive(Debug, Clone)]
pub struct SlowHttp {
    pub delay: std::time::Duration,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowHttp {
    pub fn new(delay: std::time::Duration) -> Self {
        Self { delay, requests: Default::default() }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An SDK configuration that sends through this client, with Shipgate's
    /// own timeouts and retries (as `shipgate_aws::clients` sets them).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIASLOW", "slow-secret", None, None, "slow"),
            ))
            .http_client(self.clone())
            .timeout_config(shipgate_aws::clients::timeout_config())
            .retry_config(shipgate_aws::clients::retry_config())
            .sleep_impl(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
                aws_smithy_async::rt::sleep::TokioSleep::new(),
            ))
            .build()
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for SlowHttp {
    fn call(
        &self,
        _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = self.delay;
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            tokio::time::sleep(delay).await;
            let status = aws_smithy_runtime_api::http::StatusCode::try_from(200_u16).unwrap();
            Ok(aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                status,
                aws_smithy_types::body::SdkBody::from("{}"),
            ))
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for SlowHttp {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
    }
}
