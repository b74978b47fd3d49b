//! Notifications: what happened, turned into a message a person reads.
//!
//! Pure functions: an [`Outcome`] in, a [`Message`] out (subject, plain-text
//! body, attributes for SNS filter policies, and the key that makes it unique).
//! The notifier function decides which outcomes to send and sends each once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::ImageDigest;
use crate::events::PolicyRejected;
use crate::exposure::{ExposureStatus, ExposureWindow};
use crate::gate::{Decision, GateDecisionEvent};
use crate::hooks::{HookResultEvent, HookStatus};
use crate::scan::Verdict;
use crate::verdict::ScanVerdictEvent;

mod outcomes;

use outcomes::{
    action_outcome, deployment_outcome, expiring, exposure, gate_decision, hook_result, pipeline_outcome,
    policy_rejected, scan_verdict,
};

/// SNS subjects must be ASCII, without line breaks, and under 100 characters.
pub const MAX_SUBJECT: usize = 99;

/// Something that happened, worth telling someone about.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A pipeline execution reached a final state.
    Pipeline {
        pipeline: String,
        execution_id: String,
        state: String,
        recovered: bool,
    },
    /// An action in a pipeline reached a final state.
    Action {
        pipeline: String,
        execution_id: String,
        stage: String,
        action: String,
        state: String,
        summary: Option<String>,
    },
    /// A CodeDeploy deployment changed state.
    Deployment {
        deployment_id: String,
        application: Option<String>,
        group: Option<String>,
        state: String,
        /// The rollback deployment this one's failure started, if any.
        rollback_id: Option<String>,
        /// The deployment this one rolled back, when it is a rollback.
        rolls_back: Option<String>,
    },
    ScanVerdict(ScanVerdictEvent),
    GateDecision(GateDecisionEvent),
    HookResult(HookResultEvent),
    PolicyRejected(PolicyRejected),
    /// The daily digest of exceptions about to expire, for one owner.
    ExpiringExceptions {
        owner: String,
        day: NaiveDate,
        exceptions: Vec<Expiring>,
    },
    /// Running images that began or stopped failing today's policy, for one
    /// owner in one window.
    Exposure(ExposureWindow),
}

/// One exception close to its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiring {
    pub policy_key: String,
    pub id: String,
    pub package: Option<String>,
    pub expires: NaiveDate,
    pub ticket: Option<String>,
}

/// Which kind of outcome this is, for choosing what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A pipeline failed.
    Failure,
    /// Shipgate stopped something: a gate, a scan, a hook.
    Block,
    /// A deployment failed or was stopped, so CodeDeploy rolls back.
    Rollback,
    /// A policy file was rejected.
    Policy,
    /// Exceptions are about to expire.
    Expiring,
    /// Running images began (or stopped) failing today's policy.
    Exposure,
    /// The first success after a failure.
    Recovery,
    /// Any other success.
    Success,
    /// A single action's final state (noisy: the pipeline's state follows).
    Action,
}

impl Category {
    pub const DEFAULTS: [Category; 7] = [
        Category::Failure,
        Category::Block,
        Category::Rollback,
        Category::Policy,
        Category::Expiring,
        Category::Exposure,
        Category::Recovery,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.trim().to_owned())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Critical,
    High,
    Medium,
    Info,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Critical => "critical",
            Urgency::High => "high",
            Urgency::Medium => "medium",
            Urgency::Info => "info",
        }
    }
}

/// Where links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub region: String,
    pub account: String,
}

/// A notification as data: what happened, why, what to do next and where
/// to look. Renderers turn it into email text ([`render_email`]) or the chat
/// JSON ([`render_chat`]); a new format is one more renderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    /// What happened, a sentence (or a fact about it) a line.
    pub headline: Vec<String>,
    /// What the AWS resource itself said (an action's summary).
    pub quote: Option<String>,
    /// Why, when there is a reason to give.
    pub reasons: Option<Listing>,
    /// Facts that follow the reasons: counts, the policy and decision.
    pub notes: Vec<String>,
    /// What the reader should do; empty when nothing.
    pub next_step: Vec<String>,
    /// The console page to look at.
    pub link: String,
    /// `event_type`, `severity`, and `pipeline` / `repository` when known.
    pub attributes: BTreeMap<String, String>,
    /// Unique per outcome: the same outcome delivered again has the same key.
    pub dedupe_key: String,
    pub category: Category,
    pub severity: Urgency,
}

/// A list under a heading, shown up to `limit` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `Why`, `Errors (line:col)`; `None` when the headline introduces it.
    pub heading: Option<String>,
    pub items: Vec<String>,
    pub limit: Option<usize>,
}

impl Listing {
    /// The reasons for an outcome: the top ten are shown.
    fn reasons(heading: &str, items: &[String]) -> Option<Self> {
        (!items.is_empty()).then(|| Listing {
            heading: Some(heading.to_owned()),
            items: items.to_vec(),
            limit: Some(REASONS_SHOWN),
        })
    }

