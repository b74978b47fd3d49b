//! The local replay as a test: the six real function binaries under
//! cargo-lambda's runtime emulator, against the local AWS emulator, through
//! every story of `make demo`. Each step is checked against what AWS saw (the
//! emulator's record), not only against what the function said, so a
//! function that merely claims success fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shipgate_tests::replay::{Quiet, render, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_story_of_the_replay_ends_as_expected() {
    let report = run(&mut Quiet).await;
    let text = render(&report);
    assert!(report.passed(), "{text}");
    let stories: Vec<&str> = report.stories.iter().map(|s| s.name).collect();
    assert_eq!(
        stories,
        [
            "policy",
            "blocked release",
            "release",
            "ungated deployment",
            "notifications",
            "daily digest",
            "ECS rollback",
            "finding after release",
            "expired exception",
            "multi-arch release",
            "console deployment",
            "sidecar",
            "exposure"
        ]
    );
    assert!(
        report.steps.iter().any(|s| s.function == "release-gate" && s.outcome.starts_with("continue")),
        "{text}"
    );
    let critical = report.notifications.iter().filter(|(_, severity)| severity == "critical").count();
    // Five blocks, and the running service exposed by a CVE after release.
    assert_eq!(critical, 6, "{text}");
}

/// Lambda's `ApplicationLogLevel: TRACE` through the real runtime path (the
/// Runtime API, `lambda_runtime`, the function's own subscriber): a Gate job's
/// artifact credentials and a webhook's signature never reach the log, even
/// though the runtime traces every raw event it receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_no_credential_or_signature_reaches_the_functions_logs() {
    use shipgate_tests::replay::{gate_job, push_request, start_tracing_to};
    let log = std::env::temp_dir().join(format!("shipgate-trace-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let local = start_tracing_to(&mut Quiet, &log).await;

    let push = push_request("6666666666666666666666666666666666666666");
    let signature = push["headers"]["x-hub-signature-256"].as_str().unwrap().to_owned();
    let started = local.invoke("source-trigger", &push).await;
    assert_eq!(started["statusCode"], 200, "{started}");

    let digest = "sha256:7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
    let job = gate_job(&local.fleet, "job-trace", "execution-trace", digest, None).await;
    let data = &job["CodePipeline.job"]["data"]["artifactCredentials"];
    let (secret, token) = (
        data["secretAccessKey"].as_str().unwrap().to_owned(),
        data["sessionToken"].as_str().unwrap().to_owned(),
    );
    let decided = local.invoke("release-gate", &job).await;
    assert!(decided["result"].is_string(), "{decided}");
    drop(local); // stops the functions, so their output is complete

    let logs = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(
        logs.contains("\"level\":\"DEBUG\"") && logs.contains("deciding"),
        "TRACE was not in effect:\n{logs}"
    );
    for (what, value) in
        [("secret access key", &secret), ("session token", &token), ("signature", &signature)]
    {
        assert!(!logs.contains(value.as_str()), "the {what} reached the log:\n{logs}");
    }
    let hex = signature.trim_start_matches("sha256=");
    assert!(!logs.contains(hex), "the signature's digest reached the log");
}
