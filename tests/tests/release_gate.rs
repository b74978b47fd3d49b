//! release-gate against the local AWS emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use release_gate::{Config, Deps, handle, run_job};
use serde_json::{Value, json};
use shipgate_aws::Deadline;
use shipgate_aws::codepipeline::{CodePipeline, JobResult, JobStatus};
use shipgate_tests::{ACCOUNT, CONFIG_BUCKET, Fleet, REGION};

const REPO: &str = "payments-api";
const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
const ARTIFACTS: &str = "codepipeline-artifacts-test";

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn image() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{DIGEST}")
}

fn compliant_taskdef() -> Value {
    json!({"family": "payments-api", "networkMode": "awsvpc", "containerDefinitions": [{
        "name": "app", "image": "<IMAGE1_NAME>", "user": "10001", "readonlyRootFilesystem": true,
        "logConfiguration": {"logDriver": "awslogs"},
        "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}]}]})
}

struct Gate {
    fleet: Fleet,
    deps: Deps,
    /// The job's artifactCredentials: a session of a role that may read the
    /// artifact bucket, as CodePipeline hands it to the action.
    artifact: aws_credential_types::Credentials,
}

impl Gate {
    async fn start(policy: &str) -> Self {
        let fleet = Fleet::start().await;
        fleet.create_repository(REPO).await;
        fleet.install_policy(REPO, policy).await;
        fleet.s3().create_bucket().bucket(ARTIFACTS).send().await.unwrap();
        let deps = Deps::new(
            &fleet.sdk_for("release-gate").await,
            &Config { fleet: fleet.config.clone(), report_margin: Duration::from_millis(2500) },
        )
        .unwrap();
        let artifact = fleet.artifact_credentials(ARTIFACTS);
        Self { fleet, deps, artifact }
    }

    async fn artifact(&self, key: &str, files: &[(&str, String)]) {
        self.fleet
            .s3()
            .put_object()
            .bucket(ARTIFACTS)
            .key(key)
            .body(shipgate_tests::zip_files(files).into())
            .send()
            .await
            .unwrap();
    }

    async fn standard_artifact(&self, key: &str, taskdef: Value) {
        let files = [
            ("imageDetail.json", json!({"ImageURI": image()}).to_string()),
            ("taskdef.json", taskdef.to_string()),
        ];
        self.artifact(key, &files).await;
    }

    fn seed_scan(&self, status: &str, findings: Vec<Value>) {
        self.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": status,
            "completedAt": 1_795_860_000, "findings": findings}));
    }

    /// A job as CodePipeline creates it: known to GetJobDetails, and its event.
    fn job(&self, job_id: &str, artifact_key: &str, params: &str, continuation: Option<&str>) -> Value {
        let body = json!({"jobId": job_id, "pipelineName": "payments", "pipelineExecutionId": "exec-1"});
        self.fleet.aws.control_post("/_shipgate/codepipeline/jobs", &body);
        let mut data = json!({
            "actionConfiguration": {"configuration": {"FunctionName": "release-gate", "UserParameters": params}},
            "inputArtifacts": [{"name": "BuildOutput", "revision": null,
                "location": {"type": "S3", "s3Location": {"bucketName": ARTIFACTS, "objectKey": artifact_key}}}],
            "outputArtifacts": [],
            "artifactCredentials": {"accessKeyId": self.artifact.access_key_id(),
                "secretAccessKey": self.artifact.secret_access_key(),
                "sessionToken": self.artifact.session_token(), "expirationTime": 1_795_861_800_000_i64}});
        if let Some(token) = continuation {
            data["continuationToken"] = token.into();
        }
        json!({"CodePipeline.job": {"id": job_id, "accountId": ACCOUNT, "data": data}})
    }

    async fn run(&self, event: Value) -> release_gate::Outcome {
        let deadline = Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500));
        handle(&self.deps, event, deadline, now()).await.unwrap()
    }

    /// The digests whose scans were read, in order.
    fn judged_digests(&self) -> Vec<String> {
        self.fleet
            .aws
            .calls_of("DescribeImageScanFindings")
            .iter()
            .map(|c| c.params["imageId"]["imageDigest"].as_str().unwrap().to_owned())
            .collect()
    }

    fn reports(&self) -> Vec<shipgate_tests::Call> {
        self.fleet
            .aws
            .calls()
            .into_iter()
            .filter(|c| c.action == "PutJobSuccessResult" || c.action == "PutJobFailureResult")
            .collect()
    }
}

const PARAMS: &str = r#"{"environment":"prod"}"#;
const POLICY: &str =
    "version: 1\nowner: team-payments\nenvironments:\n  prod: {scan: {thresholds: {MEDIUM: 0}}}\n";

#[tokio::test]
async fn clean_release_passes_with_output_variables_and_a_decision_record() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![json!({"name": "CVE-2026-1", "severity": "LOW", "attributes": []})]);

    let outcome = gate.run(gate.job("job-pass", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded, "{}", outcome.summary);

    let reports = gate.reports();
    assert_eq!(reports.len(), 1);
    let vars = &reports[0].params["outputVariables"];
    assert_eq!(vars["IMAGE_DIGEST"], DIGEST);
    let decision_id = vars["DECISION_ID"].as_str().unwrap();
    assert_eq!(vars["POLICY_SHA256"].as_str().unwrap().len(), 64);
    assert!(reports[0].params["executionDetails"]["summary"].as_str().unwrap().starts_with("PASS:"));

    let record = gate.fleet.get_json(&format!("decisions/payments/exec-1/{decision_id}.json")).await.unwrap();
    assert_eq!(record["decision"], "PASS");
    assert_eq!(record["digests"][DIGEST], "PASS");
    assert_eq!(record["environment"], "prod");
    let provenance = gate.fleet.get_json(&format!("provenance/prod/{DIGEST}.json")).await.unwrap();
    assert_eq!(provenance["decision_id"], decision_id);
    assert_eq!(provenance["environment"], "prod");
    let events = gate.fleet.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["detail-type"], "Shipgate Gate Decision");
    assert_eq!(events[0]["detail"]["decision"], "PASS");
    assert_eq!(events[0]["detail"]["owner"], "team-payments");
}

