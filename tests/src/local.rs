//! `make local`: the local fleet, left running for a person to try events.
//!
//! Starts what `make demo` starts (see [`crate::replay::start`]), then makes
//! the samples in `events/` meet real resources: the payments-api policy,
//! scans for the sample digests, the artifact and credentials the sample
//! CodePipeline job names, the service revision the sample ECS hook names.
//! Events whose ids the emulator makes up (a CodeDeploy deployment, an S3
//! version) are written ready to use into `target/local-events/`.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::replay::{LocalFleet, deployment_with_task_definition, gate_job};
use crate::{ACCOUNT, CONFIG_BUCKET, REGION};

const REPO: &str = "payments-api";
/// The digests the samples in `events/` name.
const CLEAN: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
const CRITICAL: &str = "sha256:9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c";

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(crate::workspace_root().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// One ready-to-invoke payload per function: (function, file).
pub async fn seed_samples(local: &LocalFleet) -> Vec<(&'static str, PathBuf)> {
    let fleet = &local.fleet;
    // The example policy, as the demo uses it: a clean image passes it.
    let policy = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml"))
        .unwrap()
        .replace("fail_on_stale_exceptions: true", "fail_on_stale_exceptions: false");
    fleet.install_policy(REPO, &policy).await;
    fleet
        .put_config(
            "routes.yaml",
            "version: 1\nroutes:\n  - repository: payments-api\n    branches: [main]\n    pipeline: payments\n  - repository: \"acme/payments-api\"\n    branches: [main]\n    pipeline: payments\n",
        )
        .await;
    for (digest, findings) in [
        (CLEAN, json!([])),
        (
            CRITICAL,
            json!([{"name": "CVE-2024-3094", "severity": "CRITICAL",
            "attributes": [{"key": "package_name", "value": "xz-utils"}]}]),
        ),
    ] {
        fleet.aws.seed_scan(json!({"repositoryName": REPO, "imageDigest": digest, "status": "COMPLETE",
            "completedAt": 1_795_860_000, "findings": findings}));
    }

    // The sample job's artifact, readable with the sample's own credentials.
    let job = read("events/codepipeline-gate-job.json");
    let data = &job["CodePipeline.job"]["data"];
    let location = &data["inputArtifacts"][0]["location"]["s3Location"];
    let (bucket, key) = (location["bucketName"].as_str().unwrap(), location["objectKey"].as_str().unwrap());
    let _ = fleet.s3().create_bucket().bucket(bucket).send().await;
    let taskdef = json!({"family": REPO, "networkMode": "awsvpc", "containerDefinitions": [{"name": "app",
        "image": "<IMAGE1_NAME>", "user": "10001", "readonlyRootFilesystem": true,
        "logConfiguration": {"logDriver": "awslogs"}}]});
    let image = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{REPO}@{CLEAN}");
    let zip = crate::zip_files(&[
        ("imageDetail.json", json!({"ImageURI": image}).to_string()),
        ("taskdef.json", taskdef.to_string()),
    ]);
    fleet.s3().put_object().bucket(bucket).key(key).body(zip.into()).send().await.unwrap();
    let read_artifacts = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
        "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    fleet.aws.control_post(
        "/_shipgate/iam/sessions",
        &json!({"name": "sample-artifacts", "policies": [read_artifacts], "fixed": data["artifactCredentials"]}),
    );

    // The sample ECS native hook's service revision runs the clean image.
    let ecs_hook = read("events/ecs-native-hook-post-test-traffic.json");
    let revision = ecs_hook["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap();
    let (deployment_id, td) = deployment_with_task_definition(fleet, CLEAN).await;
    fleet.aws.control_post(
        "/_shipgate/ecs/service-revisions",
        &json!({"serviceRevisionArn": revision, "taskDefinition": td,
            "containerImages": [{"containerName": "app", "image": image, "imageDigest": CLEAN}]}),
    );
    fleet.aws.control_post(
        "/_shipgate/codedeploy/lifecycle",
        &json!({"deploymentId": deployment_id, "currentHook": "AfterAllowTestTraffic"}),
    );

    let dir = crate::target_dir().canonicalize().unwrap_or_else(|_| crate::target_dir()).join("local-events");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, event: &Value| {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(event).unwrap()).unwrap();
        path
    };
    let hook =
        json!({"DeploymentId": deployment_id, "LifecycleEventHookExecutionId": "local-hook-execution-1"});
    let version = fleet.put_config("policies/payments-api/appsec.yaml", &policy).await;
    // A sequencer after the installed policy's, so the upload is the newest.
    let upload = fleet.object_created("policies/payments-api/appsec.yaml", &version, "FFFFFFFFFFFFFFFF0001");
    let release = gate_job(fleet, "local-job-1", "local-execution-1", CLEAN, None).await;
    // The deployment completed (deploy-hooks records what it runs), and the
    // notifier's exposure schedule an hour from now (every window closed).
    let mut succeeded = read("events/codedeploy-deployment-succeeded.json");
    succeeded["detail"]["deploymentId"] = deployment_id.clone().into();
    let flush = crate::exposure::flush_input(fleet, chrono::Utc::now() + chrono::Duration::hours(1));
    // The daily digest's schedule, as the template sends it.
    let daily = fleet.deployed("notifier").schedule("DailyExpiringExceptions").fire(chrono::Utc::now());
    let root = crate::workspace_root().canonicalize().unwrap_or_else(|_| crate::workspace_root());
    let sample = |path: &str| root.join(path);
    vec![
        ("source-trigger", sample("events/codecommit-push-main.json")),
        ("policy-validator", write("policy-validator.json", &upload)),
        ("scan-gate", sample("events/ecr-scan-complete.json")),
        ("scan-gate", sample("events/ecr-scan-critical.json")),
        ("release-gate", sample("events/codepipeline-gate-job.json")),
        ("release-gate", write("release-gate.json", &release)),
        ("deploy-hooks", write("deploy-hooks.json", &hook)),
        ("deploy-hooks", sample("events/ecs-native-hook-post-test-traffic.json")),
        ("deploy-hooks", write("deploy-hooks-succeeded.json", &succeeded)),
        ("scan-gate", sample("events/inspector2-finding.json")),
        ("notifier", write("notifier-daily.json", &daily)),
        ("notifier", write("notifier-exposure-digests.json", &flush)),
    ]
}

