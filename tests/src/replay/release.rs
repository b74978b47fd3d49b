//! The replay's story: a clean image waits for its scan, passes the gate and the hooks.

use super::*;

impl Replay<'_> {
    pub(in crate::replay) async fn release_story(&mut self, listener: &TestListener) {
        const S: &str = "release";
        const E: &str = "a clean image waits for its scan, passes the gate and the hooks, and deploys";
        self.story(S, E);
        let execution = self.push(S, "2222222222222222222222222222222222222222").await;
        self.scan(S, CLEAN, "1.4.2", "IN_PROGRESS", vec![], "").await;
        self.gate(S, &execution, CLEAN, None, "continue", "waiting for the scan").await;
        let token = self
            .fleet
            .aws
            .calls_of("PutJobSuccessResult")
            .last()
            .and_then(|c| c.params["continuationToken"].as_str().map(str::to_owned))
            .unwrap_or_default();
        self.scan(S, CLEAN, "1.4.2", "COMPLETE", passing_findings(), "PASS").await;
        self.gate(S, &execution, CLEAN, Some(&token), "succeeded", "PASS").await;
        let deployment = deployment(&self.fleet, CLEAN).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Succeeded", "").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Succeeded", "").await;
        let checked = listener.hits() > before;
        let succeeded = eventbridge(
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change",
            json!({"pipeline": PIPELINE, "execution-id": execution, "state": "SUCCEEDED", "version": 1.0}),
        );
        self.step(S, "notifier", "Pipeline Execution SUCCEEDED", &succeeded, |out| {
            let sent = out["sent"].to_string();
            (sent.contains("passing again"), format!("sent {sent}"))
        })
        .await;
        if !checked {
            self.report.steps.push(Step {
                story: S,
                function: "deploy-hooks",
                input: "test listener".into(),
                outcome: "UNEXPECTED: never called".into(),
                elapsed: Duration::ZERO,
                ok: false,
            });
        }
        self.finish(S, E);
    }
}