#[tokio::test]
async fn artifact_is_read_with_the_jobs_credentials_only() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("creds.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    gate.run(gate.job("job-creds", "creds.zip", PARAMS, None)).await;
    let requests = gate.fleet.aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().clone();
    let artifact_reads: Vec<&Value> = requests
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains(ARTIFACTS))
        .collect();
    assert_eq!(artifact_reads.len(), 1);
    assert_eq!(artifact_reads[0]["accessKeyId"], gate.artifact.access_key_id());
    let config_reads = requests.iter().filter(|r| r["path"].as_str().unwrap().contains(CONFIG_BUCKET));
    assert!(
        config_reads.into_iter().all(|r| r["accessKeyId"] != gate.artifact.access_key_id()),
        "the config bucket uses the role"
    );
}

/// With enhanced scanning, the gate reads Inspector's findings through ECR
/// (which needs inspector2:ListFindings as well) and judges them.
#[tokio::test]
async fn enhanced_findings_read_straight_from_ecr_are_judged() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE",
        "completedAt": 1_795_860_000, "enhancedFindings": [{"severity": "CRITICAL", "status": "ACTIVE",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2024-6387",
                "vulnerablePackages": [{"name": "openssh", "version": "9.6"}]}}]}));
    let outcome = gate.run(gate.job("job-enhanced", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("CVE-2024-6387"), "{}", outcome.summary);
}

/// An enhanced scan of low-severity findings: under every threshold, but
/// one has a known exploit and one an EPSS score of 0.7 (which only
/// Inspector's ListFindings carries).
fn seed_risky_scan(gate: &Gate) {
    let finding = |id: &str, package: &str| {
        json!({"severity": "LOW", "status": "ACTIVE", "fixAvailable": "YES",
        "packageVulnerabilityDetails": {"vulnerabilityId": id, "vulnerablePackages": [{"name": package}]}})
    };
    let mut exploited = finding("CVE-2026-7001", "curl");
    exploited["exploitAvailable"] = "YES".into();
    let mut likely = finding("CVE-2026-7002", "zlib");
    likely["exploitAvailable"] = "NO".into();
    likely["epss"] = json!({"score": 0.7});
    gate.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE",
        "completedAt": 1_795_860_000, "enhancedFindings": [exploited, likely]}));
}

/// Inspector has no score for a finding ECR lists: under an EPSS bound the
/// release fails, naming it, unless the policy lets a missing score warn.
#[tokio::test]
async fn a_finding_inspector_has_no_score_for_fails_an_epss_policy() {
    for (missing, expect) in [("", JobStatus::Failed), (", epss_missing: warn", JobStatus::Succeeded)] {
        let gate = Gate::start(&format!(
            "version: 1\nenvironments:\n  prod:\n    scan:\n      fail_on: {{epss_at_least: 0.5{missing}}}\n"
        ))
        .await;
        gate.standard_artifact("unscored.zip", compliant_taskdef()).await;
        let unscored = json!({"severity": "LOW", "status": "ACTIVE", "fixAvailable": "YES", "exploitAvailable": "NO",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2026-7003", "vulnerablePackages": [{"name": "xz"}]}});
        gate.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": DIGEST, "status": "ACTIVE",
            "completedAt": 1_795_860_000, "enhancedFindings": [unscored]}));
        let outcome = gate.run(gate.job("job-unscored", "unscored.zip", PARAMS, None)).await;
        assert_eq!(outcome.result, expect, "{missing}: {}", outcome.summary);
        if expect == JobStatus::Failed {
            assert!(outcome.summary.contains("carry no EPSS score (CVE-2026-7003)"), "{}", outcome.summary);
        }
    }
}

