//! The replay's story: a sidecar that fails its own repository's policy is
//! stopped at the gate.

use super::*;

/// The mesh team's repository and its policy: no known vulnerability at all.
const SIDECAR_REPO: &str = "envoy";
const SIDECAR_POLICY: &str =
    "version: 1\nowner: team-mesh\nscan:\n  thresholds: {CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0}\n";

impl Replay<'_> {
    /// payments-api's build adds an envoy sidecar to its task definition.
    /// envoy's image has a LOW finding, which payments-api's policy allows
    /// and envoy's own policy does not: the gate judges the sidecar by
    /// envoy's policy, as deploy-hooks would, and blocks the release.
    pub(in crate::replay) async fn sidecar_story(&mut self) {
        const S: &str = "sidecar";
        const E: &str = "a sidecar that fails its own repository's policy is stopped at the gate";
        self.story(S, E);
        self.fleet.create_repository(SIDECAR_REPO).await;
        self.fleet.install_policy(SIDECAR_REPO, SIDECAR_POLICY).await;
        let sidecar = self.fleet.push_image(SIDECAR_REPO, Some("1.31.2"), "linux/amd64").await;
        let low = json!({"name": "CVE-2026-7070", "severity": "LOW", "attributes": [{"key": "package_name", "value": "libcap"}]});
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": SIDECAR_REPO, "imageDigest": sidecar, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": [low]}));
        let execution = self.push(S, "6666666666666666666666666666666666666666").await;
        let mut taskdef = release_taskdef(None);
        let mut envoy = taskdef["containerDefinitions"][0].clone();
        envoy["name"] = "envoy".into();
        envoy["image"] = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{SIDECAR_REPO}@{sidecar}").into();
        envoy.as_object_mut().map(|e| e.remove("secrets"));
        if let Some(containers) = taskdef["containerDefinitions"].as_array_mut() {
            containers.push(envoy);
        }
        self.gate_taskdef(
            S,
            &execution,
            CLEAN,
            None,
            taskdef,
            "failed",
            "(under policies/envoy/appsec.lkg.json)",
        )
        .await;
        self.finish(S, E);
    }
}
