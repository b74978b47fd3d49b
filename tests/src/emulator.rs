//! The emulator process: moto server with Shipgate's extensions, started on
//! 127.0.0.1 for one test and stopped when dropped.

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

use crate::*;

const ADMIN_SECRET: &str = "shipgate-local-admin-secret";
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
        self.inject_fault_after(action, 0, status, code, count);
    }

    /// [`Emulator::inject_fault`], letting the next `after` calls of the
    /// action through first.
    pub fn inject_fault_after(&self, action: &str, after: u32, status: u16, code: &str, count: u32) {
        let body =
            json!({"action": action, "status": status, "errorCode": code, "count": count, "after": after});
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

    /// Creates a pipeline shaped as `infra/pipeline/template.yaml` makes it:
    /// Source, Build, and a CodeDeploy blue/green action deploying the build
    /// output's `taskdef.json` (moto wants its role to trust CodePipeline).
    pub async fn create_pipeline(&self, name: &str) {
        self.create_pipeline_deploying(name, &[("BuildOutput", "taskdef.json")]).await;
    }

    /// [`Emulator::create_pipeline`] with one CodeDeployToECS action per
    /// `(TaskDefinitionTemplateArtifact, TaskDefinitionTemplatePath)`.
    pub async fn create_pipeline_deploying(&self, name: &str, deploys: &[(&str, &str)]) {
        use aws_sdk_codepipeline::types::*;
        let role_arn = self.create_service_role(&format!("{name}-role"), "codepipeline.amazonaws.com");
        let action = |name: &str, category: ActionCategory, provider: &str| {
            ActionDeclaration::builder().name(name).action_type_id(
                ActionTypeId::builder()
                    .category(category)
                    .owner(ActionOwner::Aws)
                    .provider(provider)
                    .version("1")
                    .build()
                    .unwrap(),
            )
        };
        let stage = |name: &str, actions: Vec<ActionDeclaration>| {
            StageDeclaration::builder().name(name).set_actions(Some(actions)).build().unwrap()
        };
        let deploy_actions = deploys
            .iter()
            .enumerate()
            .map(|(i, (artifact, path))| {
                action(&format!("BlueGreen{i}"), ActionCategory::Deploy, "CodeDeployToECS")
                    .configuration("ApplicationName", name)
                    .configuration("DeploymentGroupName", format!("{name}-dg"))
                    .configuration("TaskDefinitionTemplateArtifact", *artifact)
                    .configuration("TaskDefinitionTemplatePath", *path)
                    .configuration("AppSpecTemplateArtifact", *artifact)
                    .configuration("AppSpecTemplatePath", "appspec.yaml")
                    .input_artifacts(InputArtifact::builder().name(*artifact).build().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        let pipeline = PipelineDeclaration::builder()
            .name(name)
            .role_arn(role_arn)
            .artifact_store(
                ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap(),
            )
            .stages(stage(
                "Source",
                vec![action("Source", ActionCategory::Source, "CodeCommit").build().unwrap()],
            ))
            .stages(stage(
                "Build",
                vec![action("Build", ActionCategory::Build, "CodeBuild").build().unwrap()],
            ))
            .stages(stage("Deploy", deploy_actions))
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

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
