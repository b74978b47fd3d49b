//! The replay's story: an exception that has ended blocks what it covered.

use super::*;

impl Replay<'_> {
    /// An exception that ended yesterday: what passed yesterday (the verdict
    /// scan-gate stored then, judged at yesterday's noon, as `shipgate scan
    /// evaluate --now` judges) is blocked today, and the release agrees with
    /// the engine judging the same findings at today's `now`.
    pub(in crate::replay) async fn expired_exception_story(&mut self) {
        const S: &str = "expired exception";
        const E: &str =
            "an image that passed yesterday under an exception is blocked today, when it has expired";
        self.story(S, E);
        let now = chrono::Utc::now();
        let yesterday = (now - chrono::Duration::days(1)).date_naive();
        let yesterday_noon = yesterday.and_hms_opt(12, 0, 0).unwrap_or_default().and_utc();
        let example = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let policy = example.replace(
            "  exceptions:\n",
            &format!(
                "  exceptions:\n    - {{id: CVE-2026-5050, package: libexpat, expires: {yesterday}, reason: \"parser not reachable\", ticket: SEC-2050}}\n"
            ),
        );
        self.upload_policy(S, &format!("policies/{REPO}/appsec.yaml"), &policy, "accepted").await;
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-5050", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "libexpat"}]}));
        let judge = |at| {
            let report: shipgate_core::findings::ScanReport = serde_json::from_value(json!({
                "imageScanStatus": {"status": "COMPLETE"},
                "imageScanFindings": {"findingSeverityCounts": {"CRITICAL": 2, "LOW": 1}, "findings": findings}}))
            .unwrap();
            let document = shipgate_core::validate::parse_policy(&policy, None).unwrap().document;
            let prod = document.environment(Some("prod")).unwrap();
            shipgate_core::scan::evaluate_scan(prod, REPO, &report, at)
        };
        let then = judge(yesterday_noon);
        self.engine(S, yesterday_noon, &then, shipgate_core::scan::Verdict::Pass);
        // What scan-gate stored yesterday, still in the bucket today.
        let stored = shipgate_core::verdict::VerdictRecord {
            repository: REPO.into(),
            digest: shipgate_core::digest::ImageDigest::parse(EXCEPTED).expect("a sha256 digest"),
            image_tags: vec!["1.5.1".into()],
            scanned_at: yesterday_noon,
            policy_key: Some(format!("policies/{REPO}/appsec.lkg.json")),
            policy_sha256: Some(shipgate_core::lkg::sha256_hex(policy.as_bytes())),
            judged_at: yesterday_noon,
            verdict: then.clone(),
            environments: [("prod".to_owned(), then)].into(),
            announced: true,
        };
        self.fleet
            .put_config(&format!("verdicts/{REPO}/{EXCEPTED}.json"), &serde_json::to_string(&stored).unwrap())
            .await;
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": EXCEPTED, "status": "COMPLETE",
            "completedAt": yesterday_noon.timestamp(), "findings": findings}));
        let execution = self.push(S, "5555555555555555555555555555555555555555").await;
        self.gate(S, &execution, EXCEPTED, None, "failed", "CVE-2026-5050").await;
        let now = chrono::Utc::now();
        self.engine(S, now, &judge(now), shipgate_core::scan::Verdict::Fail);
        self.finish(S, E);
    }
}
