//! The replay's story: a valid policy becomes last-known-good; a broken one is rejected.

use super::*;

impl Replay<'_> {
    pub(in crate::replay) async fn policy_story(&mut self) {
        const S: &str = "policy";
        self.story(
            S,
            "a valid appsec.yaml becomes last-known-good; a broken one is rejected and changes nothing",
        );
        let policy = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let key = format!("policies/{REPO}/appsec.yaml");
        self.upload_policy(S, &key, &policy, "accepted").await;
        let broken = policy.replace("thresholds:", "tresholds:");
        self.upload_policy(S, &key, &broken, "rejected").await;
        self.finish(
            S,
            "a valid appsec.yaml becomes last-known-good; a broken one is rejected and changes nothing",
        );
    }
}
