//! The replay's story: a CVE found after release blocks the next release.

use super::*;

impl Replay<'_> {
    /// A finding that arrives after release: Inspector keeps rescanning and
    /// adds findings to an image that already passed (AWS also sends an
    /// `Inspector2 Finding` event; release-gate judges the current findings at
    /// decision time, so it needs none). The next release of the same digest
    /// is blocked.
    pub(in crate::replay) async fn finding_after_release_story(&mut self) {
        const S: &str = "finding after release";
        const E: &str = "a CVE found after an image shipped blocks the next release of the same digest";
        self.story(S, E);
        let execution = self.push(S, "3333333333333333333333333333333333333333").await;
        self.scan(S, REBUILT, "1.5.0", "COMPLETE", passing_findings(), "PASS").await;
        self.gate(S, &execution, REBUILT, None, "succeeded", "PASS").await;
        // Inspector's rescan, days later: a new critical CVE in the same image.
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-4040", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "openssl"}]}));
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": REBUILT, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": findings}));
        let execution = self.push(S, "4444444444444444444444444444444444444444").await;
        self.gate(S, &execution, REBUILT, None, "failed", "CVE-2026-4040").await;
        self.finish(S, E);
    }
}
