//! Every payload AWS and GitHub publish (`events/aws/`, with their sources in
//! `events/aws/SOURCES.md`), fed to the function that would receive it on
//! AWS, through the same path as production, each function running as its
//! role. Each is acted on, ignored with a reason and a successful return (not
//! an error Lambda would retry into the dead-letter queue), or refused with a
//! reason where refusing is right (documentation artefacts: 60-digit or
//! `EXAMPLE` digests, shapes AWS no longer sends).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;
use shipgate_aws::Deadline;
use shipgate_tests::{Fleet, WEBHOOK_SECRET, github_signature};

/// What a function must do with a payload; the text must appear in what it
/// answered (or in its error, for a refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Acted(&'static str),
    Ignored(&'static str),
    Refused(&'static str),
}

use Expect::{Acted, Ignored, Refused};

/// Every published payload, the function AWS would deliver it to, and what
/// that function must do with it.
const CASES: &[(&str, &str, Expect)] = &[
    ("codecommit-referenceCreated.aws-codecommit-docs.json", "source-trigger", Acted("started")),
    ("codecommit-referenceDeleted.aws-codecommit-docs.json", "source-trigger", Ignored("was deleted")),
    (
        "codecommit-unreferencedMergeCommitCreated.aws-codecommit-docs.json",
        "source-trigger",
        Ignored("changes no branch"),
    ),
    ("codedeploy-deployment-state-change.aws-lambda-go.json", "notifier", Ignored("Success is not sent")),
    // The same SUCCESS records what the deployment runs (exposure).
    (
        "codedeploy-deployment-state-change.aws-lambda-go.json",
        "deploy-hooks",
        Acted("CodeDeploy does not know the deployment"),
    ),
    (
        "codedeploy-lifecycle-hook.aws-lambda-rust-runtime.json",
        "deploy-hooks",
        Acted("does not know deployment"),
    ),
    (
        "codepipeline-action-execution-abandoned.aws-codepipeline-docs.json",
        "notifier",
        Ignored("not a final outcome"),
    ),
    (
        "codepipeline-action-execution-failed.aws-codepipeline-docs.json",
        "notifier",
        Ignored("Action is not sent"),
    ),
    (
        "codepipeline-action-execution-succeeded.aws-codepipeline-docs.json",
        "notifier",
        Ignored("Action is not sent"),
    ),
    ("codepipeline-job.aws-codepipeline-docs.json", "release-gate", Acted("failed")),
    (
        "codepipeline-pipeline-execution-started.aws-codepipeline-docs.json",
        "notifier",
        Ignored("not a final outcome"),
    ),
    (
        "codepipeline-pipeline-execution-stopping.aws-codepipeline-docs.json",
        "notifier",
        Ignored("not a final outcome"),
    ),
    (
        "codepipeline-pipeline-execution-succeeded.aws-codepipeline-docs.json",
        "notifier",
        Ignored("Success is not sent"),
    ),
    (
        "ecr-image-scan-missing-severities.aws-lambda-rust-runtime.json",
        "scan-gate",
        Refused("is not a sha256 digest"),
    ),
    (
        "ecr-image-scan-no-severity-counts.aws-ecr-docs-2019.json",
        "scan-gate",
        Refused("is not a sha256 digest"),
    ),
    ("ecr-image-scan.aws-ecr-docs.json", "scan-gate", Refused("is not a sha256 digest")),
    ("ecs-native-hook-flat-early-2025-doc.superseded.json", "deploy-hooks", Refused("invalid event")),
    (
        "ecs-native-hook-post-test-traffic-shift-with-hookdetails.aws-ecs-docs.json",
        "deploy-hooks",
        Acted("FAILED"),
    ),
    ("ecs-native-hook-pre-production-traffic-shift.aws-ecs-docs.json", "deploy-hooks", Acted("FAILED")),
    ("ecs-native-hook-pre-scale-up.aws-ecs-docs.json", "deploy-hooks", Acted("FAILED")),
    (
        "ecs-native-hook-production-traffic-shift-rollback.aws-ecs-docs.json",
        "deploy-hooks",
        Acted("SUCCEEDED"),
    ),
    ("ecs-native-hook-production-traffic-shift.aws-ecs-docs.json", "deploy-hooks", Acted("FAILED")),
    ("ecs-native-hook-response-in-progress.aws-ecs-docs.json", "deploy-hooks", Refused("invalid event")),
    (
        "eventbridge-scheduler-default-notification.aws-lambda-dotnet-issue-1864.json",
        "notifier",
        Acted("expire soon"),
    ),
    // scan-gate's daily schedule re-judges every running image (none here).
    (
        "eventbridge-scheduler-default-notification.aws-lambda-dotnet-issue-1864.json",
        "scan-gate",
        Acted(r#""trigger":"daily","services":0"#),
    ),
    ("github-push-body.octokit-with-new-branch.json", "source-trigger", Acted("started")),
    ("github-push-form-encoded.function-url.adapted.json", "source-trigger", Acted("started")),
    ("github-push.function-url.adapted.json", "source-trigger", Acted("started")),
    // The documented example's imageHash is a placeholder ("...EXAMPLE").
    ("inspector2-finding-ecr.aws-ecr-docs.json", "scan-gate", Refused("imageHash")),
    ("inspector2-scan-ec2.aws-inspector-docs.json", "scan-gate", Ignored("not of an ECR image")),
    ("inspector2-scan-ecr.aws-ecr-docs.json", "scan-gate", Refused("is not a sha256 digest")),
    ("inspector2-scan-lambda.aws-inspector-docs.json", "scan-gate", Ignored("not of an ECR image")),
    ("inspector2-scan-machine-image.aws-inspector-docs.json", "scan-gate", Ignored("not of an ECR image")),
    (
        "lambda-function-url-request.aws-lambda-go.json",
        "source-trigger",
        Refused("missing X-Hub-Signature-256"),
    ),
    (
        "s3-object-created-key-url-encoded.HYPOTHETICAL.json",
        "policy-validator",
        Ignored("is not the config bucket"),
    ),
    ("s3-object-created.aws-s3-docs.json", "policy-validator", Ignored("is not the config bucket")),
];

const ROUTES: &str = "version: 1\nroutes:\n  - repository: MyDemoRepo\n    branches: [\"*\"]\n    pipeline: payments\n  - repository: Codertocat/Hello-World\n    branches: [\"*\"]\n    pipeline: payments\n";
const POLICY: &str = "version: 1\nowner: team-payments\nscan:\n  exceptions:\n    - {id: CVE-2024-1, expires: 2026-12-05, reason: not reachable}\n";

fn now() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn deadline() -> Deadline {
    Deadline::from_remaining(Duration::from_secs(60), Duration::from_millis(2500))
}

fn payload(file: &str) -> Value {
    let path = format!("{}/../events/aws/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A published GitHub delivery as the Function URL passes it on, signed with
/// this fleet's secret (GitHub signs the raw body, whatever its content type).
fn signed_delivery(file: &str) -> Value {
    let mut request = payload(file);
    if request.get("requestContext").is_none() {
        // A bare push body: GitHub posts it as JSON.
        let body = request.to_string();
        request = payload("github-push.function-url.adapted.json");
        request["body"] = body.into();
        request["isBase64Encoded"] = false.into();
    }
    let raw = request["body"].as_str().unwrap().to_owned();
    let bytes = if request["isBase64Encoded"] == true {
        base64::engine::general_purpose::STANDARD.decode(&raw).unwrap()
    } else {
        raw.into_bytes()
    };
    request["headers"]["x-hub-signature-256"] =
        github_signature(WEBHOOK_SECRET, std::str::from_utf8(&bytes).unwrap()).into();
    request
}

/// What happened: the kind and the text (the answer, or the error).
async fn run(fleet: &Fleet, function: &str, file: &str) -> (&'static str, String) {
    let sdk = fleet.sdk_for(function).await;
    match function {
        "source-trigger" => {
            let config = source_trigger::Config {
                config_bucket: fleet.config.config_bucket.clone(),
                webhook_secret_arn: None,
            };
            let deps = source_trigger::Deps::new(
                &sdk,
                &config,
                Some(shipgate_core::webhook::WebhookSecret::new(WEBHOOK_SECRET)),
            );
            let event = if file.starts_with("github") { signed_delivery(file) } else { payload(file) };
            match source_trigger::handle(&deps, event).await {
                Ok(answer) => {
                    let kind = match answer["statusCode"].as_u64() {
                        Some(200) => "acted",
                        Some(202) => "ignored",
                        Some(_) => "refused",
                        None if answer.get("started").is_some() => "acted",
                        None => "ignored",
                    };
                    (kind, answer.to_string())
                }
                Err(e) => ("refused", e.to_string()),
            }
        }
        "policy-validator" => {
            let deps = policy_validator::Deps::new(&sdk, &fleet.config);
            match shipgate_aws::decode::<policy_validator::Event>(payload(file)) {
                Err(e) => ("refused", e.to_string()),
                Ok(event) => match policy_validator::handle(&deps, event, now()).await {
                    Ok(outcome @ policy_validator::Outcome::Ignored { .. }) => ("ignored", text(&outcome)),
                    Ok(outcome) => ("acted", text(&outcome)),
                    Err(e) => ("refused", e.to_string()),
                },
            }
        }
        "scan-gate" => {
            let deps = scan_gate::Deps::new(&sdk, &fleet.config);
            match scan_gate::handle(&deps, payload(file), now()).await {
                Ok(handled @ scan_gate::Handled::Ignored { .. }) => ("ignored", text(&handled)),
                Ok(handled) => ("acted", text(&handled)),
                Err(e) => ("refused", e.to_string()),
            }
        }
        "release-gate" => {
            let config = release_gate::Config {
                fleet: fleet.config.clone(),
                report_margin: Duration::from_millis(2500),
            };
            let deps = release_gate::Deps::new(&sdk, &config).unwrap();
            match release_gate::handle(&deps, payload(file), deadline(), now()).await {
                Ok(outcome) => ("acted", text(&outcome)),
                Err(e) => ("refused", e.to_string()),
            }
        }
        "deploy-hooks" => {
            let config = deploy_hooks::Config {
                fleet: fleet.config.clone(),
                test_listener: None,
                environment: None,
                report_margin: Duration::from_millis(2500),
                check_backoff: Duration::from_millis(10),
            };
            let deps = deploy_hooks::Deps::new(&sdk, &config).unwrap();
            match deploy_hooks::handle(&deps, payload(file), deadline()).await {
                Ok(response) => ("acted", text(&response)),
                Err(e) => ("refused", e.to_string()),
            }
        }
        "notifier" => {
            let config = fleet.notifier_config();
            let deps = notifier::Deps::new(&sdk, &config);
            match notifier::handle(&deps, payload(file), now()).await {
                Ok(report) if report.sent.is_empty() => ("ignored", text(&report)),
                Ok(report) => ("acted", text(&report)),
                Err(e) => ("refused", e.to_string()),
            }
        }
        other => panic!("no function {other}"),
    }
}

/// What a function answered, as JSON text.
fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

#[test]
fn every_published_payload_has_a_case() {
    let files = shipgate_tests::json_files(&shipgate_tests::workspace_root().join("events/aws"));
    let mut cased: Vec<String> = CASES.iter().map(|(f, _, _)| (*f).to_owned()).collect();
    cased.sort();
    cased.dedup();
    assert_eq!(files, cased, "each file in events/aws/ needs a case here");
}

#[tokio::test]
async fn every_published_payload_is_acted_on_ignored_or_refused_with_a_reason() {
    let fleet = Fleet::start().await;
    fleet.create_pipeline("payments").await;
    fleet.put_config("routes.yaml", ROUTES).await;
    fleet.install_policy("default", POLICY).await;
    let mut wrong = Vec::new();
    for (file, function, expect) in CASES {
        let (kind, text) = run(&fleet, function, file).await;
        let (want, needle) = match expect {
            Acted(n) => ("acted", n),
            Ignored(n) => ("ignored", n),
            Refused(n) => ("refused", n),
        };
        if kind != want || !text.contains(needle) {
            wrong.push(format!("{file} -> {function}: expected {want} ({needle:?}), got {kind}: {text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
