//! Every adapter against the local AWS emulator, through the real SDK clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use shipgate_aws::Clients;
use shipgate_aws::codedeploy::CodeDeploy;
use shipgate_aws::codepipeline::{CodePipeline, JobResult, Reported, StartExecution};
use shipgate_aws::ecr::{Ecr, ScanLookup};
use shipgate_aws::ecs::Ecs;
use shipgate_aws::events::Bus;
use shipgate_aws::s3::{Bucket, Condition, PutOutcome};
use shipgate_aws::sns::{Message, Topic};
use shipgate_core::digest::ImageDigest;
use shipgate_core::hooks::HookStatus;
use shipgate_tests::Emulator;

/// A report's time budget when nothing is in a hurry.
const BUDGET: std::time::Duration = std::time::Duration::from_secs(30);
const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

async fn clients(aws: &Emulator) -> Clients {
    Clients::new(&aws.sdk_config().await)
}

/// An empty `shipgate-config` bucket, written as the administrator.
async fn new_bucket(aws: &Emulator) -> Bucket {
    let c = clients(aws).await;
    c.s3.create_bucket().bucket("shipgate-config").send().await.unwrap();
    Bucket::new(c.s3, "shipgate-config")
}

async fn sqs(aws: &Emulator) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws.sdk_config().await)
}

async fn receive_one(sqs: &aws_sdk_sqs::Client, url: &str) -> Value {
    let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1, "expected exactly one message");
    serde_json::from_str(messages[0].body().unwrap()).unwrap()
}

#[tokio::test]
async fn s3_reads_writes_and_refuses_conflicting_conditional_writes() {
    let aws = Emulator::start();
    let bucket = new_bucket(&aws).await;

    assert_eq!(bucket.get("verdicts/none.json", shipgate_core::limits::RECORD_BYTES).await.unwrap(), None);

    let first = bucket.put("k.json", b"one".to_vec(), "application/json", Condition::IfAbsent).await.unwrap();
    let PutOutcome::Written { etag: Some(etag) } = first else { panic!("first write: {first:?}") };
    let again = bucket.put("k.json", b"two".to_vec(), "application/json", Condition::IfAbsent).await.unwrap();
    assert_eq!(again, PutOutcome::ConditionFailed);

    let stale = bucket
        .put("k.json", b"two".to_vec(), "application/json", Condition::IfMatch("\"not-the-etag\"".into()))
        .await
        .unwrap();
    assert_eq!(stale, PutOutcome::ConditionFailed);
    let fresh =
        bucket.put("k.json", b"three".to_vec(), "application/json", Condition::IfMatch(etag)).await.unwrap();
    assert!(matches!(fresh, PutOutcome::Written { .. }));

    assert_eq!(
        bucket.get("k.json", shipgate_core::limits::RECORD_BYTES).await.unwrap().unwrap().body,
        b"three"
    );
}

/// S3 decides a conditional write atomically: of writers racing on one ETag
/// exactly one wins, and compare-and-swap updates racing on one object all
/// land ("Conditional writes", Amazon S3 User Guide:
/// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
/// moto compares and writes in two steps another request's thread can come
/// between; the emulator takes S3 object writes one at a time, as S3 decides
/// them.
#[tokio::test]
async fn s3_conditional_writes_racing_on_one_object_are_decided_one_at_a_time() {
    let aws = Emulator::start();
    let bucket = new_bucket(&aws).await;
    let first =
        bucket.put("race.json", b"start".to_vec(), "application/json", Condition::IfAbsent).await.unwrap();
    let PutOutcome::Written { etag: Some(etag) } = first else { panic!("first write: {first:?}") };

    let racers = (0..24).map(|n| {
        let (bucket, etag) = (bucket.clone(), etag.clone());
        tokio::spawn(async move {
            let body = format!("{n}").into_bytes();
            bucket.put("race.json", body, "application/json", Condition::IfMatch(etag)).await.unwrap()
        })
    });
    let outcomes = futures_util::future::join_all(racers).await;
    let won =
        outcomes.into_iter().filter(|o| matches!(o.as_ref().unwrap(), PutOutcome::Written { .. })).count();
    assert_eq!(won, 1, "writers holding the same ETag that won");

    let counters = (0..8).map(|_| {
        let bucket = bucket.clone();
        tokio::spawn(async move {
            bucket
                .update_json("counter.json", |n: Option<&u32>| Some(n.copied().unwrap_or(0) + 1))
                .await
                .unwrap()
        })
    });
    futures_util::future::join_all(counters).await;
    let counter = bucket.get("counter.json", shipgate_core::limits::RECORD_BYTES).await.unwrap().unwrap();
    assert_eq!(counter.body, b"8", "every increment landed once");
}