#[tokio::test]
async fn fail_on_blocks_a_known_exploit_and_an_epss_score_read_from_inspector() {
    let gate = Gate::start(
        "version: 1\nenvironments:\n  prod:\n    scan:\n      fail_on: {exploit_available: true, epss_at_least: 0.5}\n",
    )
    .await;
    gate.standard_artifact("risk.zip", compliant_taskdef()).await;
    seed_risky_scan(&gate);
    let outcome = gate.run(gate.job("job-risk", "risk.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    let exploit = outcome.summary.find("CVE-2026-7001 in curl (LOW) has a known exploit");
    let epss = outcome.summary.find("CVE-2026-7002 in zlib (LOW) has EPSS score 0.7");
    assert!(exploit.is_some() && epss.is_some(), "{}", outcome.summary);
    assert!(exploit < epss, "known exploits first: {}", outcome.summary);
    // The score came from Inspector, asked about this image only.
    let asked = gate.fleet.aws.calls_of("ListFindings");
    assert_eq!(asked.len(), 1);
    let criteria = &asked[0].params["filterCriteria"];
    assert_eq!(criteria["ecrImageHash"][0]["value"], DIGEST);
    assert_eq!(criteria["ecrImageRepositoryName"][0]["value"], REPO);
}

#[tokio::test]
async fn without_fail_on_the_same_scan_passes_and_inspector_is_not_asked() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("calm.zip", compliant_taskdef()).await;
    seed_risky_scan(&gate);
    let outcome = gate.run(gate.job("job-calm", "calm.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded, "{}", outcome.summary);
    assert!(gate.fleet.aws.calls_of("ListFindings").is_empty());
}

#[tokio::test]
async fn critical_cve_fails_the_job_naming_it() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan(
        "COMPLETE",
        vec![json!({"name": "CVE-2024-3094", "severity": "CRITICAL",
        "attributes": [{"key": "package_name", "value": "xz-utils"}]})],
    );
    let outcome = gate.run(gate.job("job-cve", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    let reports = gate.reports();
    assert_eq!(reports[0].action, "PutJobFailureResult");
    let message = reports[0].params["failureDetails"]["message"].as_str().unwrap();
    assert!(message.starts_with("Release blocked by policies/payments-api/appsec.lkg.json"), "{message}");
    assert!(message.contains("CVE-2024-3094"), "{message}");
    assert_eq!(reports[0].params["failureDetails"]["type"], "JobFailed");
    assert_eq!(gate.fleet.events().await[0]["detail"]["decision"], "FAIL");
    assert!(
        gate.fleet.get_json(&format!("provenance/prod/{DIGEST}.json")).await.is_none(),
        "no provenance for a failure"
    );
}

#[tokio::test]
async fn privileged_task_definition_fails_the_job() {
    let gate = Gate::start(POLICY).await;
    let mut taskdef = compliant_taskdef();
    taskdef["containerDefinitions"][0]["privileged"] = true.into();
    gate.standard_artifact("a.zip", taskdef).await;
    gate.seed_scan("COMPLETE", vec![]);
    let outcome = gate.run(gate.job("job-priv", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(outcome.summary.contains("privileged (app): runs privileged"), "{}", outcome.summary);
}

#[tokio::test]
async fn pending_scan_continues_then_passes_on_the_next_invocation() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("IN_PROGRESS", vec![]);
    let first = gate.run(gate.job("job-wait-1", "a.zip", PARAMS, None)).await;
    assert_eq!(first.result, JobStatus::Continue);
    let reports = gate.reports();
    let token = reports[0].params["continuationToken"].as_str().unwrap().to_owned();
    assert!(token.len() <= 2048 && !token.contains(gate.artifact.secret_access_key()));
    assert!(gate.fleet.events().await.is_empty(), "no decision yet");

    gate.seed_scan("COMPLETE", vec![]);
    // CodePipeline invokes again with a new job id and the token.
    let second = gate.run(gate.job("job-wait-2", "a.zip", PARAMS, Some(&token))).await;
    assert_eq!(second.result, JobStatus::Succeeded, "{}", second.summary);
}

#[tokio::test]
async fn scan_that_outlasts_scan_wait_fails_the_job() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("IN_PROGRESS", vec![]);
    let started = shipgate_core::gate::Continuation {
        waiting_since: (now() - chrono::Duration::minutes(31)).timestamp(),
        attempts: 30,
    };
    let outcome = gate.run(gate.job("job-late", "a.zip", PARAMS, Some(&started.to_token()))).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(outcome.summary.contains("did not finish within scan.wait (30m)"), "{}", outcome.summary);
}

#[tokio::test]
async fn missing_taskdef_fails_naming_the_file() {
    let gate = Gate::start(POLICY).await;
    gate.artifact("a.zip", &[("imageDetail.json", json!({"ImageURI": image()}).to_string())]).await;
    let outcome = gate.run(gate.job("job-no-td", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(
        outcome.summary.contains("taskdef.json is missing from the input artifact(s) BuildOutput"),
        "{}",
        outcome.summary
    );
}

#[tokio::test]
async fn malformed_user_parameters_fail_naming_the_field() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    let outcome = gate.run(gate.job("job-params", "a.zip", "{policy: payments-api", None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(outcome.summary.contains("UserParameters is not valid"), "{}", outcome.summary);
    let outcome = gate.run(gate.job("job-params-2", "a.zip", r#"{"enviroment":"prod"}"#, None)).await;
    assert!(outcome.summary.contains("unknown field `enviroment`"), "{}", outcome.summary);
}

#[tokio::test]
async fn duplicate_delivery_of_a_finished_job_is_success_and_announces_nothing_new() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let event = gate.job("job-dup", "a.zip", PARAMS, None);
    let first = gate.run(event.clone()).await;
    let second = gate.run(event).await;
    assert_eq!((first.reported_now, second.reported_now), (true, false));
    let outcomes: Vec<String> = gate.reports().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["Succeeded", "InvalidJobStateException"]);
    assert_eq!(gate.fleet.events().await.len(), 1);
}

#[tokio::test]
async fn repository_policy_in_the_artifact_can_only_tighten() {
    let gate = Gate::start(POLICY).await;
    let files = [
        ("imageDetail.json", json!({"ImageURI": image()}).to_string()),
        ("taskdef.json", compliant_taskdef().to_string()),
        ("appsec.yaml", "version: 1\nscan: {thresholds: {LOW: 0}}\n".to_owned()),
    ];
    gate.artifact("a.zip", &files).await;
    gate.seed_scan("COMPLETE", vec![json!({"name": "CVE-2026-1", "severity": "LOW", "attributes": []})]);
    let outcome = gate.run(gate.job("job-repo", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("1 LOW finding, more than the 0 allowed"), "{}", outcome.summary);
}

#[tokio::test]
async fn no_policy_fails_closed() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    let outcome = gate.run(gate.job("job-nopol", "a.zip", r#"{"policy":"nonexistent"}"#, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(
        outcome.summary.contains("policy nonexistent has no accepted appsec.yaml"),
        "{}",
        outcome.summary
    );
}

/// A stored verdict does not outlive its truth: an exception that expired
/// after the scan no longer counts when the release is decided.
#[tokio::test]
async fn a_release_is_judged_on_the_findings_and_exceptions_of_its_day() {
    let policy = "version: 1\nscan:\n  exceptions:\n    - {id: CVE-2024-3094, expires: 2026-12-01, reason: patched in our fork}\n";
    let gate = Gate::start(policy).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan(
        "COMPLETE",
        vec![json!({"name": "CVE-2024-3094", "severity": "CRITICAL",
            "attributes": [{"key": "package_name", "value": "xz-utils"}]})],
    );
    // scan-gate judged the scan while the exception held, and stored PASS.
    let scan_gate = scan_gate::Deps::new(&gate.fleet.sdk_for("scan-gate").await, &gate.fleet.config);
    let scan = json!({"version": "0", "id": "e1", "detail-type": "ECR Image Scan", "source": "aws.ecr",
        "account": ACCOUNT, "time": "2026-11-28T10:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"scan-status": "COMPLETE", "repository-name": REPO, "image-digest": DIGEST}});
    let stored = scan_gate::handle(&scan_gate, scan, now()).await.unwrap();
    assert!(serde_json::to_string(&stored).unwrap().contains("\"verdict\":\"PASS\""), "{stored:?}");
    // A week later the exception has expired: the same digest is blocked.
    let later: DateTime<Utc> = "2026-12-05T12:00:00Z".parse().unwrap();
    let deadline = Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500));
    let outcome =
        handle(&gate.deps, gate.job("job-later", "a.zip", "", None), deadline, later).await.unwrap();
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("CVE-2024-3094"), "{}", outcome.summary);
}

/// Every image the deployment will run is judged, or the job fails saying
/// it cannot tell which image is which (it used to judge only the first and
/// put it in every placeholder).
#[tokio::test]
async fn a_build_of_several_images_is_not_passed_on_the_first_alone() {
    let gate = Gate::start(POLICY).await;
    gate.seed_scan("COMPLETE", vec![]);
    let mut two = compliant_taskdef();
    let mut sidecar = two["containerDefinitions"][0].clone();
    sidecar["name"] = "sidecar".into();
    sidecar["image"] = "<IMAGE2_NAME>".into();
    two["containerDefinitions"].as_array_mut().unwrap().push(sidecar);
    gate.standard_artifact("two.zip", two).await;
    let outcome = gate.run(gate.job("job-two", "two.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("names 2 images (<IMAGE1_NAME>, <IMAGE2_NAME>)"), "{}", outcome.summary);
}

/// A sidecar from another repository is judged by that repository's own
/// policy, as deploy-hooks will judge it: its LOW finding passes the
/// release's policy but fails envoy's, so the release fails, saying which
/// policy. (It used to be judged by the release's policy and pass.)
#[tokio::test]
async fn a_sidecar_is_judged_by_its_own_repositorys_policy() {
    let gate = Gate::start(POLICY).await;
    gate.seed_scan("COMPLETE", vec![]);
    gate.fleet.create_repository("envoy").await;
    gate.fleet
        .install_policy(
            "envoy",
            "version: 1\nowner: team-mesh\nenvironments:\n  prod: {scan: {thresholds: {LOW: 0}}}\n",
        )
        .await;
    let envoy = gate.fleet.push_image("envoy", Some("1.31"), "linux/amd64").await;
    gate.fleet.aws.seed_scan(json!({"repositoryName": "envoy", "imageDigest": envoy, "status": "COMPLETE",
        "completedAt": 1_795_860_000, "findings": [{"name": "CVE-2026-7", "severity": "LOW", "attributes": []}]}));
    let mut td = compliant_taskdef();
    let mut sidecar = td["containerDefinitions"][0].clone();
    sidecar["name"] = "envoy".into();
    sidecar["image"] = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/envoy@{envoy}").into();
    td["containerDefinitions"].as_array_mut().unwrap().push(sidecar);
    gate.standard_artifact("mesh.zip", td).await;
    let outcome = gate.run(gate.job("job-mesh", "mesh.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("(under policies/envoy/appsec.lkg.json)"), "{}", outcome.summary);
    assert!(outcome.summary.contains("CVE-2026-7"), "{}", outcome.summary);

    // A sidecar repository with no policy (and no default) fails closed.
    gate.fleet
        .s3()
        .delete_object()
        .bucket(CONFIG_BUCKET)
        .key("policies/envoy/appsec.lkg.json")
        .send()
        .await
        .unwrap();
    let outcome = gate.run(gate.job("job-mesh-2", "mesh.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("envoy@"), "{}", outcome.summary);
    assert!(outcome.summary.contains("failing closed"), "{}", outcome.summary);
}

/// The build output of a repository with two task definitions: a compliant
/// one at the root, and the privileged one the deploy action really uses.
async fn two_taskdefs(gate: &Gate, key: &str) {
    let mut privileged = compliant_taskdef();
    privileged["containerDefinitions"][0]["privileged"] = true.into();
    let files = [
        ("imageDetail.json", json!({"ImageURI": image()}).to_string()),
        ("taskdef.json", compliant_taskdef().to_string()),
        ("deploy/prod/taskdef.json", privileged.to_string()),
    ];
    gate.artifact(key, &files).await;
    gate.seed_scan("COMPLETE", vec![]);
}

/// The gate judges the task definition the pipeline's CodeDeploy action
/// deploys, not the shallowest taskdef.json (which it used to).
#[tokio::test]
async fn the_gate_judges_the_task_definition_the_deploy_action_names() {
    let gate = Gate::start(POLICY).await;
    gate.fleet
        .aws
        .create_pipeline_deploying("payments", &[("BuildOutput", "deploy/prod/taskdef.json")])
        .await;
    two_taskdefs(&gate, "two.zip").await;
    let outcome = gate.run(gate.job("job-named", "two.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("privileged (app)"), "{}", outcome.summary);
    assert_eq!(gate.fleet.aws.calls_of("GetPipeline").len(), 1);

    // UserParameters.taskdef names it too, and wins.
    let params = r#"{"environment":"prod","taskdef":"taskdef.json"}"#;
    let outcome = gate.run(gate.job("job-param", "two.zip", params, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded, "{}", outcome.summary);
}

/// Two task definitions and nothing to say which is deployed (no pipeline
/// to read, or deploy actions using both): the gate fails closed, naming
/// them.
#[tokio::test]
async fn several_task_definitions_and_no_name_fail_closed_naming_them() {
    let gate = Gate::start(POLICY).await;
    two_taskdefs(&gate, "two.zip").await;
    let outcome = gate.run(gate.job("job-two", "two.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(
        outcome.summary.contains(
            "2 task definitions (BuildOutput::taskdef.json, BuildOutput::deploy/prod/taskdef.json)"
        ),
        "{}",
        outcome.summary
    );
    gate.fleet
        .aws
        .create_pipeline_deploying(
            "payments",
            &[("BuildOutput", "taskdef.json"), ("BuildOutput", "deploy/prod/taskdef.json")],
        )
        .await;
    let outcome = gate.run(gate.job("job-both", "two.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(
        outcome.summary.contains("pipeline payments's deploy actions use 2 task definitions"),
        "{}",
        outcome.summary
    );
    let bad = gate.run(gate.job("job-bad", "two.zip", r#"{"taskdef":"../taskdef.json"}"#, None)).await;
    assert!(
        bad.summary.contains("UserParameters.taskdef \"../taskdef.json\" is not a path"),
        "{}",
        bad.summary
    );
}

/// A typo in the environment must not loosen the policy to the base one.
#[tokio::test]
async fn an_environment_the_policy_does_not_define_fails_the_job() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let outcome = gate.run(gate.job("job-typo", "a.zip", r#"{"environment":"prd"}"#, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    assert!(
        outcome.summary.contains("environment \"prd\" is not one the policy defines (prod)"),
        "{}",
        outcome.summary
    );
}

/// A role the template forgot a permission in: AWS refuses the call (without
/// `s3:ListBucket`, reading the repository's absent policy on the way to the
/// default one is a 403), and the job fails naming the call and the
/// permission, in one line.
#[tokio::test]
async fn a_refused_call_fails_the_job_naming_the_permission() {
    let mut gate = Gate::start(POLICY).await;
    gate.fleet.install_policy("default", POLICY).await;
    gate.fleet
        .s3()
        .delete_object()
        .bucket(CONFIG_BUCKET)
        .key(format!("policies/{REPO}/appsec.lkg.json"))
        .send()
        .await
        .unwrap();
    let without_list_bucket: Vec<Value> = gate
        .fleet
        .policies_of("release-gate")
        .into_iter()
        .map(|mut policy| {
            if let Some(statements) = policy["Statement"].as_array_mut() {
                statements.retain(|s| s["Sid"] != "LearnWhichKeysAreMissing");
            }
            policy
        })
        .collect();
    let sdk =
        gate.fleet.aws.sdk_config_with_policies("release-gate-without-list", &without_list_bucket).await;
    gate.deps = Deps::new(
        &sdk,
        &Config { fleet: gate.fleet.config.clone(), report_margin: Duration::from_millis(2500) },
    )
    .unwrap();
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let outcome = gate.run(gate.job("job-denied", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed);
    let reported = gate.reports()[0].params["failureDetails"]["message"].as_str().unwrap().to_owned();
    for text in [&outcome.summary, &reported] {
        assert!(text.contains("S3 GetObject failed: AccessDenied"), "{text}");
        assert!(text.contains("s3:ListBucket"), "{text}");
        assert!(!text.contains('\n') && !text.contains("raw: Response"), "one line: {text}");
    }
}

/// A continuation token CodePipeline would refuse fails the job; it never
/// leaves the job unreported.
#[tokio::test]
async fn a_continuation_token_over_the_limit_fails_the_job() {
    let gate = Gate::start(POLICY).await;
    let deadline = Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500));
    let work = async { JobResult::Continue { token: "x".repeat(3000), summary: "waiting".into() } };
    let outcome = run_job(&gate.deps.codepipeline, "job-long-token", deadline, work).await.unwrap();
    assert_eq!(outcome.result, JobStatus::Failed);
    let reports = gate.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].action, "PutJobFailureResult");
}

#[tokio::test]
async fn panic_inside_the_decision_still_fails_the_job() {
    let gate = Gate::start(POLICY).await;
    let deadline = Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500));
    let outcome = run_job(&gate.deps.codepipeline, "job-panic", deadline, async {
        panic!("index out of bounds in a rule");
        #[allow(unreachable_code)]
        JobResult::Succeeded { summary: String::new(), output_variables: vec![] }
    })
    .await
    .unwrap();
    assert_eq!(outcome.result, JobStatus::Failed);
    let reports = gate.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].action, "PutJobFailureResult");
    assert!(
        reports[0].params["failureDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("internal error: index out of bounds")
    );
}

#[tokio::test(start_paused = true)]
async fn dependency_slower_than_the_deadline_fails_the_job_before_it() {
    use aws_sdk_codepipeline::operation::put_job_failure_result::PutJobFailureResultOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    // The report goes to a mocked client: with the clock paused, no real I/O may run.
    let report = mock!(aws_sdk_codepipeline::Client::put_job_failure_result)
        .match_requests(|r| {
            r.job_id() == Some("job-slow")
                && r.failure_details().is_some_and(|d| d.message().contains("ran out of time"))
        })
        .then_output(|| PutJobFailureResultOutput::builder().build());
    let codepipeline = CodePipeline::new(mock_client!(aws_sdk_codepipeline, RuleMode::Sequential, [&report]));

    let deadline = Deadline::from_remaining(Duration::from_secs(15 * 60), Duration::from_millis(2500));
    let start = tokio::time::Instant::now();
    let slow_dependency = async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        JobResult::Succeeded { summary: String::new(), output_variables: vec![] }
    };
    let outcome = run_job(&codepipeline, "job-slow", deadline, slow_dependency).await.unwrap();
    assert_eq!(outcome.result, JobStatus::Failed);
    assert_eq!(report.num_calls(), 1);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(15 * 60) - Duration::from_millis(2500),
        "reported within the budget"
    );
}

#[tokio::test]
async fn logs_of_a_whole_job_contain_no_artifact_credentials() {
    let logs = shipgate_tests::LogCapture::install("trace");
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let outcome = gate.run(gate.job("job-logs", "a.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded);
    let text = logs.contents();
    assert!(text.contains("job reported"), "the capture works: {} bytes", text.len());
    let artifact = &gate.artifact;
    for secret in [artifact.secret_access_key(), artifact.session_token().unwrap(), artifact.access_key_id()]
    {
        let line = text.lines().find(|l| l.contains(secret)).unwrap_or_default();
        assert!(!text.contains(secret), "a credential reached the logs: {secret} in {line}");
    }
}

#[tokio::test]
async fn event_without_a_job_id_is_an_invocation_error() {
    let gate = Gate::start(POLICY).await;
    let deadline = Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500));
    let err = handle(&gate.deps, json!({"detail": {}}), deadline, now()).await.unwrap_err();
    assert!(err.to_string().contains("no CodePipeline.job.id"), "{err}");
    assert!(gate.reports().is_empty());
}

/// A redelivered job that would now decide differently (ECR throttles it past
/// the SDK's retries, so a fresh judgement would fail closed) reports the
/// recorded PASS, keeps the record and the provenance, and announces nothing.
#[tokio::test]
async fn a_redelivered_pass_stays_a_pass_when_the_redelivery_meets_throttling() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let event = gate.job("job-first-pass", "a.zip", PARAMS, None);
    let first = gate.run(event.clone()).await;
    assert_eq!(first.result, JobStatus::Succeeded, "{}", first.summary);
    let key =
        format!("decisions/payments/exec-1/{}.json", shipgate_core::gate::decision_id("job-first-pass"));
    let record = gate.fleet.get_json(&key).await.unwrap();
    let provenance = gate.fleet.get_json(&format!("provenance/prod/{DIGEST}.json")).await.unwrap();

    gate.fleet.aws.inject_fault("DescribeImageScanFindings", 400, "ThrottlingException", 3);
    let again = gate.run(event).await;
    assert_eq!((again.result.as_str(), again.reported_now), ("succeeded", false), "{}", again.summary);
    assert_eq!(again.summary, first.summary);
    assert_eq!(gate.fleet.get_json(&key).await.unwrap(), record, "the record is the first decision");
    assert_eq!(gate.fleet.get_json(&format!("provenance/prod/{DIGEST}.json")).await.unwrap(), provenance);
    assert_eq!(gate.fleet.events().await.len(), 1, "nothing new announced");
}

/// The reverse order: the first delivery fails closed on throttling; a
/// redelivery that would pass reports the recorded failure, and the digest
/// gets no provenance from a job CodePipeline shows as failed.
#[tokio::test]
async fn a_redelivered_failure_never_gives_the_digest_provenance() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    gate.fleet.aws.inject_fault("DescribeImageScanFindings", 400, "ThrottlingException", 3);
    let event = gate.job("job-first-fail", "a.zip", PARAMS, None);
    let first = gate.run(event.clone()).await;
    assert_eq!(first.result, JobStatus::Failed, "{}", first.summary);
    assert!(first.summary.contains("ThrottlingException"), "{}", first.summary);

    let again = gate.run(event).await;
    assert_eq!((again.result.as_str(), again.reported_now), ("failed", false), "{}", again.summary);
    assert_eq!(again.summary, first.summary);
    assert!(gate.fleet.get_json(&format!("provenance/prod/{DIGEST}.json")).await.is_none());
    let events = gate.fleet.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["detail"]["decision"], "FAIL");
}

/// Two deliveries of one job at once: one decision recorded, one result
/// reported, one event.
#[tokio::test]
async fn concurrent_deliveries_of_a_job_decide_and_announce_once() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan("COMPLETE", vec![]);
    let event = gate.job("job-twice", "a.zip", PARAMS, None);
    let (a, b) = tokio::join!(gate.run(event.clone()), gate.run(event));
    assert_eq!((a.result.as_str(), b.result.as_str()), ("succeeded", "succeeded"));
    assert_eq!(u8::from(a.reported_now) + u8::from(b.reported_now), 1);
    let outcomes: Vec<String> = gate.reports().into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "Succeeded").count(), 1, "{outcomes:?}");
    assert_eq!(gate.fleet.events().await.len(), 1);
    let key = format!("decisions/payments/exec-1/{}.json", shipgate_core::gate::decision_id("job-twice"));
    assert_eq!(gate.fleet.get_json(&key).await.unwrap()["announced"], true);
}

/// CodePipeline answers every report attempt after `delay` (paused clock),
/// after a decision that used the job's whole budget: the report has what is
/// left (the margin, less the response slack) for all its attempts, so it
/// lands when CodePipeline is merely slow and gives up when it never answers
/// in time, before Lambda's deadline either way.
#[tokio::test(start_paused = true)]
async fn a_slow_report_lands_or_gives_up_before_the_lambda_deadline() {
    let remaining = Duration::from_secs(15 * 60);
    for (delay, lands) in [(Duration::from_millis(900), true), (Duration::from_secs(30), false)] {
        let http = shipgate_tests::SlowHttp::new(delay);
        let codepipeline = CodePipeline::connect(&http.sdk_config());
        let deadline = Deadline::from_remaining(remaining, Duration::from_millis(2500));
        let start = tokio::time::Instant::now();
        let slow_decision = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            JobResult::Succeeded { summary: String::new(), output_variables: vec![] }
        };
        let outcome = run_job(&codepipeline, "job-slow-report", deadline, slow_decision).await;
        assert!(
            start.elapsed() <= remaining - shipgate_aws::deadline::RESPONSE_SLACK,
            "{:?}",
            start.elapsed()
        );
        assert_eq!(outcome.is_ok(), lands, "{delay:?}: {outcome:?}");
        assert!(http.requests() >= 1);
    }
}

/// A task definition for Graviton (or, with `None`, ECS's X86_64 default)
/// whose image is `image`.
fn taskdef_on(cpu: Option<&str>, image: &str) -> Value {
    let mut td = compliant_taskdef();
    td["containerDefinitions"][0]["image"] = image.into();
    if let Some(cpu) = cpu {
        td["runtimePlatform"] = json!({"cpuArchitecture": cpu, "operatingSystemFamily": "LINUX"});
    }
    td
}

impl Gate {
    /// A two-platform image index whose amd64 image has a CRITICAL finding and
    /// whose arm64 image is clean, and a build artifact naming the index.
    async fn multi_arch_release(&self, key: &str, cpu: Option<&str>) -> shipgate_tests::ImageIndex {
        let critical = json!({"name": "CVE-2026-9999", "severity": "CRITICAL", "attributes": []});
        self.index_release(key, &[("linux/amd64", vec![critical]), ("linux/arm64", vec![])], cpu).await
    }

    /// An image index of `children` (each a platform and the findings of its
    /// completed scan), and a build artifact at `key` naming the index in a
    /// task definition on `cpu`.
    async fn index_release(
        &self,
        key: &str,
        children: &[(&str, Vec<Value>)],
        cpu: Option<&str>,
    ) -> shipgate_tests::ImageIndex {
        let platforms: Vec<&str> = children.iter().map(|(p, _)| *p).collect();
        let index = self.fleet.push_image_index(REPO, key, &platforms).await;
        for (platform, findings) in children {
            self.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": index.child(platform),
                "status": "COMPLETE", "completedAt": 1_795_860_000, "findings": findings}));
        }
        let uri = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{}", index.digest);
        let files = [
            ("imageDetail.json", json!({"ImageURI": uri}).to_string()),
            ("taskdef.json", taskdef_on(cpu, "<IMAGE1_NAME>").to_string()),
        ];
        self.artifact(key, &files).await;
        index
    }
}

#[tokio::test]
async fn an_arm64_task_is_judged_by_the_arm64_image_of_its_index() {
    let gate = Gate::start(POLICY).await;
    let index = gate.multi_arch_release("arm.zip", Some("ARM64")).await;
    let outcome = gate.run(gate.job("job-arm", "arm.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded, "{}", outcome.summary);

    // Judged: the arm64 image's scan, never the index's (ECR has none) nor amd64's.
    let judged = gate.judged_digests();
    assert_eq!(judged, [index.child("linux/arm64")]);
    // Provenance for the index (what the task definition names) and the
    // arm64 image (what ECS may report it resolved), both this decision's.
    let decision_id = gate.reports()[0].params["outputVariables"]["DECISION_ID"].as_str().unwrap().to_owned();
    for digest in [index.digest.as_str(), index.child("linux/arm64")] {
        let provenance = gate.fleet.get_json(&format!("provenance/prod/{digest}.json")).await.unwrap();
        assert_eq!(provenance["decision_id"], decision_id.as_str(), "{digest}");
    }
    assert!(
        gate.fleet.get_json(&format!("provenance/prod/{}.json", index.child("linux/amd64"))).await.is_none()
    );
}

#[tokio::test]
async fn a_graviton_task_is_judged_by_the_child_containerd_pulls_not_the_first_arm64_one() {
    // A clean arm64/v9 image listed first; a Graviton host (arm64/v8 to
    // containerd) pulls the plain arm64 one, which has a critical.
    let gate = Gate::start(POLICY).await;
    let critical = json!({"name": "CVE-2026-9999", "severity": "CRITICAL", "attributes": []});
    let children = [("linux/arm64/v9", vec![]), ("linux/arm64", vec![critical])];
    let index = gate.index_release("v9.zip", &children, Some("ARM64")).await;
    let outcome = gate.run(gate.job("job-v9", "v9.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("CVE-2026-9999"), "{}", outcome.summary);
    assert_eq!(gate.judged_digests(), [index.child("linux/arm64")]);
    assert!(gate.fleet.get_json(&format!("provenance/prod/{}.json", index.digest)).await.is_none());
}

#[tokio::test]
async fn every_amd64_level_a_host_may_pull_is_judged_and_each_gets_provenance() {
    let gate = Gate::start(POLICY).await;
    let children = [("linux/amd64", vec![]), ("linux/amd64/v3", vec![])];
    let index = gate.index_release("levels.zip", &children, None).await;
    let outcome = gate.run(gate.job("job-levels", "levels.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Succeeded, "{}", outcome.summary);
    let mut judged = gate.judged_digests();
    judged.sort();
    let mut children = vec![index.child("linux/amd64").to_owned(), index.child("linux/amd64/v3").to_owned()];
    children.sort();
    assert_eq!(judged, children, "a v1 or v2 host pulls one, a v3 or v4 host the other");
    for digest in &children {
        assert!(gate.fleet.get_json(&format!("provenance/prod/{digest}.json")).await.is_some(), "{digest}");
    }
}

#[tokio::test]
async fn an_x86_task_of_the_same_index_is_blocked_by_the_amd64_images_critical() {
    let gate = Gate::start(POLICY).await;
    let index = gate.multi_arch_release("x86.zip", None).await;
    let outcome = gate.run(gate.job("job-x86", "x86.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("CVE-2026-9999"), "{}", outcome.summary);
    assert_eq!(gate.judged_digests()[0], index.child("linux/amd64"));
    assert!(gate.fleet.get_json(&format!("provenance/prod/{}.json", index.digest)).await.is_none());
}

#[tokio::test]
async fn an_index_without_the_tasks_platform_fails_image_platform_naming_what_it_has() {
    let gate = Gate::start(POLICY).await;
    gate.index_release("amd.zip", &[("linux/amd64", vec![])], Some("ARM64")).await;
    let outcome = gate.run(gate.job("job-amd", "amd.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains("image_platform"), "{}", outcome.summary);
    assert!(
        outcome.summary.contains("ARM64/LINUX") && outcome.summary.contains("it has linux/amd64"),
        "{}",
        outcome.summary
    );
    assert!(gate.fleet.aws.calls_of("DescribeImageScanFindings").is_empty(), "no image to judge a scan of");
}

#[tokio::test]
async fn an_image_ecr_does_not_have_fails_closed() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("gone.zip", compliant_taskdef()).await;
    let outcome = gate.run(gate.job("job-gone", "gone.zip", PARAMS, None)).await;
    assert_eq!(outcome.result, JobStatus::Failed, "{}", outcome.summary);
    assert!(outcome.summary.contains(&format!("ECR has no image {REPO}@{DIGEST}")), "{}", outcome.summary);
}

#[tokio::test]
async fn a_single_image_is_judged_by_the_platform_its_config_says() {
    let gate = Gate::start(POLICY).await;
    for (name, platform, cpu, expect) in [
        ("amd-on-graviton", "linux/amd64", Some("ARM64"), "failed"),
        ("arm-on-graviton", "linux/arm64", Some("ARM64"), "succeeded"),
        ("arm-on-x86", "linux/arm64", None, "failed"),
    ] {
        let digest = gate.fleet.push_image(REPO, Some(name), platform).await;
        gate.fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": digest,
            "status": "COMPLETE", "completedAt": 1_795_860_000, "findings": []}));
        let uri = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{digest}");
        let files = [
            ("imageDetail.json", json!({"ImageURI": uri}).to_string()),
            ("taskdef.json", taskdef_on(cpu, "<IMAGE1_NAME>").to_string()),
        ];
        gate.artifact(&format!("{name}.zip"), &files).await;
        let outcome = gate.run(gate.job(&format!("job-{name}"), &format!("{name}.zip"), PARAMS, None)).await;
        assert_eq!(outcome.result.as_str(), expect, "{name}: {}", outcome.summary);
        if expect == "failed" {
            assert!(
                outcome.summary.contains("image_platform")
                    && outcome.summary.contains(&format!("is built for {platform}")),
                "{name}: {}",
                outcome.summary
            );
        }
    }
    // The platform came from each config blob, read through ECR's download URL.
    assert_eq!(gate.fleet.aws.calls_of("GetDownloadUrlForLayer").len(), 3);
}

/// GetJobDetails failed on the first try, so its record names no pipeline;
/// the redelivery (after the findings changed) still reports the job's first
/// decision, and the job has one record (#33: it used to decide again
/// under the pipeline's key and report PASS).
#[tokio::test]
async fn a_redelivery_reports_the_first_decision_whatever_get_job_details_said() {
    let gate = Gate::start(POLICY).await;
    gate.standard_artifact("a.zip", compliant_taskdef()).await;
    gate.seed_scan(
        "COMPLETE",
        vec![json!({"name": "CVE-2026-8080", "severity": "CRITICAL", "attributes": []})],
    );
    gate.fleet.aws.inject_fault("GetJobDetails", 400, "AccessDeniedException", 1);
    let event = gate.job("job-ctx", "a.zip", PARAMS, None);
    let first = gate.run(event.clone()).await;
    assert_eq!(first.result, JobStatus::Failed, "{}", first.summary);
    gate.seed_scan("COMPLETE", vec![]);
    let again = gate.run(event).await;
    assert_eq!(again.result, JobStatus::Failed, "{}", again.summary);
    assert!(again.summary.contains("CVE-2026-8080"), "{}", again.summary);
    let listed =
        gate.fleet.s3().list_objects_v2().bucket(CONFIG_BUCKET).prefix("decisions/").send().await.unwrap();
    let records: Vec<&str> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .filter(|k| !k.starts_with("decisions/jobs/"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(records[0].starts_with("decisions/unknown-pipeline/"), "{records:?}");
}
