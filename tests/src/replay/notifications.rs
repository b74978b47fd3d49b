//! The replay's story: blocks, rejections and the recovery reach SNS once each.

use super::*;

impl Replay<'_> {
    /// Delivers to the notifier every Shipgate event the template's rules
    /// route to it (the emulator's EventBridge matched them), then reads the
    /// topic.
    pub(in crate::replay) async fn notification_story(&mut self) {
        const S: &str = "notifications";
        const E: &str = "blocks, rejections and the recovery reach SNS once each, with filterable attributes";
        self.story(S, E);
        let events = self.fleet.routed("notifier").await;
        let _ = self.fleet.events().await;
        let mut delivered = 0;
        for event in &events {
            let detail_type = event["detail-type"].as_str().unwrap_or_default().to_owned();
            delivered += 1;
            let input = detail_type.trim_start_matches("Shipgate ").to_owned();
            self.step(S, "notifier", &input, event, |out| {
                (out.get("sent").is_some(), format!("sent {}", out["sent"]))
            })
            .await;
        }
        // A redelivery of everything sends nothing new.
        let mut repeated = 0;
        for event in &events {
            let out = invoke(self.runtime.port, "notifier", event).await;
            repeated += out["sent"].as_array().map_or(0, Vec::len);
        }
        let sqs = aws_sdk_sqs::Client::new(&self.fleet.sdk);
        for envelope in crate::drain_queue(&sqs, &self.notifications_queue).await {
            let subject = envelope["Subject"].as_str().unwrap_or_default().to_owned();
            let severity =
                envelope["MessageAttributes"]["severity"]["Value"].as_str().unwrap_or_default().to_owned();
            self.report.notifications.push((subject, severity));
        }
        let subjects: Vec<&str> = self.report.notifications.iter().map(|(s, _)| s.as_str()).collect();
        let expected = [
            "Policy policies/payments-api/appsec.yaml rejected",
            "Image payments-api:1.4.1 fails its scan policy",
            "Release of payments-api to prod blocked by Shipgate",
            "Pipeline payments failed",
            "Pipeline payments is passing again",
            "Deployment of payments-api stopped at BeforeInstall",
            "Deployment of payments-api stopped at AfterAllowTestTraffic",
            "Deployment of payments-api (payments-api-dg) failed; rolling back",
        ];
        for want in expected {
            let found = subjects.iter().filter(|s| s.contains(want)).count();
            let ok = found == 1;
            let outcome = if ok {
                format!("received once: {want}")
            } else {
                format!("UNEXPECTED: {found} messages like {want:?}")
            };
            self.report.steps.push(Step {
                story: S,
                function: "sns",
                input: "topic subscription".into(),
                outcome,
                elapsed: Duration::ZERO,
                ok,
            });
        }
        let ok = repeated == 0 && delivered > 0;
        self.report.steps.push(Step {
            story: S,
            function: "notifier",
            input: "every event again".into(),
            outcome: if ok {
                "nothing sent twice".into()
            } else {
                format!("UNEXPECTED: {repeated} duplicate messages")
            },
            elapsed: Duration::ZERO,
            ok,
        });
        self.finish(S, E);
    }
}