/// An update that starts from what the previous one left needs no read,
/// and still loses no race: a write by anyone else in between makes its
/// conditional write fail, and it reads and decides again.
#[tokio::test]
async fn chained_updates_start_from_their_own_write_and_still_lose_no_race() {
    let aws = Emulator::start();
    let bucket = new_bucket(&aws).await;
    let add = |n: u32| move |v: Option<&Vec<u32>>| Some([v.cloned().unwrap_or_default(), vec![n]].concat());
    let gets = |aws: &Emulator| {
        let requests = aws.control_get("/_shipgate/requests")["requests"].as_array().unwrap().clone();
        requests.iter().filter(|r| r["method"] == "GET" && r["path"] == "/shipgate-config/list.json").count()
    };

    let mut stored = None;
    bucket.update_json_at("list.json", &mut stored, add(1)).await.unwrap();
    bucket.update_json_at("list.json", &mut stored, add(2)).await.unwrap();
    assert_eq!(gets(&aws), 0, "each update started from the last one's write");

    // Someone else writes; the chained update notices, reads, and keeps it.
    bucket.update_json("list.json", add(3)).await.unwrap();
    bucket.update_json_at("list.json", &mut stored, add(4)).await.unwrap();
    let list: Vec<u32> = bucket.get_json("list.json").await.unwrap().unwrap();
    assert_eq!(list, [1, 2, 3, 4]);
    assert_eq!(stored.map(|o| serde_json::from_slice::<Vec<u32>>(&o.body).unwrap()), Some(list));
}

#[tokio::test]
async fn ecr_findings_are_read_across_every_page() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    c.ecr.create_repository().repository_name("payments-api").send().await.unwrap();
    let findings: Vec<Value> = (0..2345)
        .map(|i| {
            json!({"name": format!("CVE-2026-{i:05}"), "severity": if i % 2 == 0 {"HIGH"} else {"LOW"},
                   "attributes": [{"key": "package_name", "value": "openssl"}]})
        })
        .collect();
    aws.seed_scan(json!({"repositoryName": "payments-api", "imageDigest": DIGEST, "status": "COMPLETE",
                         "completedAt": 1795860000, "findings": findings}));

    let ScanLookup::Found(report) = Ecr::new(c.ecr.clone())
        .describe_scan(None, "payments-api", &ImageDigest::parse(DIGEST).unwrap())
        .await
        .unwrap()
    else {
        panic!("scan not found")
    };
    let f = report.image_scan_findings.unwrap();
    assert_eq!(f.findings.len(), 2345);
    assert_eq!(f.findings[2344].name, "CVE-2026-02344");
    assert_eq!(f.findings[0].attribute("package_name"), Some("openssl"));
    assert_eq!(f.image_scan_completed_at.unwrap().timestamp(), 1795860000);
    let pages = aws.calls_of("DescribeImageScanFindings");
    assert_eq!(pages.len(), 3, "1000 + 1000 + 345");
    assert!(pages.iter().all(|p| p.params["maxResults"] == 1000));
}