    /// The items shown, and how many more there are.
    fn shown(&self) -> (&[String], usize) {
        let limit = self.limit.unwrap_or(self.items.len()).min(self.items.len());
        (&self.items[..limit], self.items.len() - limit)
    }
}

const REASONS_SHOWN: usize = 10;

impl Outcome {
    /// `None` for states that are not worth a message at all (started,
    /// in progress, superseded, pending verdicts).
    pub fn category(&self) -> Option<Category> {
        Some(match self {
            Outcome::Pipeline { state, recovered, .. } => match state.as_str() {
                "FAILED" => Category::Failure,
                "SUCCEEDED" if *recovered => Category::Recovery,
                "SUCCEEDED" => Category::Success,
                _ => return None,
            },
            Outcome::Action { state, .. } => match state.as_str() {
                "FAILED" | "SUCCEEDED" => Category::Action,
                _ => return None,
            },
            Outcome::Deployment { state, rolls_back, .. } => match state.as_str() {
                "FAILURE" | "STOP" => Category::Rollback,
                "SUCCESS" if rolls_back.is_some() => Category::Rollback,
                "SUCCESS" => Category::Success,
                _ => return None,
            },
            Outcome::ScanVerdict(v) => match v.verdict {
                Verdict::Fail => Category::Block,
                Verdict::Pass => Category::Success,
                Verdict::Pending => return None,
            },
            Outcome::GateDecision(d) => match d.decision {
                Decision::Fail => Category::Block,
                Decision::Pass => Category::Success,
                Decision::Wait => return None,
            },
            Outcome::HookResult(h) => match h.status {
                HookStatus::Failed => Category::Block,
                HookStatus::Succeeded => Category::Success,
                HookStatus::InProgress => return None,
            },
            Outcome::PolicyRejected(_) => Category::Policy,
            Outcome::ExpiringExceptions { exceptions, .. } if exceptions.is_empty() => return None,
            Outcome::ExpiringExceptions { .. } => Category::Expiring,
            Outcome::Exposure(window) if window.changes.is_empty() => return None,
            Outcome::Exposure(_) => Category::Exposure,
        })
    }
}

/// Composes the message for an outcome. `None` when the outcome is not
/// worth a message ([`Outcome::category`]).
pub fn render(outcome: &Outcome, cx: &Context) -> Option<Message> {
    let category = outcome.category()?;
    let severity = match category {
        Category::Block | Category::Rollback => Urgency::Critical,
        Category::Failure => Urgency::High,
        Category::Policy | Category::Expiring => Urgency::Medium,
        Category::Exposure => match outcome {
            Outcome::Exposure(w) if w.changes.iter().any(|c| c.status == ExposureStatus::Failing) => {
                Urgency::Critical
            }
            _ => Urgency::Info,
        },
        Category::Recovery | Category::Success | Category::Action => Urgency::Info,
    };
    let mut m = Message {
        subject: String::new(),
        headline: Vec::new(),
        quote: None,
        reasons: None,
        notes: Vec::new(),
        next_step: Vec::new(),
        link: String::new(),
        attributes: BTreeMap::new(),
        dedupe_key: String::new(),
        category,
        severity,
    };
    let event_type = match outcome {
        Outcome::Pipeline { pipeline, execution_id, state, recovered } => {
            pipeline_outcome(&mut m, cx, pipeline, execution_id, state, *recovered)
        }
        Outcome::Action { pipeline, execution_id, stage, action, state, summary } => {
            action_outcome(&mut m, cx, pipeline, execution_id, stage, action, state, summary.as_deref())
        }
        Outcome::Deployment { deployment_id, application, group, state, rollback_id, rolls_back } => {
            deployment_outcome(
                &mut m,
                cx,
                deployment_id,
                application.as_deref(),
                group.as_deref(),
                state,
                rollback_id.as_deref(),
                rolls_back.as_deref(),
            )
        }
        Outcome::ScanVerdict(v) => scan_verdict(&mut m, cx, v),
        Outcome::GateDecision(d) => gate_decision(&mut m, cx, d),
        Outcome::HookResult(h) => hook_result(&mut m, cx, h),
        Outcome::PolicyRejected(p) => policy_rejected(&mut m, cx, p),
        Outcome::ExpiringExceptions { owner, day, exceptions } => expiring(&mut m, owner, *day, exceptions),
        Outcome::Exposure(window) => exposure(&mut m, cx, window),
    };
    m.subject = subject_line(&m.subject);
    m.attributes.insert("event_type".into(), event_type.to_owned());
    m.attributes.insert("severity".into(), severity.as_str().to_owned());
    m.attributes.retain(|_, v| !v.trim().is_empty());
    Some(m)
}

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|l| (*l).to_owned()).collect()
}

