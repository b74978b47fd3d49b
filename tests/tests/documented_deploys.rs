//! The deploy commands the README and `docs/deploy.md` give, run as written:
//! each fleet deploy's parameters and nothing else (placeholders filled with
//! the emulator's values) give each function its environment from
//! `infra/template.yaml` as SAM translates it; the example pipeline's gate
//! passes what `infra/pipeline/template.yaml` gives it. A release then goes
//! through the gate and both CodeDeploy hooks. The pipeline and the fleet
//! must agree on the environment a release is decided for and a hook judges:
//! if a command leaves it out, BeforeInstall finds no decision and this fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shipgate_tests::documented::documented_deploys;
use shipgate_tests::replay::{
    FunctionLogs, Quiet, documented_gate_parameters, fleet_as_documented, release, start_with,
};

/// The README's own command, alone (a newcomer's first deploy, before the
/// pipeline stack gives a test listener): the gate's decision opens
/// BeforeInstall, so the environments agree; AfterAllowTestTraffic, whose
/// check needs the listener, fails closed saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_deploy_command_opens_before_install_to_what_the_gate_passed() {
    let readme = documented_deploys()
        .into_iter()
        .find(|d| d.source.starts_with("README.md") && d.is_fleet())
        .expect("the README deploys the fleet");
    let local = start_with(&mut Quiet, &readme, &[], FunctionLogs::Replay).await;
    let gate_parameters = documented_gate_parameters(&local);
    let release = release(&local, &gate_parameters).await;
    assert_eq!(release.gate["result"], "succeeded", "{}: gate {}", readme.source, release.gate);
    let (hook, before_install) = &release.hooks[0];
    assert_eq!(*hook, "BeforeInstall");
    assert_eq!(
        before_install["status"],
        "Succeeded",
        "{} deploys deploy-hooks with SHIPGATE_ENVIRONMENT={:?}; the pipeline's gate passes {gate_parameters}: {before_install}",
        readme.source,
        local.fleet.deployed("deploy-hooks").environment.get("SHIPGATE_ENVIRONMENT")
    );
    let (hook, test_traffic) = &release.hooks[1];
    assert_eq!(*hook, "AfterAllowTestTraffic");
    assert_eq!(test_traffic["status"], "Failed", "{test_traffic}");
    assert!(
        test_traffic["reasons"].to_string().contains("SHIPGATE_TEST_LISTENER_URL is not configured"),
        "{test_traffic}"
    );
}

/// Every documented fleet deploy in turn (the README's, then the deploy
/// guide's, which adds the test listener once the pipeline stack gives it):
/// the release passes the gate and both hooks, and AfterAllowTestTraffic
/// checked the listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_deploys_give_a_fleet_whose_release_passes_the_gate_and_both_hooks() {
    let deploy = fleet_as_documented();
    let local = start_with(&mut Quiet, &deploy, &[], FunctionLogs::Replay).await;
    let gate_parameters = documented_gate_parameters(&local);
    let release = release(&local, &gate_parameters).await;
    assert_eq!(release.gate["result"], "succeeded", "{}: gate {}", deploy.source, release.gate);
    for (hook, out) in &release.hooks {
        assert_eq!(out["status"], "Succeeded", "{}: {hook} {out}", deploy.source);
        assert_eq!(out["reported_now"], true, "{hook}");
    }
    assert!(release.listener_hits > 0, "AfterAllowTestTraffic checked the test listener");
}