#[tokio::test]
async fn ecr_enhanced_findings_and_missing_scans() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    c.ecr.create_repository().repository_name("web").send().await.unwrap();
    aws.seed_scan(json!({"repositoryName": "web", "imageDigest": DIGEST, "status": "ACTIVE",
        "enhancedFindings": [{"severity": "CRITICAL", "fixAvailable": "NO", "status": "ACTIVE",
            "packageVulnerabilityDetails": {"vulnerabilityId": "CVE-2024-3094",
                "vulnerablePackages": [{"name": "xz-utils", "version": "5.6.0"}]}}]}));
    let ScanLookup::Found(report) = Ecr::new(c.ecr.clone())
        .describe_scan(None, "web", &ImageDigest::parse(DIGEST).unwrap())
        .await
        .unwrap()
    else {
        panic!("scan not found")
    };
    assert_eq!(report.status(), Some("ACTIVE"));
    let enhanced = &report.image_scan_findings.unwrap().enhanced_findings[0];
    let details = enhanced.package_vulnerability_details.as_ref().unwrap();
    assert_eq!(details.vulnerability_id, "CVE-2024-3094");
    assert_eq!(details.vulnerable_packages[0].name, "xz-utils");
    assert_eq!(enhanced.fix_available.as_deref(), Some("NO"));

    let other = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    aws.seed_scan(json!({"repositoryName": "web", "imageDigest": other, "status": "SCAN_NOT_FOUND"}));
    assert_eq!(
        Ecr::new(c.ecr.clone())
            .describe_scan(None, "web", &ImageDigest::parse(other).unwrap())
            .await
            .unwrap(),
        ScanLookup::NotFound
    );
}

#[tokio::test]
async fn ecs_task_definition_reads_back_into_the_domain_model() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    use aws_sdk_ecs::types::{ContainerDefinition, KernelCapabilities, KeyValuePair, LinuxParameters};
    let container = ContainerDefinition::builder()
        .name("app")
        .memory(512)
        .image(format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}"))
        .privileged(true)
        .user("0")
        .linux_parameters(
            LinuxParameters::builder()
                .capabilities(KernelCapabilities::builder().add("NET_ADMIN").build())
                .build(),
        )
        .environment(KeyValuePair::builder().name("DB_PASSWORD").value("hunter2").build())
        .build();
    let registered = c
        .ecs
        .register_task_definition()
        .family("web")
        .network_mode(aws_sdk_ecs::types::NetworkMode::Host)
        .container_definitions(container)
        .send()
        .await
        .unwrap();
    let arn = registered.task_definition.unwrap().task_definition_arn.unwrap();

    let td = Ecs::new(c.ecs.clone()).describe_task_definition(&arn).await.unwrap();
    assert_eq!(td.family.as_deref(), Some("web"));
    assert_eq!(td.network_mode.as_deref(), Some("host"));
    let app = &td.container_definitions[0];
    assert_eq!(app.privileged, Some(true));
    assert_eq!(app.user.as_deref(), Some("0"));
    assert_eq!(app.linux_parameters.as_ref().unwrap().capabilities.as_ref().unwrap().add, ["NET_ADMIN"]);
    assert_eq!(app.environment[0].name, "DB_PASSWORD");
}

#[tokio::test]
async fn sns_message_arrives_on_an_sqs_subscription_with_its_attributes() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    let sqs = sqs(&aws).await;
    let topic_arn = c.sns.create_topic().name("shipgate").send().await.unwrap().topic_arn.unwrap();
    let (url, queue_arn) = shipgate_tests::create_queue(&sqs, "inbox").await;
    c.sns.subscribe().topic_arn(&topic_arn).protocol("sqs").endpoint(&queue_arn).send().await.unwrap();

    let message = Message {
        subject: "Release blocked: payments-api".into(),
        body: "The gate stopped the release.".into(),
        attributes: [("severity".to_owned(), "high".to_owned())].into(),
    };
    let id = Topic::new(c.sns.clone(), &topic_arn).publish(&message).await.unwrap();
    assert!(!id.is_empty());

    let envelope = receive_one(&sqs, &url).await;
    assert_eq!(envelope["Subject"], "Release blocked: payments-api");
    assert_eq!(envelope["Message"], "The gate stopped the release.");
    assert_eq!(envelope["MessageAttributes"]["severity"]["Value"], "high");
}

