//! What scan-gate is invoked with, decoded once from its `source` and
//! `detail-type` into the type each names.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use shipgate_aws::{EventKind, InvalidEvent, decode};
use shipgate_core::events::{POLICY_ACCEPTED, PolicyAccepted};
use shipgate_core::triggers::{ImageScanCompleted, InspectorFinding};

#[derive(Debug, Clone)]
pub enum ScanGateEvent {
    /// A scan finished: ECR basic scanning (`aws.ecr` / `ECR Image Scan`) or
    /// Inspector enhanced scanning (`aws.inspector2` / `Inspector2 Scan`).
    Scanned(Box<EventBridgeEvent<ImageScanCompleted>>),
    /// A finding Inspector reports after the scan (a new CVE, one fixed or
    /// closed): the services running the image are judged again.
    Finding(Box<EventBridgeEvent<InspectorFinding>>),
    /// A policy became the last-known-good: every running image is judged
    /// again.
    PolicyAccepted(Box<PolicyAccepted>),
    /// The daily schedule (EventBridge Scheduler's `aws.scheduler`, or a rule
    /// schedule's `aws.events`): exceptions end by the day.
    Daily,
}

impl ScanGateEvent {
    /// Decodes `payload`; any other kind of event is an error naming it.
    pub fn decode(payload: serde_json::Value) -> Result<Self, InvalidEvent> {
        let kind = EventKind::of(&payload);
        Ok(match kind.pair() {
            ("aws.ecr", "ECR Image Scan") | ("aws.inspector2", "Inspector2 Scan") => {
                Self::Scanned(Box::new(decode(payload)?))
            }
            ("aws.inspector2", "Inspector2 Finding") => Self::Finding(Box::new(decode(payload)?)),
            ("shipgate", POLICY_ACCEPTED) => {
                let event: EventBridgeEvent<PolicyAccepted> = decode(payload)?;
                Self::PolicyAccepted(Box::new(event.detail))
            }
            ("aws.scheduler" | "aws.events", "Scheduled Event") => Self::Daily,
            _ => return Err(InvalidEvent(format!("not a scan event: {kind}"))),
        })
    }
}
