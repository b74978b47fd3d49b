//! The local AWS says no where AWS says no: the emulator's IAM enforcement,
//! and every function's role from `infra/template.yaml` run as written.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shipgate_aws::ecr::Ecr;
use shipgate_aws::s3::Bucket;
use shipgate_core::digest::ImageDigest;
use shipgate_tests::{CONFIG_BUCKET, Emulator, FUNCTIONS, Fleet};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn statement(action: &str, resource: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]})
}

#[tokio::test]
async fn a_missing_key_is_403_without_list_bucket_and_404_with_it() {
    let aws = Emulator::start();
    let admin = aws.sdk_config().await;
    aws_sdk_s3::Client::new(&admin).create_bucket().bucket("cfg").send().await.unwrap();
    let read_only =
        aws.sdk_config_with_policies("reader", &[statement("s3:GetObject", "arn:aws:s3:::cfg/*")]).await;
    let bucket = Bucket::new(aws_sdk_s3::Client::new(&read_only), "cfg");
    let err =
        bucket.get("policies/web/appsec.lkg.json", shipgate_core::limits::RECORD_BYTES).await.unwrap_err();
    assert!(err.is_access_denied(), "{err}");
    let text = err.to_string();
    assert!(!text.contains('\n') && !text.contains("raw: Response"), "one line: {text}");
    assert!(text.starts_with("S3 GetObject failed: AccessDenied"), "{text}");
    assert!(text.contains("s3:ListBucket"), "names the likely missing permission: {text}");

    let lister = aws
        .sdk_config_with_policies(
            "lister",
            &[
                statement("s3:GetObject", "arn:aws:s3:::cfg/*"),
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket",
                    "Resource": "arn:aws:s3:::cfg", "Condition": {"StringLike": {"s3:prefix": ["policies/*"]}}}]}),
            ],
        )
        .await;
    let bucket = Bucket::new(aws_sdk_s3::Client::new(&lister), "cfg");
    assert_eq!(
        bucket.get("policies/web/appsec.lkg.json", shipgate_core::limits::RECORD_BYTES).await.unwrap(),
        None,
        "404 within the prefix"
    );
    let outside = bucket.get("verdicts/web/x.json", shipgate_core::limits::RECORD_BYTES).await.unwrap_err();
    assert!(outside.is_access_denied(), "403 outside the granted prefix: {outside}");
}

#[tokio::test]
async fn a_grant_on_one_resource_does_not_reach_another() {
    let aws = Emulator::start();
    let admin = aws.sdk_config().await;
    let events = aws_sdk_eventbridge::Client::new(&admin);
    events.create_event_bus().name("shipgate").send().await.unwrap();
    events.create_event_bus().name("other").send().await.unwrap();
    let sdk = aws
        .sdk_config_with_policies(
            "announcer",
            &[statement("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/shipgate")],
        )
        .await;
    let allowed = shipgate_aws::events::Bus::new(aws_sdk_eventbridge::Client::new(&sdk), "shipgate");
    allowed.put("Shipgate Test", &[], &json!({})).await.unwrap();
    let other = shipgate_aws::events::Bus::new(aws_sdk_eventbridge::Client::new(&sdk), "other");
    let err = other.put("Shipgate Test", &[], &json!({})).await.unwrap_err();
    assert!(err.is_access_denied(), "{err}");
    assert!(err.to_string().contains("events:PutEvents"), "{err}");
}

