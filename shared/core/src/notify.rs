//! Notifications: what happened, turned into a message a person reads.
//!
//! Pure functions: an [`Outcome`] in, a [`Message`] out (subject, plain-text
//! body, attributes for SNS filter policies, and the key that makes it unique).
//! The notifier function decides which outcomes to send and sends each once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::events::PolicyRejected;
use crate::gate::{Decision, GateDecisionEvent, short};
use crate::hooks::{HookResultEvent, HookStatus};
use crate::scan::Verdict;
use crate::verdict::ScanVerdictEvent;

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
        rollback_id: Option<String>,
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
    /// The first success after a failure.
    Recovery,
    /// Any other success.
    Success,
    /// A single action's final state (noisy: the pipeline's state follows).
    Action,
}

impl Category {
    pub const DEFAULTS: [Category; 6] = [
        Category::Failure,
        Category::Block,
        Category::Rollback,
        Category::Policy,
        Category::Expiring,
        Category::Recovery,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.trim().to_owned())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Info => "info",
        }
    }
}

/// Where links point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub region: String,
    pub account: String,
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    /// `event_type`, `severity`, and `pipeline` / `repository` when known.
    pub attributes: BTreeMap<String, String>,
    /// Unique per outcome: the same outcome delivered again has the same key.
    pub dedupe_key: String,
    pub category: Category,
    pub severity: Severity,
    /// The console page to look at.
    pub link: String,
}

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
            Outcome::Deployment { state, .. } => match state.as_str() {
                "FAILURE" | "STOP" => Category::Rollback,
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
        })
    }
}

