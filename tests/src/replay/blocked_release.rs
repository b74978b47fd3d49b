//! The replay's story: an image with a critical CVE is stopped at the gate.

use super::*;

impl Replay<'_> {
    pub(in crate::replay) async fn blocked_release_story(&mut self) {
        const S: &str = "blocked release";
        const E: &str = "an image with a critical CVE is stopped at the gate";
        self.story(S, E);
        let execution = self.push(S, "1111111111111111111111111111111111111111").await;
        let critical = json!({"name": "CVE-2024-3094", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "xz-utils"}]});
        self.scan(S, VULNERABLE, "1.4.1", "COMPLETE", vec![critical], "FAIL").await;
        self.gate(S, &execution, VULNERABLE, None, "failed", "CVE-2024-3094").await;
        let failed = eventbridge(
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change",
            json!({"pipeline": PIPELINE, "execution-id": execution, "state": "FAILED", "version": 1.0}),
        );
        self.step(S, "notifier", "Pipeline Execution FAILED", &failed, |out| {
            (out["sent"].as_array().is_some_and(|s| s.len() == 1), format!("sent {}", out["sent"]))
        })
        .await;
        self.finish(S, E);
    }
}
