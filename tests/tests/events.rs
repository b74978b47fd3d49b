//! Every sample payload in `events/` parses into the type its function reads.
//! The same files feed `cargo lambda invoke --data-file` and the replay.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::codedeploy::{CodeDeployEvent, CodeDeployLifecycleEvent};
use aws_lambda_events::codepipeline_job::CodePipelineJobEvent;
use aws_lambda_events::ecr_scan::EcrScanEvent;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use serde::de::DeserializeOwned;
use shipgate_core::triggers::{
    CodeCommitReferenceChange, DeploymentStateChange, EcsLifecycleHook, FlushExposure, ImageScanCompleted,
    InspectorFinding, PipelineStateChange, S3ObjectCreated,
};

fn parse<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

/// Each file and the check that parses it; a new file must be added here.
const CHECKED: &[&str] = &[
    "codecommit-push-main.json",
    "codecommit-branch-created.json",
    "codecommit-tag-created.json",
    "codecommit-branch-deleted.json",
    "github-push-main.json",
    "github-push-docs-only.json",
    "github-push-tag.json",
    "github-ping.json",
    "s3-appsec-created.json",
    "ecr-scan-complete.json",
    "ecr-scan-critical.json",
    "ecr-scan-unsupported-image.json",
    "inspector2-scan.json",
    "codepipeline-gate-job.json",
    "codepipeline-gate-job-continuation.json",
    "codepipeline-gate-job-bad-parameters.json",
    "codedeploy-hook.json",
    "ecs-native-hook-post-test-traffic.json",
    "codepipeline-execution-failed.json",
    "codepipeline-execution-succeeded.json",
    "codepipeline-action-gate-failed.json",
    "codedeploy-deployment-failed.json",
    "schedule-daily.json",
    "codedeploy-deployment-succeeded.json",
    "inspector2-finding.json",
    "schedule-exposure-digests.json",
];

#[test]
fn every_event_file_is_checked() {
    let files = shipgate_tests::json_files(&shipgate_tests::workspace_root().join("events"));
    let mut checked: Vec<String> = CHECKED.iter().map(|s| (*s).to_owned()).collect();
    checked.sort();
    assert_eq!(files, checked);
}

#[test]
fn codecommit_events_parse() {
    let push: EventBridgeEvent<CodeCommitReferenceChange> = parse("codecommit-push-main.json");
    assert_eq!(push.detail_type, "CodeCommit Repository State Change");
    assert_eq!(push.detail.event, "referenceUpdated");
    assert_eq!(push.detail.reference_name, "main");
    let tag: EventBridgeEvent<CodeCommitReferenceChange> = parse("codecommit-tag-created.json");
    assert_eq!(tag.detail.reference_type, "tag");
    let created: EventBridgeEvent<CodeCommitReferenceChange> = parse("codecommit-branch-created.json");
    assert_eq!(created.detail.old_commit_id, None);
    let deleted: EventBridgeEvent<CodeCommitReferenceChange> = parse("codecommit-branch-deleted.json");
    assert_eq!(deleted.detail.commit_id, None);
}

#[test]
fn github_webhooks_parse_as_function_url_requests() {
    for name in
        ["github-push-main.json", "github-push-docs-only.json", "github-push-tag.json", "github-ping.json"]
    {
        let request: LambdaFunctionUrlRequest = parse(name);
        assert!(request.headers.contains_key("x-hub-signature-256"), "{name}");
        assert!(request.headers.contains_key("x-github-event"), "{name}");
        let body: serde_json::Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["repository"]["full_name"], "acme/payments-api", "{name}");
    }
}

#[test]
fn s3_object_created_parses() {
    let event: EventBridgeEvent<S3ObjectCreated> = parse("s3-appsec-created.json");
    assert_eq!(event.detail.object.key, "policies/payments-api/appsec.yaml");
    assert!(event.detail.object.version_id.is_some());
}

