//! The replay's story: an ECS native rollback is never blocked.

use super::*;

impl Replay<'_> {
    /// An ECS native blue/green deployment rolling back: ECS re-invokes the
    /// traffic-shift hook with the weights pointing back to blue, and
    /// deploy-hooks answers SUCCEEDED at once, even for a revision whose
    /// checks fail.
    pub(in crate::replay) async fn ecs_rollback_story(&mut self) {
        const S: &str = "ECS rollback";
        const E: &str = "an ECS native rollback is never blocked, while the same revision going forward is";
        self.story(S, E);
        let rollback = sample("aws/ecs-native-hook-production-traffic-shift-rollback.aws-ecs-docs.json");
        let revision =
            rollback["executionDetails"]["targetServiceRevisionArn"].as_str().unwrap_or_default().to_owned();
        let (_, task_definition) = deployment_with_task_definition(&self.fleet, UNGATED).await;
        self.fleet.aws.control_post(
            "/_shipgate/ecs/service-revisions",
            &json!({"serviceRevisionArn": revision, "taskDefinition": task_definition}),
        );
        let mut forward = rollback.clone();
        forward["lifecycleStage"] = "POST_TEST_TRAFFIC_SHIFT".into();
        forward["executionDetails"]["productionTrafficWeights"] = json!({});
        self.step(S, "deploy-hooks", "ECS POST_TEST_TRAFFIC_SHIFT (ungated image)", &forward, |out| {
            (out["hookStatus"] == "FAILED", format!("{}", out["hookStatus"]))
        })
        .await;
        let _ = self.fleet.events().await;
        self.step(S, "deploy-hooks", "ECS PRODUCTION_TRAFFIC_SHIFT, back to blue", &rollback, |out| {
            (out["hookStatus"] == "SUCCEEDED", format!("{} without checks", out["hookStatus"]))
        })
        .await;
        let said = self
            .fleet
            .events()
            .await
            .iter()
            .any(|e| e["detail-type"] == "Shipgate Hook Result" && e["detail"]["rollback"] == true);
        self.verify(S, "deploy-hooks", "a Shipgate Hook Result marked as a rollback".into(), said);
        self.finish(S, E);
    }
}
