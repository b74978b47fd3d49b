//! Faults the emulator cannot make on its own, injected with aws-smithy-mocks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
use aws_sdk_ecr::types::{ImageScanStatus, ScanStatus};
use aws_smithy_mocks::{mock, mock_client};
use shipgate_aws::ecr::{Ecr, ScanLookup};
use shipgate_core::digest::ImageDigest;

const DIGEST: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

fn complete() -> DescribeImageScanFindingsOutput {
    DescribeImageScanFindingsOutput::builder()
        .repository_name("web")
        .image_scan_status(ImageScanStatus::builder().status(ScanStatus::Complete).build())
        .build()
}

fn with_production_retries(config: aws_sdk_ecr::config::Builder) -> aws_sdk_ecr::config::Builder {
    config.retry_config(aws_sdk_ecr::config::retry::RetryConfig::standard().with_max_attempts(3))
}

/// ECR answering with `rule`, retried as in production.
fn ecr_with(rule: &aws_smithy_mocks::Rule) -> Ecr {
    Ecr::new(mock_client!(
        aws_sdk_ecr,
        aws_smithy_mocks::RuleMode::Sequential,
        [rule],
        with_production_retries
    ))
}

#[tokio::test]
async fn throttled_call_is_retried_then_succeeds() {
    let throttled = aws_smithy_types::body::SdkBody::from(
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
    );
    let rule = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
        .sequence()
        .http_response(move || {
            aws_smithy_runtime_api::http::Response::new(
                aws_smithy_runtime_api::http::StatusCode::try_from(400).unwrap(),
                throttled.try_clone().unwrap(),
            )
        })
        .output(complete)
        .build();
    let client = ecr_with(&rule);

    let lookup = client.describe_scan(None, "web", &ImageDigest::parse(DIGEST).unwrap()).await.unwrap();
    assert!(matches!(lookup, ScanLookup::Found(r) if r.status() == Some("COMPLETE")));
    assert_eq!(rule.num_calls(), 2);
}

#[tokio::test]
async fn persistent_server_error_surfaces_a_typed_error() {
    let rule = mock!(aws_sdk_ecr::Client::describe_image_scan_findings)
        .sequence()
        .http_status(503, None)
        .repeatedly()
        .build();
    let client = ecr_with(&rule);

    let err = client.describe_scan(None, "web", &ImageDigest::parse(DIGEST).unwrap()).await.unwrap_err();
    assert_eq!((err.service, err.operation), ("ECR", "DescribeImageScanFindings"));
    assert!(err.transient, "a 5xx is worth retrying later: {err}");
    assert_eq!(rule.num_calls(), 3, "three attempts, then give up");
}