/// What a person needs to try it: the endpoint, the administrator's key,
/// and one `cargo lambda invoke` line per sample.
pub fn instructions(local: &LocalFleet, samples: &[(&str, PathBuf)]) -> String {
    let root = crate::workspace_root().canonicalize().unwrap_or_else(|_| crate::workspace_root());
    let port = local.runtime.port;
    let mut out = format!(
        "\nShipgate is running locally.\n\n  AWS emulator:     {endpoint}  (enforces IAM; each function runs as its role)\n  Lambda runtime:   http://127.0.0.1:{port}\n  config bucket:    {CONFIG_BUCKET}\n\n\
         Look at its effects with the administrator's key:\n  export AWS_ENDPOINT_URL={endpoint} AWS_REGION={REGION} AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY=shipgate-local-admin-secret\n  aws s3 ls s3://{CONFIG_BUCKET} --recursive\n\n\
         What runs and whether it fails today's policy (after the deploy-hooks and scan-gate samples below):\n  cargo run -q -p shipgate-cli -- exposure --bucket {CONFIG_BUCKET} --all\n\n\
         Invoke a function (any file in events/, or your own payload):\n",
        endpoint = local.fleet.aws.endpoint(),
        key = crate::ADMIN_KEY_ID,
    );
    for (function, path) in samples {
        let shown = path.strip_prefix(&root).unwrap_or(path);
        out.push_str(&format!(
            "  cargo lambda invoke {function} -A 127.0.0.1 -P {port} --data-file {}\n",
            shown.display()
        ));
    }
    out.push_str("\nCtrl-C stops everything.\n");
    out
}