#[test]
fn scan_events_parse_basic_and_enhanced() {
    let basic: EcrScanEvent = parse("ecr-scan-complete.json");
    assert_eq!(basic.detail.scan_status.as_deref(), Some("COMPLETE"));
    let basic: EventBridgeEvent<ImageScanCompleted> = parse("ecr-scan-critical.json");
    assert_eq!(basic.detail.finding_severity_counts["CRITICAL"], 1);
    assert_eq!(basic.detail.finding_severity_counts.get("LOW"), None, "missing means zero");
    let unsupported: EventBridgeEvent<ImageScanCompleted> = parse("ecr-scan-unsupported-image.json");
    assert_eq!(unsupported.detail.scan_status, "UNSUPPORTED_IMAGE");
    let enhanced: EventBridgeEvent<ImageScanCompleted> = parse("inspector2-scan.json");
    assert_eq!(enhanced.source, "aws.inspector2");
    assert_eq!(enhanced.detail.repository(), Some("payments-api"));
}

#[test]
fn codepipeline_jobs_parse() {
    let job: CodePipelineJobEvent = parse("codepipeline-gate-job.json");
    let data = &job.code_pipeline_job.data;
    assert!(data.artifact_credentials.secret_access_key.is_some());
    assert_eq!(data.input_artifacts.len(), 1);
    assert!(data.continuation_token.is_none());
    let params: serde_json::Value =
        serde_json::from_str(data.action_configuration.configuration.user_parameters.as_deref().unwrap())
            .unwrap();
    assert_eq!(params["environment"], "prod");
    let again: CodePipelineJobEvent = parse("codepipeline-gate-job-continuation.json");
    let token = again.code_pipeline_job.data.continuation_token.unwrap();
    assert!(
        shipgate_core::gate::Continuation::from_token(&token).is_ok(),
        "a token the gate itself made: {token}"
    );
    let bad: CodePipelineJobEvent = parse("codepipeline-gate-job-bad-parameters.json");
    let raw = bad.code_pipeline_job.data.action_configuration.configuration.user_parameters.unwrap();
    assert!(serde_json::from_str::<serde_json::Value>(&raw).is_err(), "the sample is meant to be malformed");
}

#[test]
fn deployment_hooks_parse() {
    let hook: CodeDeployLifecycleEvent = parse("codedeploy-hook.json");
    assert_eq!(hook.deployment_id, "d-A1B2C3D4E");
    let native: EcsLifecycleHook = parse("ecs-native-hook-post-test-traffic.json");
    assert_eq!(native.lifecycle_stage, "POST_TEST_TRAFFIC_SHIFT");
    assert!(native.execution_details.target_service_revision_arn.contains("service-revision"));
}

#[test]
fn state_changes_parse() {
    let failed: EventBridgeEvent<PipelineStateChange> = parse("codepipeline-execution-failed.json");
    assert_eq!(failed.detail.state, "FAILED");
    let ok: EventBridgeEvent<PipelineStateChange> = parse("codepipeline-execution-succeeded.json");
    assert_eq!(ok.detail.state, "SUCCEEDED");
    let action: EventBridgeEvent<PipelineStateChange> = parse("codepipeline-action-gate-failed.json");
    assert_eq!(action.detail.action.as_deref(), Some("ReleaseGate"));
    assert!(action.detail.execution_result.unwrap().summary.unwrap().contains("CVE-2024-3094"));
    let deploy: CodeDeployEvent = parse("codedeploy-deployment-failed.json");
    assert_eq!(deploy.detail.deployment_id.as_deref(), Some("d-A1B2C3D4E"));
    let schedule: EventBridgeEvent = parse("schedule-daily.json");
    assert_eq!(schedule.detail_type, "Scheduled Event");
}

#[test]
fn exposure_events_parse() {
    let done: EventBridgeEvent<DeploymentStateChange> = parse("codedeploy-deployment-succeeded.json");
    assert_eq!(done.detail.state, "SUCCESS");
    let finding: EventBridgeEvent<InspectorFinding> = parse("inspector2-finding.json");
    let digest = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
    assert_eq!(finding.detail.image(), Some(("payments-api", digest)));
    let flush: FlushExposure = parse("schedule-exposure-digests.json");
    assert_eq!(flush.shipgate, FlushExposure::KIND);
}
