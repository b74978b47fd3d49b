//! The replay's story: a multi-arch index is judged by the image its platform runs.

use super::*;

impl Replay<'_> {
    /// A `docker buildx` build for amd64 and arm64 pushes an image index; ECR
    /// scans each platform's image, not the index. The service runs on
    /// Graviton, so the arm64 image is the one judged (its amd64 sibling's
    /// CRITICAL does not block it), and the deployment, naming the index
    /// digest as the task definition does, passes its hooks; the same index
    /// in an X86_64 task would run the amd64 image, and is stopped.
    pub(in crate::replay) async fn multi_arch_story(&mut self, listener: &TestListener) {
        const S: &str = "multi-arch release";
        const E: &str = "a Graviton task is judged by the arm64 image of its index and deploys; an x86 task of it is stopped";
        self.story(S, E);
        let index = self.fleet.push_image_index(REPO, "1.6.0", &["linux/amd64", "linux/arm64"]).await;
        let (amd64, arm64) = (index.child("linux/amd64").to_owned(), index.child("linux/arm64").to_owned());
        let execution = self.push(S, "5555555555555555555555555555555555555555").await;
        let critical = json!({"name": "CVE-2026-6060", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "glibc"}]});
        let mut amd64_findings = passing_findings();
        amd64_findings.push(critical);
        self.scan(S, &amd64, "", "COMPLETE", amd64_findings, "FAIL").await;
        self.scan(S, &arm64, "", "COMPLETE", passing_findings(), "PASS").await;
        self.gate_on(S, &execution, &index.digest, None, Some("ARM64"), "succeeded", "PASS").await;
        let judged: Vec<String> = self
            .fleet
            .aws
            .calls_of("DescribeImageScanFindings")
            .iter()
            .rev()
            .take(1)
            .map(|c| c.params["imageId"]["imageDigest"].as_str().unwrap_or_default().to_owned())
            .collect();
        self.verify(
            S,
            "release-gate",
            "the arm64 image's scan judged, not the index's".into(),
            judged == [arm64.clone()],
        );
        let mut provenance = Vec::new();
        for digest in [&index.digest, &arm64] {
            let digest = shipgate_core::digest::Digest::parse(digest).expect("ECR's digests are sha256");
            let key = shipgate_core::hooks::provenance_key(&digest, Some("prod"));
            provenance.push(self.fleet.get_json(&key).await.is_some());
        }
        self.verify(
            S,
            "release-gate",
            "provenance for the index and its arm64 image".into(),
            provenance == [true, true],
        );
        use aws_sdk_ecs::types::CpuArchitecture;
        let (deployment, _) = deployment_on(&self.fleet, &index.digest, Some(CpuArchitecture::Arm64)).await;
        let before = listener.hits();
        self.hook(S, &deployment, "BeforeInstall", "Succeeded", "").await;
        self.hook(S, &deployment, "AfterAllowTestTraffic", "Succeeded", "").await;
        let checked = listener.hits() > before;
        self.verify(S, "deploy-hooks", "the test listener checked".into(), checked);
        // The same index in an X86_64 task would run the amd64 image, which
        // never passed: stopped before any traffic.
        let (x86, _) = deployment_on(&self.fleet, &index.digest, None).await;
        self.hook(S, &x86, "BeforeInstall", "Failed", "no passing release-gate decision").await;
        self.finish(S, E);
    }
}
