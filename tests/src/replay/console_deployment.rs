//! The replay's story: a gated digest redeployed from the console with
//! `privileged: true` is stopped at BeforeInstall.

use super::*;

impl Replay<'_> {
    /// The clean image passed the gate in the release story, in the task
    /// definition the pipeline built. Someone registers another task
    /// definition running the same digest privileged and deploys it by hand:
    /// its provenance holds, but deploy-hooks judges the task definition
    /// being deployed and stops it before any traffic.
    pub(in crate::replay) async fn console_deployment_story(&mut self) {
        const S: &str = "console deployment";
        const E: &str = "a gated digest redeployed by hand with privileged: true is stopped at BeforeInstall";
        self.story(S, E);
        let mut container = crate::compliant_container("app", &image(CLEAN));
        container.privileged = Some(true);
        let (deployment, _) = deployment_of(&self.fleet, container, None).await;
        self.hook(S, &deployment, "BeforeInstall", "Failed", "privileged (app): runs privileged").await;
        self.finish(S, E);
    }
}