/// The message as the plain-text body of an email: its prose, then the link.
pub fn render_email(message: &Message) -> String {
    format!("{}\nDetails: {}\n", prose(message), message.link)
}

/// What happened, what the resource said, why, the facts and what to do, as
/// plain text: every format's description.
fn prose(message: &Message) -> String {
    let mut body = String::new();
    let mut line = |text: &str| {
        let _ = writeln!(body, "{text}");
    };
    message.headline.iter().for_each(|l| line(l));
    if let Some(quote) = &message.quote {
        line("");
        line(&format!("It said: {quote}"));
    }
    if let Some(listing) = &message.reasons {
        line("");
        if let Some(heading) = &listing.heading {
            line(&format!("{heading}:"));
        }
        let (shown, more) = listing.shown();
        shown.iter().for_each(|item| line(&format!("  - {item}")));
        if more > 0 {
            line(&format!("  - and {more} more"));
        }
    }
    message.notes.iter().for_each(|l| line(l));
    if !message.next_step.is_empty() {
        line("");
        message.next_step.iter().for_each(|l| line(l));
    }
    body
}

/// The same message as the custom-notification JSON that Amazon Q Developer
/// in chat applications renders in Slack and Microsoft Teams.
pub fn render_chat(message: &Message) -> String {
    // The link is a button in chat, not a line of text.
    let description = prose(message);
    let keywords: Vec<&String> = [message.attributes.get("event_type"), message.attributes.get("severity")]
        .into_iter()
        .flatten()
        .collect();
    let document = serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "id": message.dedupe_key,
        "content": {
            "textType": "client-markdown",
            "title": message.subject,
            "description": description.trim(),
            "nextSteps": [format!("<{}|Open in the AWS console>", message.link)],
            "keywords": keywords,
        },
        "metadata": {
            "summary": message.subject,
            "eventType": message.attributes.get("event_type"),
            "enableCustomActions": false,
        },
    });
    document.to_string()
}

/// A name shortened to `max` characters, keeping its start and its end
/// (`payments-...-service`), which carry most of the meaning.
pub fn name(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    let keep = max.saturating_sub(3);
    let head = keep.div_ceil(2);
    let tail = keep - head;
    format!(
        "{}...{}",
        chars[..head].iter().collect::<String>(),
        chars[chars.len() - tail..].iter().collect::<String>()
    )
}

/// `[Shipgate] ` + subject, ASCII only, one line, at most [`MAX_SUBJECT`].
fn subject_line(subject: &str) -> String {
    let ascii: String =
        subject.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    let full = format!("[Shipgate] {ascii}");
    if full.len() <= MAX_SUBJECT { full } else { format!("{}...", &full[..MAX_SUBJECT - 3]) }
}

fn pipeline_link(cx: &Context, pipeline: &str, execution_id: &str) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{pipeline}/executions/{execution_id}/timeline?region={r}",
        r = cx.region
    )
}

fn codedeploy_link(cx: &Context, deployment_id: &str) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={r}",
        r = cx.region
    )
}

fn ecr_link(cx: &Context, repository: &str, digest: &ImageDigest) -> String {
    format!(
        "https://{r}.console.aws.amazon.com/ecr/repositories/private/{}/{repository}/_/image/{digest}/details?region={r}",
        cx.account,
        r = cx.region
    )
}

/// Exceptions of `policy` that are in force and end within its warning
/// window, as of `now`.
pub fn expiring_exceptions(
    policy_key: &str,
    policy: &crate::policy::Policy,
    now: DateTime<Utc>,
) -> Vec<Expiring> {
    let window = policy.notifications.exception_expiry_warning.as_chrono();
    policy
        .scan
        .exceptions
        .iter()
        .filter(|e| !e.is_expired(now) && e.expired_from() - now <= window)
        .map(|e| Expiring {
            policy_key: policy_key.to_owned(),
            id: e.id.to_string(),
            package: e.package.as_deref().map(str::to_owned),
            expires: e.expires,
            ticket: e.ticket.as_deref().map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_start_and_end() {
        assert_eq!(name("payments-api", 20), "payments-api");
        let long = "team-platform-payments-settlement-reconciliation-service";
        let short = name(long, 30);
        assert_eq!(short.chars().count(), 30);
        assert!(short.starts_with("team-platform-") && short.ends_with("-service"), "{short}");
    }

    #[test]
    fn subjects_are_ascii_and_short() {
        let s = subject_line(&format!("Pipeline {} failed — badly", "x".repeat(200)));
        assert!(s.len() <= MAX_SUBJECT && s.is_ascii());
    }

    #[test]
    fn categories_parse_from_configuration_words() {
        assert_eq!(Category::parse("block"), Some(Category::Block));
        assert_eq!(Category::parse(" recovery "), Some(Category::Recovery));
        assert_eq!(Category::parse("everything"), None);
    }
}