/// Renders an outcome as a plain-text message. `None` when the outcome is
/// not worth a message ([`Outcome::category`]).
pub fn render(outcome: &Outcome, cx: &Context) -> Option<Message> {
    let category = outcome.category()?;
    let severity = match category {
        Category::Block | Category::Rollback => Severity::Critical,
        Category::Failure => Severity::High,
        Category::Policy | Category::Expiring => Severity::Medium,
        Category::Recovery | Category::Success | Category::Action => Severity::Info,
    };
    let mut attributes = BTreeMap::new();
    let mut body = String::new();
    let (event_type, subject, link, dedupe_key);
    match outcome {
        Outcome::Pipeline { pipeline, execution_id, state, recovered } => {
            link = pipeline_link(cx, pipeline, execution_id);
            attributes.insert("pipeline".into(), pipeline.clone());
            if state == "FAILED" {
                event_type = "pipeline.failed";
                subject = format!("Pipeline {} failed", name(pipeline, 60));
                line(&mut body, &format!("The pipeline {pipeline} failed (execution {execution_id})."));
                line(&mut body, "");
                line(
                    &mut body,
                    "What to do: open the execution, find the failed action and read its summary.",
                );
                line(
                    &mut body,
                    "A Shipgate block says which policy rule stopped the release and how to fix it.",
                );
            } else if *recovered {
                event_type = "pipeline.recovered";
                subject = format!("Pipeline {} is passing again", name(pipeline, 60));
                line(
                    &mut body,
                    &format!(
                        "The pipeline {pipeline} succeeded (execution {execution_id}) after a failed run."
                    ),
                );
                line(&mut body, "");
                line(&mut body, "Nothing to do.");
            } else {
                event_type = "pipeline.succeeded";
                subject = format!("Pipeline {} succeeded", name(pipeline, 60));
                line(&mut body, &format!("The pipeline {pipeline} succeeded (execution {execution_id})."));
            }
            dedupe_key = format!("pipeline/{pipeline}/{execution_id}/{state}");
        }
        Outcome::Action { pipeline, execution_id, stage, action, state, summary } => {
            link = pipeline_link(cx, pipeline, execution_id);
            attributes.insert("pipeline".into(), pipeline.clone());
            let word = if state == "FAILED" { "failed" } else { "succeeded" };
            event_type = if state == "FAILED" { "action.failed" } else { "action.succeeded" };
            subject = format!("{} {word} in pipeline {}", name(action, 30), name(pipeline, 40));
            line(
                &mut body,
                &format!(
                    "The action {action} (stage {stage}) of pipeline {pipeline} {word} (execution {execution_id})."
                ),
            );
            if let Some(summary) = summary.as_deref().filter(|s| !s.trim().is_empty()) {
                line(&mut body, "");
                line(&mut body, &format!("It said: {summary}"));
            }
            dedupe_key = format!("action/{pipeline}/{execution_id}/{stage}/{action}/{state}");
        }
        Outcome::Deployment { deployment_id, application, group, state, rollback_id } => {
            link = format!(
                "https://{r}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={r}",
                r = cx.region
            );
            let what = match (application, group) {
                (Some(a), Some(g)) => format!("{a} ({g})"),
                (Some(a), None) => a.clone(),
                _ => deployment_id.clone(),
            };
            if state == "SUCCESS" {
                event_type = "deployment.succeeded";
                subject = format!("Deployment of {} succeeded", name(&what, 60));
                line(&mut body, &format!("Deployment {deployment_id} of {what} succeeded."));
            } else {
                event_type = if state == "STOP" { "deployment.stopped" } else { "deployment.failed" };
                let word = if state == "STOP" { "was stopped" } else { "failed" };
                subject = format!("Deployment of {} {word}; rolling back", name(&what, 50));
                line(&mut body, &format!("Deployment {deployment_id} of {what} {word}."));
                match rollback_id {
                    Some(r) => line(
                        &mut body,
                        &format!(
                            "CodeDeploy is rolling back with deployment {r}; production keeps the previous version."
                        ),
                    ),
                    None => line(&mut body, "Production traffic stays on the previous version."),
                }
                line(&mut body, "");
                line(
                    &mut body,
                    "What to do: open the deployment and read which lifecycle event failed. A Shipgate hook",
                );
                line(&mut body, "failure names the check or the missing gate decision.");
            }
            dedupe_key = format!("deployment/{deployment_id}/{state}");
        }
        Outcome::ScanVerdict(v) => {
            link = ecr_link(cx, &v.repository, &v.digest);
            attributes.insert("repository".into(), v.repository.clone());
            let image = match v.image_tags.first() {
                Some(tag) => format!("{}:{tag}", v.repository),
                None => format!("{}@{}", v.repository, short(&v.digest)),
            };
            if v.verdict == Verdict::Fail {
                event_type = "scan.failed";
                subject = format!("Image {} fails its scan policy", name(&image, 60));
                line(&mut body, &format!("The scan of {image} ({}) does not meet its policy.", v.digest));
                reasons(&mut body, "Why", &v.reasons);
                let counts: Vec<String> =
                    v.counts.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{n} {s}")).collect();
                if !counts.is_empty() {
                    line(&mut body, &format!("Counted findings: {}.", counts.join(", ")));
                }
                if let Some(key) = &v.policy_key {
                    line(&mut body, &format!("Policy: {key}."));
                }
                line(&mut body, "");
                line(
                    &mut body,
                    "What to do: update the affected packages and rebuild, or, if a finding does not apply,",
                );
                line(&mut body, "add a time-limited exception with a reason to the policy.");
            } else {
                event_type = "scan.passed";
                subject = format!("Image {} passes its scan policy", name(&image, 60));
                line(&mut body, &format!("The scan of {image} ({}) meets its policy.", v.digest));
            }
            dedupe_key = format!(
                "scan/{}/{}/{}/{}",
                v.repository,
                v.digest,
                v.scanned_at.timestamp(),
                v.verdict.as_str()
            );
        }
        Outcome::GateDecision(d) => {
            link = pipeline_link(cx, &d.pipeline, &d.execution_id);
            attributes.insert("pipeline".into(), d.pipeline.clone());
            if let Some(r) = &d.repository {
                attributes.insert("repository".into(), r.clone());
            }
            let what = d.repository.clone().unwrap_or_else(|| d.pipeline.clone());
            let env = d.environment.as_deref().map(|e| format!(" to {e}")).unwrap_or_default();
            if d.decision == Decision::Fail {
                event_type = "gate.blocked";
                subject = format!("Release of {}{env} blocked by Shipgate", name(&what, 50));
                line(
                    &mut body,
                    &format!(
                        "Shipgate stopped the release of {what}{env} in pipeline {} (execution {}).",
                        d.pipeline, d.execution_id
                    ),
                );
                if let Some(image) = &d.image {
                    line(&mut body, &format!("Image: {image}"));
                }
                reasons(&mut body, "Why", &d.reasons);
                policy_line(&mut body, d);
                line(&mut body, "");
                line(
                    &mut body,
                    "What to do: fix what is listed above and push again. Exceptions for findings that do not",
                );
                line(&mut body, "apply go in the policy, with a reason and an expiry date.");
            } else {
                event_type = "gate.passed";
                subject = format!("Release of {}{env} passed Shipgate", name(&what, 50));
                line(
                    &mut body,
                    &format!(
                        "Shipgate passed the release of {what}{env} in pipeline {} (execution {}).",
                        d.pipeline, d.execution_id
                    ),
                );
                policy_line(&mut body, d);
            }
            dedupe_key = format!("gate/{}/{:?}", d.decision_id, d.decision);
        }
        Outcome::HookResult(h) => {
            link = if h.kind == "codedeploy" {
                format!(
                    "https://{r}.console.aws.amazon.com/codesuite/codedeploy/deployments/{}?region={r}",
                    h.deployment,
                    r = cx.region
                )
            } else {
                format!("https://{r}.console.aws.amazon.com/ecs/v2/clusters?region={r}", r = cx.region)
            };
            if let Some(r) = &h.repository {
                attributes.insert("repository".into(), r.clone());
            }
            let what = h
                .application
                .clone()
                .or_else(|| h.repository.clone())
                .unwrap_or_else(|| h.deployment.clone());
            if h.status == HookStatus::Failed {
                event_type = "hook.failed";
                subject = format!("Deployment of {} stopped at {}", name(&what, 50), name(&h.hook, 30));
                line(
                    &mut body,
                    &format!(
                        "Shipgate failed the {} hook of deployment {}, so it will not take production traffic.",
                        h.hook, h.deployment
                    ),
                );
                reasons(&mut body, "Why", &h.reasons);
                line(&mut body, "");
                line(
                    &mut body,
                    "What to do: an image without a gate decision must go through the pipeline; a failed check",
                );
                line(&mut body, "means the new version is not healthy on the test listener.");
            } else {
                event_type = "hook.succeeded";
                subject = format!("Deployment of {} passed {}", name(&what, 50), name(&h.hook, 30));
                line(
                    &mut body,
                    &format!("Shipgate passed the {} hook of deployment {}.", h.hook, h.deployment),
                );
            }
            dedupe_key = format!("hook/{}/{}/{:?}", h.deployment, h.hook, h.status);
        }
        Outcome::PolicyRejected(p) => {
            link = format!(
                "https://s3.console.aws.amazon.com/s3/object/{}?region={}&prefix={}",
                p.bucket, cx.region, p.key
            );
            event_type = "policy.rejected";
            subject = format!("Policy {} rejected", name(&p.key, 70));
            line(
                &mut body,
                &format!(
                    "The policy file s3://{}/{} was rejected; the previous valid version stays in force.",
                    p.bucket, p.key
                ),
            );
            if let Some(v) = &p.version_id {
                line(&mut body, &format!("Rejected version: {v}."));
            }
            reasons(&mut body, "Errors (line:col)", &p.errors);
            line(&mut body, "");
            line(
                &mut body,
                "What to do: fix the errors (`shipgate policy check appsec.yaml` shows them locally) and upload again.",
            );
            dedupe_key = format!("policy/{}/{}", p.key, p.version_id.as_deref().unwrap_or("latest"));
        }
        Outcome::ExpiringExceptions { owner, day, exceptions } => {
            link = "https://s3.console.aws.amazon.com/s3/buckets".to_owned();
            event_type = "exceptions.expiring";
            let n = exceptions.len();
            subject = format!(
                "{n} policy exception{} of {} expire soon",
                if n == 1 { "" } else { "s" },
                name(owner, 50)
            );
            line(
                &mut body,
                &format!(
                    "These exceptions owned by {owner} expire soon; after that the findings they cover block releases:"
                ),
            );
            line(&mut body, "");
            for e in exceptions {
                let package = e.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
                let ticket = e.ticket.as_deref().map(|t| format!(", ticket {t}")).unwrap_or_default();
                let left = (e.expires - *day).num_days();
                line(
                    &mut body,
                    &format!(
                        "  - {}{package}: expires {} ({left} day{} left{ticket}), {}",
                        e.id,
                        e.expires,
                        if left == 1 { "" } else { "s" },
                        e.policy_key
                    ),
                );
            }
            line(&mut body, "");
            line(
                &mut body,
                "What to do: fix the findings, or renew the exception with a new reason and date.",
            );
            dedupe_key = format!("expiring/{owner}/{day}");
        }
    }
    line(&mut body, "");
    line(&mut body, &format!("Details: {link}"));
    attributes.insert("event_type".into(), event_type.to_owned());
    attributes.insert("severity".into(), severity.as_str().to_owned());
    attributes.retain(|_, v| !v.trim().is_empty());
    Some(Message { subject: subject_line(&subject), body, attributes, dedupe_key, category, severity, link })
}

/// The same outcome as the custom-notification JSON that Amazon Q Developer
/// in chat applications renders in Slack and Microsoft Teams.
pub fn render_chat(message: &Message) -> String {
    let description =
        message.body.lines().filter(|l| !l.starts_with("Details: ")).collect::<Vec<_>>().join("\n");
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

fn policy_line(body: &mut String, d: &GateDecisionEvent) {
    if let Some(key) = &d.policy_key {
        line(body, &format!("Policy: {key}. Decision: {}.", d.decision_id));
    }
}

fn line(body: &mut String, text: &str) {
    let _ = writeln!(body, "{text}");
}

fn reasons(body: &mut String, heading: &str, reasons: &[String]) {
    if reasons.is_empty() {
        return;
    }
    line(body, "");
    line(body, &format!("{heading}:"));
    for r in reasons.iter().take(10) {
        line(body, &format!("  - {r}"));
    }
    if reasons.len() > 10 {
        line(body, &format!("  - and {} more", reasons.len() - 10));
    }
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

fn ecr_link(cx: &Context, repository: &str, digest: &str) -> String {
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
            id: e.id.clone(),
            package: e.package.clone(),
            expires: e.expires,
            ticket: e.ticket.clone(),
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