#[tokio::test]
async fn enhanced_findings_also_need_inspector2_list_findings() {
    let aws = Emulator::start();
    let admin = aws.sdk_config().await;
    aws_sdk_ecr::Client::new(&admin).create_repository().repository_name("web").send().await.unwrap();
    aws.seed_scan(json!({"repositoryName": "web", "imageDigest": DIGEST, "status": "ACTIVE",
        "enhancedFindings": [{"severity": "HIGH", "status": "ACTIVE",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2024-1", "vulnerablePackages": [{"name": "x"}]}}]}));
    let repository = "arn:aws:ecr:us-east-1:123456789012:repository/web";
    let ecr_only = aws
        .sdk_config_with_policies("ecr-only", &[statement("ecr:DescribeImageScanFindings", repository)])
        .await;
    let err = Ecr::connect(&ecr_only)
        .describe_scan(None, "web", &ImageDigest::parse(DIGEST).unwrap())
        .await
        .unwrap_err();
    assert!(err.is_access_denied(), "{err}");
    assert!(err.to_string().contains("inspector2:ListFindings"), "{err}");

    let both = aws
        .sdk_config_with_policies(
            "ecr-and-inspector",
            &[
                statement("ecr:DescribeImageScanFindings", repository),
                statement("inspector2:ListFindings", "*"),
            ],
        )
        .await;
    Ecr::connect(&both).describe_scan(None, "web", &ImageDigest::parse(DIGEST).unwrap()).await.unwrap();
}

/// What the template lets `function` read from the config bucket: the key
/// patterns of its `s3:GetObject` grants.
fn readable_patterns(policies: &[Value]) -> Vec<String> {
    let prefix = format!("arn:aws:s3:::{CONFIG_BUCKET}/");
    policies
        .iter()
        .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
        .filter(|s| {
            let actions = s["Action"].as_array().cloned().unwrap_or_else(|| vec![s["Action"].clone()]);
            actions.iter().any(|a| a == "s3:GetObject")
        })
        .flat_map(|s| s["Resource"].as_array().cloned().unwrap_or_else(|| vec![s["Resource"].clone()]))
        .filter_map(|r| r.as_str().and_then(|r| r.strip_prefix(&prefix)).map(str::to_owned))
        .collect()
}

/// Every key a function's role may read, it may also learn is missing: on
/// AWS the first read of each is of a missing key, and without
/// `s3:ListBucket` for its prefix S3 answers 403 and the function fails.
#[tokio::test]
async fn every_function_learns_that_a_key_it_may_read_is_missing() {
    let fleet = Fleet::start().await;
    let mut failures = Vec::new();
    for function in FUNCTIONS {
        let policies = fleet.policies_of(function);
        let bucket = Bucket::new(aws_sdk_s3::Client::new(&fleet.sdk_for(function).await), CONFIG_BUCKET);
        for pattern in readable_patterns(&policies) {
            let key = pattern.replace('*', "shipgate-probe-missing");
            match bucket.get(&key, shipgate_core::limits::RECORD_BYTES).await {
                Ok(None) => {}
                Ok(Some(_)) => failures.push(format!("{function}: {key} should not exist")),
                Err(e) => failures.push(format!(
                    "{function}: s3:GetObject of a missing {key} was refused ({e}); its role in \
                     infra/template.yaml lacks s3:ListBucket on the config bucket for that prefix"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The config bucket, the topic and the secret are encrypted with the
/// Shipgate key, as in the template: reading them needs the key too.
#[tokio::test]
async fn data_under_the_shipgate_key_needs_the_key_too() {
    let fleet = Fleet::start().await;
    fleet.put_config("policies/web/appsec.yaml", "version: 1\n").await;
    let read = statement("s3:GetObject", &format!("arn:aws:s3:::{CONFIG_BUCKET}/*"));
    let without_key = fleet.aws.sdk_config_with_policies("no-key", std::slice::from_ref(&read)).await;
    let bucket = Bucket::new(aws_sdk_s3::Client::new(&without_key), CONFIG_BUCKET);
    let err = bucket.get("policies/web/appsec.yaml", shipgate_core::limits::RECORD_BYTES).await.unwrap_err();
    assert!(err.is_access_denied(), "{err}");
    assert!(err.to_string().contains("kms:Decrypt"), "{err}");

    let key_arn = fleet
        .policies_of("scan-gate")
        .iter()
        .flat_map(|p| p["Statement"].as_array().cloned().unwrap_or_default())
        .find(|s| s["Sid"] == "UseShipgateKey")
        .map(|s| s["Resource"].as_str().unwrap().to_owned())
        .unwrap();
    let with_key =
        fleet.aws.sdk_config_with_policies("with-key", &[read, statement("kms:Decrypt", &key_arn)]).await;
    let bucket = Bucket::new(aws_sdk_s3::Client::new(&with_key), CONFIG_BUCKET);
    assert!(
        bucket.get("policies/web/appsec.yaml", shipgate_core::limits::RECORD_BYTES).await.unwrap().is_some()
    );

    let secret_reader = fleet
        .aws
        .sdk_config_with_policies(
            "secret-reader",
            &[statement("secretsmanager:GetSecretValue", &fleet.webhook_secret_arn)],
        )
        .await;
    let err =
        shipgate_aws::secrets::webhook_secret(&secret_reader, &fleet.webhook_secret_arn).await.unwrap_err();
    assert!(err.is_access_denied() && err.to_string().contains("kms:Decrypt"), "{err}");
}
