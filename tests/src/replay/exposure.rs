//! The replay's story: exposure of running services, told to their owner.

use super::*;

impl Replay<'_> {
    /// Exposure: what runs is recorded when its deployment succeeds; a CVE
    /// published later reaches the owner as an exposed running service, and
    /// an exception with an expiry date as accepted until that date. The
    /// notifier gathers flips for 15 minutes; the replay fires its schedule
    /// with a scheduled time past the window instead of waiting.
    pub(in crate::replay) async fn exposure_story(&mut self) {
        const S: &str = "exposure";
        const E: &str = "a CVE published after release tells the owner the running service is exposed; an exception tells them until when it is accepted";
        self.story(S, E);
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": RUNNING, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": passing_findings()}));
        let deployment = deployment(&self.fleet, RUNNING).await;
        let succeeded = eventbridge(
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            json!({"deploymentId": deployment, "application": REPO, "deploymentGroup": format!("{REPO}-dg"), "state": "SUCCESS"}),
        );
        self.step(S, "deploy-hooks", "Deployment SUCCESS (EventBridge)", &succeeded, |out| {
            (out["recorded"].is_string(), format!("recorded {}", out["recorded"]))
        })
        .await;
        let key = format!("running/prod/{REPO}/{REPO}-dg.json");
        let runs = self.fleet.get_json(&key).await.is_some_and(|r| r["images"][0]["digest"] == RUNNING);
        self.verify(S, "deploy-hooks", format!("{key} running {}", &RUNNING[..19]), runs);

        // The CVE is published; Inspector's rescan finds it in the running image.
        let mut findings = passing_findings();
        findings.push(json!({"name": "CVE-2026-6060", "severity": "CRITICAL", "attributes": [{"key": "package_name", "value": "openssl"}]}));
        self.fleet
            .aws
            .seed_scan(json!({"repositoryName": REPO, "imageDigest": RUNNING, "status": "COMPLETE",
            "completedAt": chrono::Utc::now().timestamp(), "findings": findings}));
        let finding = crate::exposure::finding(REPO, RUNNING, "CVE-2026-6060");
        let flips = |out: &Value| out["announced"].as_array().map_or(0, Vec::len);
        self.step(S, "scan-gate", "Inspector2 Finding CVE-2026-6060", &finding, |out| {
            (flips(out) == 1, format!("{} running image flipped to failing", flips(out)))
        })
        .await;
        let at = chrono::Utc::now() + chrono::Duration::minutes(15);
        self.exposure_digest(S, at, "running an image that fails policy", "CVE-2026-6060").await;

        // The team accepts the finding for a month.
        let expires = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive();
        let example = std::fs::read_to_string(crate::workspace_root().join("examples/appsec.yaml")).unwrap();
        let policy = example.replace(
            "  exceptions:\n",
            &format!(
                "  exceptions:\n    - {{id: CVE-2026-6060, package: openssl, expires: {expires}, reason: \"fix released next sprint\", ticket: SEC-6060}}\n"
            ),
        );
        // scan-gate hears each accepted policy (the template's rule): this
        // upload's is the one after those already routed.
        let _ = self.fleet.routed("scan-gate").await;
        self.upload_policy(S, &format!("policies/{REPO}/appsec.yaml"), &policy, "accepted").await;
        let accepted = self.fleet.routed("scan-gate").await.pop().unwrap_or_default();
        self.step(S, "scan-gate", "Shipgate Policy Accepted", &accepted, |out| {
            (flips(out) == 1, format!("{} running image flipped to passing", flips(out)))
        })
        .await;
        let at = at + chrono::Duration::minutes(30);
        self.exposure_digest(
            S,
            at,
            "no longer exposed",
            &format!("CVE-2026-6060 in openssl until {expires}"),
        )
        .await;
        self.finish(S, E);
    }

    /// Delivers the exposure flips on the bus to the notifier, fires its
    /// schedule at `at`, and checks the one message the owner receives.
    async fn exposure_digest(
        &mut self,
        story: &'static str,
        at: chrono::DateTime<chrono::Utc>,
        subject: &str,
        body: &str,
    ) {
        let _ = self.fleet.events().await;
        for event in self.fleet.routed("notifier").await {
            if event["detail-type"] != "Shipgate Exposure Changed" {
                continue;
            }
            self.step(story, "notifier", "Shipgate Exposure Changed", &event, |out| {
                let queued = out["queued"].as_array().map_or(0, Vec::len);
                (
                    queued == 1 && out["sent"].as_array().is_some_and(Vec::is_empty),
                    "gathered in its owner's window".into(),
                )
            })
            .await;
        }
        let flush = crate::exposure::flush_input(&self.fleet, at);
        let input = format!("schedule at {}", at.format("%H:%M:%SZ"));
        self.step(story, "notifier", &input, &flush, |out| {
            let sent = out["sent"].to_string();
            (sent.contains(subject), format!("sent {sent}"))
        })
        .await;
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        let received = crate::drain_queue(&sqs, &self.notifications_queue).await;
        let matching: Vec<&Value> =
            received.iter().filter(|m| m["Subject"].as_str().is_some_and(|s| s.contains(subject))).collect();
        let says = matching.iter().any(|m| m["Message"].as_str().is_some_and(|b| b.contains(body)));
        let to_owner = matching.iter().all(|m| m["MessageAttributes"]["owner"]["Value"] == "team-payments");
        for m in &matching {
            let severity =
                m["MessageAttributes"]["severity"]["Value"].as_str().unwrap_or_default().to_owned();
            self.report.notifications.push((m["Subject"].as_str().unwrap_or_default().to_owned(), severity));
        }
        self.verify(
            story,
            "sns",
            format!("one message to team-payments, {subject:?}, saying {body:?}"),
            matching.len() == 1 && says && to_owner,
        );
    }
}