#[tokio::test]
async fn eventbridge_event_reaches_an_sqs_target() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    let sqs = sqs(&aws).await;
    c.eventbridge.create_event_bus().name("shipgate").send().await.unwrap();
    let (url, queue_arn) = shipgate_tests::create_queue(&sqs, "events").await;
    c.eventbridge
        .put_rule()
        .name("all-shipgate")
        .event_bus_name("shipgate")
        .event_pattern(r#"{"source":["shipgate"]}"#)
        .send()
        .await
        .unwrap();
    c.eventbridge
        .put_targets()
        .rule("all-shipgate")
        .event_bus_name("shipgate")
        .targets(aws_sdk_eventbridge::types::Target::builder().id("q").arn(queue_arn).build().unwrap())
        .send()
        .await
        .unwrap();

    let bus = Bus::new(c.eventbridge.clone(), "shipgate");
    bus.put("Shipgate Scan Verdict", &[], &json!({"verdict": "FAIL"})).await.unwrap();

    let event = receive_one(&sqs, &url).await;
    assert_eq!(event["source"], "shipgate");
    assert_eq!(event["detail-type"], "Shipgate Scan Verdict");
    assert_eq!(event["detail"]["verdict"], "FAIL");
}

#[tokio::test]
async fn codepipeline_job_result_is_recorded_once_and_a_repeat_is_already_done() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    let success = JobResult::Succeeded {
        summary: "PASS".into(),
        output_variables: vec![("IMAGE_DIGEST".into(), DIGEST.into())],
    };
    assert_eq!(
        CodePipeline::new(c.codepipeline.clone()).report_job("job-1", &success, BUDGET).await.unwrap(),
        Reported::Now
    );
    let failure = JobResult::Failed { message: "late duplicate".into() };
    assert_eq!(
        CodePipeline::new(c.codepipeline.clone()).report_job("job-1", &failure, BUDGET).await.unwrap(),
        Reported::AlreadyDone
    );

    let calls = aws.calls_of("PutJobSuccessResult");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].params["outputVariables"]["IMAGE_DIGEST"], DIGEST);
    assert_eq!(calls[0].outcome, "Succeeded");
}

#[tokio::test]
async fn codepipeline_start_is_idempotent_on_its_request_token() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    aws.create_pipeline("payments").await;
    let start = StartExecution {
        pipeline: "payments".into(),
        source_action: "Source".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        variables: vec![("BRANCH".into(), "main".into())],
        client_request_token: "payments-0123456789abcdef".into(),
    };
    let first = CodePipeline::new(c.codepipeline.clone()).start_execution(&start).await.unwrap();
    let second = CodePipeline::new(c.codepipeline.clone()).start_execution(&start).await.unwrap();
    assert_eq!(first, second);
    let outcomes: Vec<_> = aws.calls_of("StartPipelineExecution").into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["Started", "Duplicate"]);
}

#[tokio::test]
async fn codedeploy_hook_status_is_recorded_once() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    c.codedeploy
        .create_application()
        .application_name("web")
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
        .send()
        .await
        .unwrap();
    c.codedeploy
        .create_deployment_group()
        .application_name("web")
        .deployment_group_name("web-dg")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .send()
        .await
        .unwrap();
    let deployment = c
        .codedeploy
        .create_deployment()
        .application_name("web")
        .deployment_group_name("web-dg")
        .send()
        .await
        .unwrap()
        .deployment_id
        .unwrap();

    let first = CodeDeploy::new(c.codedeploy.clone())
        .report_hook(&deployment, "hook-1", HookStatus::Failed, BUDGET)
        .await
        .unwrap();
    let second = CodeDeploy::new(c.codedeploy.clone())
        .report_hook(&deployment, "hook-1", HookStatus::Succeeded, BUDGET)
        .await
        .unwrap();
    assert_eq!((first, second), (Reported::Now, Reported::AlreadyDone));
    let calls = aws.calls_of("PutLifecycleEventHookExecutionStatus");
    assert_eq!(calls[0].params["status"], "Failed");
    assert_eq!(calls[0].outcome, "Failed");
    assert_eq!(calls[1].outcome, "LifecycleEventAlreadyCompletedException");

    let unknown = CodeDeploy::new(c.codedeploy.clone())
        .report_hook("d-UNKNOWN", "hook-2", HookStatus::Failed, BUDGET)
        .await
        .unwrap_err();
    assert!(unknown.is("DeploymentDoesNotExistException"), "{unknown}");
}

