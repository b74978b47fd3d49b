//! The replay's story: the daily digest of expiring exceptions.

use super::*;

impl Replay<'_> {
    /// The daily digest, driven by what the template's schedule sends (its
    /// `Input`, fired now): an exception a week from its end reaches its
    /// owner once.
    pub(in crate::replay) async fn daily_digest_story(&mut self) {
        const S: &str = "daily digest";
        const E: &str = "the Scheduler's daily event tells an owner once about an exception about to expire";
        self.story(S, E);
        // The notifier runs on the wall clock; the exception ends a week from today.
        let expires = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
        let policy = format!(
            "version: 1\nowner: team-checkout\nscan:\n  exceptions:\n    - {{id: CVE-2026-7777, package: openssl, expires: {expires}, reason: not reachable, ticket: SEC-77}}\n"
        );
        self.upload_policy(S, "policies/checkout-api/appsec.yaml", &policy, "accepted").await;
        let scheduled =
            self.fleet.deployed("notifier").schedule("DailyExpiringExceptions").fire(chrono::Utc::now());
        let sent_now = |out: &Value| out["sent"].as_array().map_or(0, Vec::len);
        let out = self
            .step(S, "notifier", "Scheduler Scheduled Event (aws.scheduler)", &scheduled, |out| {
                let sent = out["sent"].to_string();
                (sent.contains("team-checkout expire soon"), format!("sent {sent}"))
            })
            .await;
        let first = sent_now(&out);
        let again = invoke(self.runtime.port, "notifier", &scheduled).await;
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        let received: Vec<Value> = crate::drain_queue(&sqs, &self.notifications_queue).await;
        let digests = received
            .iter()
            .filter(|m| m["Subject"].as_str().is_some_and(|s| s.contains("team-checkout expire soon")))
            .count();
        let names_it =
            received.iter().any(|m| m["Message"].as_str().is_some_and(|b| b.contains("CVE-2026-7777")));
        self.verify(
            S,
            "notifier",
            format!(
                "one digest for team-checkout naming CVE-2026-7777 (first run sent {first}, the second {})",
                sent_now(&again)
            ),
            digests == 1 && names_it && sent_now(&again) == 0,
        );
        self.finish(S, E);
    }
}
