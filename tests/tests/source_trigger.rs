//! source-trigger against the local AWS emulator. The HTTP handler is a value
//! called without a server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use serde_json::Value;
use shipgate_core::webhook::WebhookSecret;
use shipgate_tests::Fleet;
use source_trigger::{Config, Deps, handle, handle_webhook};

/// The secret the sample webhooks in events/ are signed with.
const SECRET: &str = shipgate_tests::WEBHOOK_SECRET;
const ROUTES: &str = "version: 1\nroutes:\n  - repository: \"acme/payments-*\"\n    branches: [main]\n    paths: [\"src/**\", \"Cargo.*\"]\n    pipeline: payments\n  - repository: payments-api\n    branches: [main, \"feature/*\"]\n    pipeline: payments\n";

fn sample(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn setup() -> (Fleet, Deps) {
    let fleet = Fleet::start().await;
    fleet.create_pipeline("payments").await;
    fleet.put_config("routes.yaml", ROUTES).await;
    let config = Config { config_bucket: fleet.config.config_bucket.clone(), webhook_secret_arn: None };
    let deps = Deps::new(&fleet.sdk_for("source-trigger").await, &config, Some(WebhookSecret::new(SECRET)));
    (fleet, deps)
}

async fn webhook(deps: &Deps, request: Value) -> (u16, Value) {
    let request: LambdaFunctionUrlRequest = serde_json::from_value(request).unwrap();
    let response = handle_webhook(deps, &request).await;
    (response.status, response.body)
}

#[tokio::test]
async fn codecommit_push_starts_one_execution_with_the_right_variables() {
    let (fleet, deps) = setup().await;
    let out = handle(&deps, sample("codecommit-push-main.json")).await.unwrap();
    assert_eq!(out["started"][0]["pipeline"], "payments");
    let starts = fleet.aws.calls_of("StartPipelineExecution");
    assert_eq!(starts.len(), 1);
    let params = &starts[0].params;
    let variables: Vec<(String, String)> = params["variables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v["value"].as_str().unwrap().to_owned()))
        .collect();
    let commit = "5e4a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2";
    assert_eq!(
        variables,
        [
            ("commit".into(), commit.into()),
            ("branch".into(), "main".into()),
            ("repository".into(), "payments-api".into()),
            ("pusher".into(), "alice".into())
        ]
    );
    assert_eq!(params["sourceRevisions"][0]["revisionType"], "COMMIT_ID");
    assert_eq!(params["sourceRevisions"][0]["revisionValue"], commit);
    assert_eq!(params["sourceRevisions"][0]["actionName"], "Source");
}

#[tokio::test]
async fn github_push_matching_by_changed_paths_starts_the_pipeline() {
    let (fleet, deps) = setup().await;
    let (status, body) = webhook(&deps, sample("github-push-main.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["started"][0]["pipeline"], "payments");
    assert_eq!(fleet.aws.calls_of("StartPipelineExecution").len(), 1);
}

#[tokio::test]
async fn github_push_of_unrouted_paths_is_ignored() {
    let (fleet, deps) = setup().await;
    let (status, body) = webhook(&deps, sample("github-push-docs-only.json")).await;
    assert_eq!(status, 202);
    assert!(body["ignored"].as_str().unwrap().contains("no changed path"), "{body}");
    assert!(fleet.aws.calls_of("StartPipelineExecution").is_empty());
}

#[tokio::test]
async fn tag_pushes_are_ignored() {
    let (fleet, deps) = setup().await;
    let (status, body) = webhook(&deps, sample("github-push-tag.json")).await;
    assert_eq!((status, body["ignored"].as_str().unwrap()), (202, "refs/tags/v1.4.0 is not a branch push"));
    let out = handle(&deps, sample("codecommit-tag-created.json")).await.unwrap();
    assert_eq!(out["ignored"], "v1.4.0 is a tag");
    let out = handle(&deps, sample("codecommit-branch-deleted.json")).await.unwrap();
    assert_eq!(out["ignored"], "branch feature/old was deleted");
    assert!(fleet.aws.calls_of("StartPipelineExecution").is_empty());
}

#[tokio::test]
async fn the_same_delivery_twice_starts_one_execution() {
    let (fleet, deps) = setup().await;
    let (_, first) = webhook(&deps, sample("github-push-main.json")).await;
    let (status, second) = webhook(&deps, sample("github-push-main.json")).await;
    assert_eq!(status, 200);
    assert_eq!(first["started"][0]["executionId"], second["started"][0]["executionId"]);
    let outcomes: Vec<String> =
        fleet.aws.calls_of("StartPipelineExecution").into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["Started", "Duplicate"]);
}

#[tokio::test]
async fn bad_signatures_are_refused_before_the_body_is_parsed() {
    let (fleet, deps) = setup().await;
    let signed = sample("github-push-main.json");
    let mut tampered = signed.clone();
    tampered["body"] = "{not json at all".into();
    let mut wrong_prefix = signed.clone();
    let sig = signed["headers"]["x-hub-signature-256"].as_str().unwrap().to_owned();
    wrong_prefix["headers"]["x-hub-signature-256"] = sig.replace("sha256=", "sha1=").into();
    let mut missing = signed.clone();
    missing["headers"].as_object_mut().unwrap().remove("x-hub-signature-256");
    let mut truncated = signed.clone();
    truncated["headers"]["x-hub-signature-256"] = sig[..sig.len() - 2].to_owned().into();
    for (name, request) in [
        ("tampered", tampered),
        ("wrong prefix", wrong_prefix),
        ("missing", missing),
        ("truncated", truncated),
    ] {
        let (status, body) = webhook(&deps, request).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert!(!body.to_string().contains(&sig[7..]), "the signature is not echoed");
    }
    assert!(fleet.aws.calls_of("StartPipelineExecution").is_empty());
}

#[tokio::test]
async fn ping_is_answered_and_malformed_bodies_are_400() {
    let (_fleet, deps) = setup().await;
    assert_eq!(webhook(&deps, sample("github-ping.json")).await.0, 200);
    // A correctly signed body that is not a push payload.
    let body = "[1, 2, 3]";
    let signature = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let mut request = sample("github-push-main.json");
    request["body"] = body.into();
    request["headers"]["x-hub-signature-256"] = signature.into();
    let (status, response) = webhook(&deps, request).await;
    assert_eq!(status, 400);
    assert!(response["error"].as_str().unwrap().starts_with("malformed push body"), "{response}");
}

#[tokio::test]
async fn function_url_answers_through_the_lambda_handler() {
    let (_fleet, deps) = setup().await;
    let response = handle(&deps, sample("github-push-docs-only.json")).await.unwrap();
    assert_eq!(response["statusCode"], 202);
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert!(body["ignored"].is_string());
}

#[tokio::test]
async fn webhook_secret_is_read_from_secrets_manager() {
    let fleet = Fleet::start().await;
    // The fleet's secret, read as source-trigger's role reads it.
    let sdk = fleet.sdk_for("source-trigger").await;
    let secret = shipgate_aws::secrets::webhook_secret(&sdk, &fleet.webhook_secret_arn).await.unwrap();
    assert_eq!(format!("{secret:?}"), "WebhookSecret(<redacted>)");
    let request = sample("github-ping.json");
    let body = request["body"].as_str().unwrap();
    let header = request["headers"]["x-hub-signature-256"].as_str();
    assert_eq!(shipgate_core::webhook::verify_signature(&secret, body.as_bytes(), header), Ok(()));
    // A whitespace-only secret would be an empty HMAC key: start-up fails naming it.
    aws_sdk_secretsmanager::Client::new(&fleet.sdk)
        .create_secret()
        .name("blank")
        .secret_string(" \n ")
        .send()
        .await
        .unwrap();
    let blank = shipgate_aws::secrets::webhook_secret(&fleet.sdk, "blank").await.unwrap_err();
    assert!(blank.to_string().contains("blank has no secret string"), "{blank}");
    let missing = shipgate_aws::secrets::webhook_secret(&fleet.sdk, "no/such/secret").await.unwrap_err();
    assert_eq!((missing.service, missing.operation), ("SecretsManager", "GetSecretValue"));
}

#[tokio::test]
async fn invalid_routes_fail_clearly() {
    let (fleet, deps) = setup().await;
    fleet.put_config("routes.yaml", "version: 1\nroutes:\n  - repository: x\n").await;
    let err = handle(&deps, sample("codecommit-push-main.json")).await.unwrap_err();
    assert!(err.to_string().starts_with("routes.yaml is invalid: 3:5: routes[0].branches"), "{err}");
}

/// The webhook secret is read on the first webhook, not at start: a cold
/// start for a CodeCommit push never waits for Secrets Manager (here it
/// could not even reach it), a webhook that cannot read it gets 503 (GitHub
/// shows the delivery failed), and the next one reads it and is verified.
#[tokio::test]
async fn the_webhook_secret_is_read_on_the_first_webhook_and_kept() {
    let fleet = Fleet::start().await;
    fleet.create_pipeline("payments").await;
    fleet.put_config("routes.yaml", ROUTES).await;
    let config = Config {
        config_bucket: fleet.config.config_bucket.clone(),
        webhook_secret_arn: Some(fleet.webhook_secret_arn.clone()),
    };
    let deps = Deps::with_secret(&fleet.sdk_for("source-trigger").await, &config);
    // Every attempt of the SDK's three fails.
    fleet.aws.inject_fault("GetSecretValue", 500, "InternalServiceError", 3);
    let out = handle(&deps, sample("codecommit-push-main.json")).await.unwrap();
    assert_eq!(out["started"][0]["pipeline"], "payments", "no secret needed, none read");
    let (status, body) = webhook(&deps, sample("github-push-main.json")).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = webhook(&deps, sample("github-push-main.json")).await;
    assert_eq!(status, 200, "{body}");
    // Kept: a secret Secrets Manager can no longer give does not matter now.
    fleet.aws.inject_fault("GetSecretValue", 500, "InternalServiceError", 3);
    let (status, body) = webhook(&deps, sample("github-ping.json")).await;
    assert_eq!(status, 200, "{body}");
}
