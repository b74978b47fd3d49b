//! The replay's story: a console deployment of an ungated image is stopped.

use super::*;

impl Replay<'_> {
    pub(in crate::replay) async fn ungated_deployment_story(&mut self, listener: &TestListener) {
        const S: &str = "ungated deployment";
        const E: &str = "a console deployment of an image that never passed the gate is stopped";
        self.story(S, E);
        // Built and pushed by hand, so ECR has it (and its scan), but no gate ever judged it.
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": UNGATED, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": passing_findings()}));
        let deployment = deployment(&self.fleet, UNGATED).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Failed", "no passing release-gate decision").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Failed", "no passing release-gate decision")
            .await;
        if listener.hits() != before {
            self.report.steps.push(Step {
                story: S,
                function: "deploy-hooks",
                input: "test listener".into(),
                outcome: "UNEXPECTED: an ungated image was sent traffic".into(),
                elapsed: Duration::ZERO,
                ok: false,
            });
        }
        let failed = eventbridge(
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            json!({"deploymentId": deployment, "application": REPO, "deploymentGroup": format!("{REPO}-dg"), "state": "FAILURE"}),
        );
        self.step(S, "notifier", "Deployment FAILURE", &failed, |out| {
            (out["sent"].as_array().is_some_and(|s| s.len() == 1), format!("sent {}", out["sent"]))
        })
        .await;
        self.finish(S, E);
    }
}