#[tokio::test]
async fn unreachable_endpoint_fails_with_the_service_named() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = shipgate_aws::config_loader()
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::for_tests())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let client = aws_sdk_codepipeline::Client::new(&config);
    let err = CodePipeline::new(client)
        .report_job("job-1", &JobResult::Failed { message: "x".into() }, BUDGET)
        .await
        .unwrap_err();
    assert_eq!((err.service, err.operation), ("CodePipeline", "PutJobFailureResult"));
    assert!(err.transient);
    assert!(err.to_string().starts_with("CodePipeline PutJobFailureResult failed: "), "{err}");
}

#[tokio::test]
async fn emulator_injected_throttling_is_retried_by_the_sdk() {
    let aws = Emulator::start();
    let c = clients(&aws).await;
    aws.inject_fault("PutJobSuccessResult", 400, "ThrottlingException", 1);
    let ok = JobResult::Succeeded { summary: "ok".into(), output_variables: vec![] };
    assert_eq!(
        CodePipeline::new(c.codepipeline.clone()).report_job("job-9", &ok, BUDGET).await.unwrap(),
        Reported::Now
    );
    let outcomes: Vec<_> = aws.calls_of("PutJobSuccessResult").into_iter().map(|c| c.outcome).collect();
    assert_eq!(outcomes, ["ThrottlingException", "Succeeded"]);
}

/// An HTTPS test listener (what an ALB test listener on 8443 usually is) is
/// checked with real certificate validation: trusted through its CA it
/// passes; against the bundled public roots its private CA is refused in the
/// handshake, before any request reaches it.
#[tokio::test]
async fn an_https_test_listener_is_checked_with_certificate_validation() {
    use shipgate_aws::probe::Probe;
    use shipgate_tests::{ListenerMode, TestListener};
    let listener = TestListener::start_tls(ListenerMode::Healthy).await;
    assert!(listener.url.starts_with("https://127.0.0.1:"), "{}", listener.url);
    let backoff = std::time::Duration::from_millis(1);
    let timeout = std::time::Duration::from_secs(5);
    let trusted = Probe::with_roots("URL", &listener.url, backoff, TestListener::test_ca()).unwrap();
    let passed = trusted.check("/healthz", 200, timeout, 1).await;
    assert!(passed.passed, "{passed:?}");

    let public_roots = Probe::new("URL", &listener.url, backoff).unwrap();
    let refused = public_roots.check("/healthz", 200, timeout, 2).await;
    assert!(!refused.passed, "{refused:?}");
    assert!(refused.last.contains("certificate"), "{refused:?}");
    assert_eq!(listener.hits(), 1, "the refused handshakes never reached the listener");
}

/// The SDK's HTTP client validates certificates against the bundled roots
/// (not the system store): AWS's endpoints chain to them, a private CA does
/// not. Against a listener whose CA it trusts, a call completes its TLS
/// handshake and reaches the server; with the public roots the handshake is
/// refused and the error is a retryable dispatch failure, as the SDK's own
/// client would report it.
#[tokio::test]
async fn the_sdks_client_validates_certificates_against_the_bundled_roots() {
    use shipgate_tests::{ListenerMode, TestListener};
    let listener = TestListener::start_tls(ListenerMode::Healthy).await;
    let call = |http: aws_smithy_runtime_api::client::http::SharedHttpClient| {
        let url = listener.url.clone();
        async move {
            let config = shipgate_aws::config_loader()
                .http_client(http)
                .endpoint_url(url)
                .region(aws_config::Region::new("us-east-1"))
                .credentials_provider(aws_credential_types::Credentials::for_tests())
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .load()
                .await;
            aws_sdk_codepipeline::Client::new(&config).get_job_details().job_id("job-1").send().await
        }
    };
    let trusted = call(shipgate_aws::http::sdk_client(TestListener::test_ca()).unwrap()).await;
    // The listener answers every path 200 with no AWS body: the call got there.
    use aws_sdk_codepipeline::error::SdkError;
    assert!(!matches!(trusted, Err(SdkError::DispatchFailure(_))), "{trusted:?}");
    assert_eq!(listener.hits(), 1);

    let refused = call(shipgate_aws::http::sdk_client(shipgate_aws::http::public_roots()).unwrap()).await;
    let err = refused.unwrap_err();
    let SdkError::DispatchFailure(dispatch) = &err else { panic!("not a dispatch failure: {err:?}") };
    assert!(dispatch.is_io(), "{err:?}");
    let text = shipgate_aws::http::causes(&err);
    assert!(text.contains("certificate") || text.contains("UnknownIssuer"), "{text}");
    assert_eq!(listener.hits(), 1, "the refused handshake never reached the listener");
}

