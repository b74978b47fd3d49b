//! What the notifier is invoked with, decoded once: the exposure schedule's
//! own input, or an EventBridge event whose `source` and `detail-type` pick
//! the type of its detail.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shipgate_aws::{EventKind, InvalidEvent, decode};
use shipgate_core::events::{EXPOSURE_CHANGED, GATE_DECISION, HOOK_RESULT, POLICY_REJECTED, SCAN_VERDICT};
use shipgate_core::exposure::ExposureChanged;
use shipgate_core::notify::{Context, Outcome};
use shipgate_core::triggers::{DeploymentStateChange, FlushExposure, PipelineStateChange};

#[derive(Debug, Clone)]
pub enum NotifierEvent {
    /// The exposure schedule's input (not an EventBridge event): send the
    /// windows that closed by its scheduled time.
    FlushExposure(FlushExposure),
    /// An EventBridge event: where it came from, and what it tells.
    Event { origin: Origin, notice: Box<Notice> },
}

/// Where an EventBridge event came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub kind: EventKind,
    pub context: Context,
}

/// What an EventBridge event tells.
#[derive(Debug, Clone)]
pub enum Notice {
    /// `CodePipeline Pipeline Execution State Change`.
    PipelineExecution(PipelineStateChange),
    /// `CodePipeline Action Execution State Change`.
    ActionExecution(PipelineStateChange),
    /// `CodeDeploy Deployment State-change Notification`.
    Deployment(DeploymentStateChange),
    /// A Shipgate event that is an outcome as it stands: a scan verdict, a
    /// gate decision, a hook result, a rejected policy.
    Shipgate(Outcome),
    /// A running image's exposure flipped: gathered into its owner's window.
    ExposureChanged(ExposureChanged),
    /// The daily schedule (Scheduler's `aws.scheduler`, or a rule schedule's
    /// `aws.events`): the exceptions about to expire.
    Daily,
    /// Anything else: nothing to tell.
    Other,
}

impl NotifierEvent {
    pub fn decode(payload: Value) -> Result<Self, InvalidEvent> {
        if payload.get("shipgate").is_some() {
            let flush: FlushExposure = decode(payload)?;
            if flush.shipgate != FlushExposure::KIND {
                return Err(InvalidEvent(format!("shipgate: unknown request {:?}", flush.shipgate)));
            }
            return Ok(Self::FlushExposure(flush));
        }
        let event: EventBridgeEvent<Value> = decode(payload)?;
        let kind = EventKind { source: event.source, detail_type: event.detail_type };
        let detail = event.detail;
        let notice = match kind.pair() {
            ("aws.codepipeline", "CodePipeline Pipeline Execution State Change") => {
                Notice::PipelineExecution(detail_of(&kind, detail)?)
            }
            ("aws.codepipeline", "CodePipeline Action Execution State Change") => {
                Notice::ActionExecution(detail_of(&kind, detail)?)
            }
            ("aws.codedeploy", "CodeDeploy Deployment State-change Notification") => {
                Notice::Deployment(detail_of(&kind, detail)?)
            }
            ("shipgate", SCAN_VERDICT) => Notice::Shipgate(Outcome::ScanVerdict(detail_of(&kind, detail)?)),
            ("shipgate", GATE_DECISION) => Notice::Shipgate(Outcome::GateDecision(detail_of(&kind, detail)?)),
            ("shipgate", HOOK_RESULT) => Notice::Shipgate(Outcome::HookResult(detail_of(&kind, detail)?)),
            ("shipgate", POLICY_REJECTED) => {
                Notice::Shipgate(Outcome::PolicyRejected(detail_of(&kind, detail)?))
            }
            ("shipgate", EXPOSURE_CHANGED) => Notice::ExposureChanged(detail_of(&kind, detail)?),
            ("aws.scheduler" | "aws.events", "Scheduled Event") => Notice::Daily,
            _ => Notice::Other,
        };
        let context = Context {
            region: event.region.unwrap_or_else(|| "us-east-1".into()),
            account: event.account.unwrap_or_default(),
        };
        Ok(Self::Event { origin: Origin { kind, context }, notice: Box::new(notice) })
    }
}

/// The detail as the type its kind names; the error says which kind.
fn detail_of<T: DeserializeOwned>(kind: &EventKind, detail: Value) -> Result<T, InvalidEvent> {
    decode(detail).map_err(|e| InvalidEvent(format!("{} detail: {}", kind.detail_type, e.0)))
}
