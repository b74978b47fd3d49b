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
            "expired exception"
        ]
    );
    assert!(
        report.steps.iter().any(|s| s.function == "release-gate" && s.outcome.starts_with("continue")),
        "{text}"
    );
    let critical = report.notifications.iter().filter(|(_, severity)| severity == "critical").count();
    assert_eq!(critical, 5, "{text}");
}