/// AWS does not document which revision type CodePipeline's
/// `CodeDeployToECS` action gives its deployment: both inline types are read
/// (`AppSpecContent`, and the SDK-deprecated `String`), and a revision with
/// no inline AppSpec says which type it is.
#[tokio::test]
#[allow(deprecated)]
async fn codedeploy_reads_the_appspec_of_either_inline_revision_type() {
    use aws_sdk_codedeploy::types::{RawString, RevisionLocation, RevisionLocationType, S3Location};
    let aws = Emulator::start();
    let c = clients(&aws).await;
    shipgate_tests::create_deployment_group_of(&aws.sdk_config().await, "web", "web-dg", None).await;
    let appspec = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties: {TaskDefinition: \"web:3\"}\n";
    let revisions = [
        shipgate_tests::appspec_content(appspec),
        RevisionLocation::builder()
            .revision_type(RevisionLocationType::String)
            .string(RawString::builder().content(appspec).build())
            .build(),
        RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(S3Location::builder().bucket("artifacts").key("appspec.yaml").build())
            .build(),
    ];
    let mut read = Vec::new();
    let sdk = aws.sdk_config().await;
    for revision in revisions {
        let id = shipgate_tests::create_deployment_of(&sdk, "web", "web-dg", revision).await;
        let deployment = CodeDeploy::new(c.codedeploy.clone()).get_deployment(&id).await.unwrap().unwrap();
        read.push((deployment.revision_type.unwrap(), deployment.appspec.is_some_and(|a| a == appspec)));
    }
    assert_eq!(
        read,
        [("AppSpecContent".to_owned(), true), ("String".to_owned(), true), ("S3".to_owned(), false)]
    );
}

/// Two deployments of one service recorded at once, interleaved the way that
/// used to drop the service from the index of the digest it runs (#33): the
/// later deployment (back to A) adds itself to A's index, the earlier one
/// (to B) removes the service from A's index after both records are
/// written. The index must still name the service under A.
#[tokio::test]
async fn two_deployments_recorded_at_once_never_drop_the_service_from_the_index() {
    use shipgate_aws::exposure::{Recording, record_deployment, services_running};
    use shipgate_core::exposure::{RunningImage, RunningService};
    let aws = Emulator::start();
    let bucket = new_bucket(&aws).await;
    let (a, b) =
        (ImageDigest::parse(DIGEST).unwrap(), ImageDigest::parse(&DIGEST.replace('1', "2")).unwrap());
    let deployment = |id: &str, at: &str, digest: &ImageDigest| RunningService {
        environment: Some("prod".into()),
        service: "prod/payments".into(),
        deployment: id.into(),
        deployed_at: at.parse().unwrap(),
        images: vec![RunningImage {
            container: "app".into(),
            image: format!("payments@{digest}"),
            repository: "payments".into(),
            digest: digest.clone(),
            exposure: Default::default(),
        }],
    };
    record_deployment(&bucket, deployment("d-0", "2026-12-01T00:00:00Z", &a)).await.unwrap();
    let mut to_b = Recording::new(deployment("d-1", "2026-12-02T00:00:00Z", &b));
    let mut back_to_a = Recording::new(deployment("d-2", "2026-12-03T00:00:00Z", &a));
    assert!(back_to_a.step(&bucket).await.unwrap(), "back_to_a: index A");
    assert!(to_b.step(&bucket).await.unwrap(), "to_b: index B");
    assert!(to_b.step(&bucket).await.unwrap(), "to_b: record B, replacing A");
    assert!(back_to_a.step(&bucket).await.unwrap(), "back_to_a: record A, replacing B");
    while back_to_a.step(&bucket).await.unwrap() {}
    while to_b.step(&bucket).await.unwrap() {}
    let key = "running/prod/prod/payments.json".to_owned();
    assert_eq!(services_running(&bucket, &a).await.unwrap(), [key], "the record runs A");
    assert!(services_running(&bucket, &b).await.unwrap().is_empty(), "and no longer B");
}
