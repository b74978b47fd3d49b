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
use crate::exposure::{ExposureStatus, ExposureWindow};
use crate::gate::{Decision, GateDecisionEvent};
use crate::hooks::{HookResultEvent, HookStatus};
use crate::image::short;
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
    pub severity: Severity,
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
        Category::Block | Category::Rollback => Severity::Critical,
        Category::Failure => Severity::High,
        Category::Policy | Category::Expiring => Severity::Medium,
        Category::Exposure => match outcome {
            Outcome::Exposure(w) if w.changes.iter().any(|c| c.status == ExposureStatus::Failing) => {
                Severity::Critical
            }
            _ => Severity::Info,
        },
        Category::Recovery | Category::Success | Category::Action => Severity::Info,
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
            m.link = pipeline_link(cx, pipeline, execution_id);
            m.attributes.insert("pipeline".into(), pipeline.clone());
            m.dedupe_key = format!("pipeline/{pipeline}/{execution_id}/{state}");
            if state == "FAILED" {
                m.subject = format!("Pipeline {} failed", name(pipeline, 60));
                m.headline = vec![format!("The pipeline {pipeline} failed (execution {execution_id}).")];
                m.next_step = lines(&[
                    "What to do: open the execution, find the failed action and read its summary.",
                    "A Shipgate block says which policy rule stopped the release and how to fix it.",
                ]);
                "pipeline.failed"
            } else if *recovered {
                m.subject = format!("Pipeline {} is passing again", name(pipeline, 60));
                m.headline = vec![format!(
                    "The pipeline {pipeline} succeeded (execution {execution_id}) after a failed run."
                )];
                m.next_step = lines(&["Nothing to do."]);
                "pipeline.recovered"
            } else {
                m.subject = format!("Pipeline {} succeeded", name(pipeline, 60));
                m.headline = vec![format!("The pipeline {pipeline} succeeded (execution {execution_id}).")];
                "pipeline.succeeded"
            }
        }
        Outcome::Action { pipeline, execution_id, stage, action, state, summary } => {
            m.link = pipeline_link(cx, pipeline, execution_id);
            m.attributes.insert("pipeline".into(), pipeline.clone());
            m.dedupe_key = format!("action/{pipeline}/{execution_id}/{stage}/{action}/{state}");
            let word = if state == "FAILED" { "failed" } else { "succeeded" };
            m.subject = format!("{} {word} in pipeline {}", name(action, 30), name(pipeline, 40));
            m.headline = vec![format!(
                "The action {action} (stage {stage}) of pipeline {pipeline} {word} (execution {execution_id})."
            )];
            m.quote = summary.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_owned);
            if state == "FAILED" { "action.failed" } else { "action.succeeded" }
        }
        Outcome::Deployment { deployment_id, application, group, state, rollback_id, rolls_back } => {
            m.link = codedeploy_link(cx, deployment_id);
            m.dedupe_key = format!("deployment/{deployment_id}/{state}");
            let what = match (application, group) {
                (Some(a), Some(g)) => format!("{a} ({g})"),
                (Some(a), None) => a.clone(),
                _ => deployment_id.clone(),
            };
            if let (true, Some(failed)) = (state == "SUCCESS", rolls_back) {
                m.subject = format!("Rollback of {} completed", name(&what, 60));
                m.headline = vec![
                    format!(
                        "Deployment {deployment_id} rolled {what} back after deployment {failed} failed."
                    ),
                    "Production runs the previous version again.".to_owned(),
                ];
                m.next_step = lines(&[
                    "What to do: read why the failed deployment stopped (its lifecycle events, and a Shipgate",
                    "hook failure if there is one), fix it, and release again through the pipeline.",
                ]);
                "deployment.rolled_back"
            } else if state == "SUCCESS" {
                m.subject = format!("Deployment of {} succeeded", name(&what, 60));
                m.headline = vec![format!("Deployment {deployment_id} of {what} succeeded.")];
                "deployment.succeeded"
            } else {
                let word = if state == "STOP" { "was stopped" } else { "failed" };
                m.subject = format!("Deployment of {} {word}; rolling back", name(&what, 50));
                m.headline = vec![
                    format!("Deployment {deployment_id} of {what} {word}."),
                    match rollback_id {
                        Some(r) => format!(
                            "CodeDeploy is rolling back with deployment {r}; production keeps the previous version."
                        ),
                        None => "Production traffic stays on the previous version.".to_owned(),
                    },
                ];
                m.next_step = lines(&[
                    "What to do: open the deployment and read which lifecycle event failed. A Shipgate hook",
                    "failure names the check or the missing gate decision.",
                ]);
                if state == "STOP" { "deployment.stopped" } else { "deployment.failed" }
            }
        }
        Outcome::ScanVerdict(v) => {
            m.link = ecr_link(cx, &v.repository, &v.digest);
            m.attributes.insert("repository".into(), v.repository.clone());
            m.dedupe_key = format!(
                "scan/{}/{}/{}/{}",
                v.repository,
                v.digest,
                v.scanned_at.timestamp(),
                v.verdict.as_str()
            );
            let image = match v.image_tags.first() {
                Some(tag) => format!("{}:{tag}", v.repository),
                None => format!("{}@{}", v.repository, short(&v.digest)),
            };
            if v.verdict == Verdict::Fail {
                m.subject = format!("Image {} fails its scan policy", name(&image, 60));
                m.headline = vec![format!("The scan of {image} ({}) does not meet its policy.", v.digest)];
                m.reasons = Listing::reasons("Why", &v.reasons);
                let counts: Vec<String> =
                    v.counts.iter().filter(|(_, n)| **n > 0).map(|(s, n)| format!("{n} {s}")).collect();
                if !counts.is_empty() {
                    m.notes.push(format!("Counted findings: {}.", counts.join(", ")));
                }
                if let Some(key) = &v.policy_key {
                    m.notes.push(format!("Policy: {key}."));
                }
                m.next_step = lines(&[
                    "What to do: update the affected packages and rebuild, or, if a finding does not apply,",
                    "add a time-limited exception with a reason to the policy.",
                ]);
                "scan.failed"
            } else {
                m.subject = format!("Image {} passes its scan policy", name(&image, 60));
                m.headline = vec![format!("The scan of {image} ({}) meets its policy.", v.digest)];
                "scan.passed"
            }
        }
        Outcome::GateDecision(d) => {
            m.link = pipeline_link(cx, &d.pipeline, &d.execution_id);
            m.attributes.insert("pipeline".into(), d.pipeline.clone());
            if let Some(r) = &d.repository {
                m.attributes.insert("repository".into(), r.clone());
            }
            m.dedupe_key = format!("gate/{}/{}", d.decision_id, d.decision.dedupe_word());
            if let Some(key) = &d.policy_key {
                m.notes.push(format!("Policy: {key}. Decision: {}.", d.decision_id));
            }
            let what = d.repository.clone().unwrap_or_else(|| d.pipeline.clone());
            let env = d.environment.as_deref().map(|e| format!(" to {e}")).unwrap_or_default();
            if d.decision == Decision::Fail {
                m.subject = format!("Release of {}{env} blocked by Shipgate", name(&what, 50));
                m.headline = vec![format!(
                    "Shipgate stopped the release of {what}{env} in pipeline {} (execution {}).",
                    d.pipeline, d.execution_id
                )];
                m.headline.extend(d.image.iter().map(|image| format!("Image: {image}")));
                m.reasons = Listing::reasons("Why", &d.reasons);
                m.next_step = lines(&[
                    "What to do: fix what is listed above and push again. Exceptions for findings that do not",
                    "apply go in the policy, with a reason and an expiry date.",
                ]);
                "gate.blocked"
            } else {
                m.subject = format!("Release of {}{env} passed Shipgate", name(&what, 50));
                m.headline = vec![format!(
                    "Shipgate passed the release of {what}{env} in pipeline {} (execution {}).",
                    d.pipeline, d.execution_id
                )];
                "gate.passed"
            }
        }
        Outcome::HookResult(h) => {
            m.link = if h.kind == "codedeploy" {
                codedeploy_link(cx, &h.deployment)
            } else {
                format!("https://{r}.console.aws.amazon.com/ecs/v2/clusters?region={r}", r = cx.region)
            };
            if let Some(r) = &h.repository {
                m.attributes.insert("repository".into(), r.clone());
            }
            // One message per hook execution: deploy-hooks announces only
            // the status it reported, and a hook execution is reported once.
            m.dedupe_key = if h.execution.is_empty() {
                format!("hook/{}/{}/{}", h.deployment, h.hook, h.status.dedupe_word())
            } else {
                format!("hook/{}", h.execution)
            };
            let what = h
                .application
                .clone()
                .or_else(|| h.repository.clone())
                .unwrap_or_else(|| h.deployment.clone());
            if h.status == HookStatus::Failed {
                m.subject = format!("Deployment of {} stopped at {}", name(&what, 50), name(&h.hook, 30));
                m.headline = vec![format!(
                    "Shipgate failed the {} hook of deployment {}, so it will not take production traffic.",
                    h.hook, h.deployment
                )];
                m.reasons = Listing::reasons("Why", &h.reasons);
                m.next_step = lines(&[
                    "What to do: an image without a gate decision must go through the pipeline; a failed check",
                    "means the new version is not healthy on the test listener.",
                ]);
                "hook.failed"
            } else {
                m.subject = format!("Deployment of {} passed {}", name(&what, 50), name(&h.hook, 30));
                m.headline =
                    vec![format!("Shipgate passed the {} hook of deployment {}.", h.hook, h.deployment)];
                "hook.succeeded"
            }
        }
        Outcome::PolicyRejected(p) => {
            m.link = format!(
                "https://s3.console.aws.amazon.com/s3/object/{}?region={}&prefix={}",
                p.bucket, cx.region, p.key
            );
            m.dedupe_key = format!("policy/{}/{}", p.key, p.version_id.as_deref().unwrap_or("latest"));
            m.subject = format!("Policy {} rejected", name(&p.key, 70));
            m.headline = vec![format!(
                "The policy file s3://{}/{} was rejected; the previous valid version stays in force.",
                p.bucket, p.key
            )];
            m.headline.extend(p.version_id.iter().map(|v| format!("Rejected version: {v}.")));
            m.reasons = Listing::reasons("Errors (line:col)", &p.errors);
            m.next_step = lines(&[
                "What to do: fix the errors (`shipgate policy check appsec.yaml` shows them locally) and upload again.",
            ]);
            "policy.rejected"
        }
        Outcome::ExpiringExceptions { owner, day, exceptions } => {
            m.link = "https://s3.console.aws.amazon.com/s3/buckets".to_owned();
            m.dedupe_key = format!("expiring/{owner}/{day}");
            let n = exceptions.len();
            m.subject = format!(
                "{n} policy exception{} of {} expire soon",
                if n == 1 { "" } else { "s" },
                name(owner, 50)
            );
            m.headline = vec![format!(
                "These exceptions owned by {owner} expire soon; after that the findings they cover block releases:"
            )];
            let items = exceptions
                .iter()
                .map(|e| {
                    let package = e.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
                    let ticket = e.ticket.as_deref().map(|t| format!(", ticket {t}")).unwrap_or_default();
                    let left = (e.expires - *day).num_days();
                    let days = if left == 1 { "" } else { "s" };
                    format!(
                        "{}{package}: expires {} ({left} day{days} left{ticket}), {}",
                        e.id, e.expires, e.policy_key
                    )
                })
                .collect();
            m.reasons = Some(Listing { heading: None, items, limit: None });
            m.next_step =
                lines(&["What to do: fix the findings, or renew the exception with a new reason and date."]);
            "exceptions.expiring"
        }
        Outcome::Exposure(window) => exposure(&mut m, cx, window),
    };
    m.subject = subject_line(&m.subject);
    m.attributes.insert("event_type".into(), event_type.to_owned());
    m.attributes.insert("severity".into(), severity.as_str().to_owned());
    m.attributes.retain(|_, v| !v.trim().is_empty());
    Some(m)
}

/// One owner's window of exposure flips: one line per image, failing first.
fn exposure(m: &mut Message, cx: &Context, window: &ExposureWindow) -> &'static str {
    let latest = window.latest();
    let failing = latest.iter().filter(|c| c.status == ExposureStatus::Failing).count();
    let passing = latest.len() - failing;
    let owner = &window.owner;
    m.dedupe_key = format!("exposure/{owner}/{}", window.start.timestamp());
    m.attributes.insert("owner".into(), owner.clone());
    let services = |n: usize| if n == 1 { "1 service".to_owned() } else { format!("{n} services") };
    m.subject = match (failing, passing) {
        (0, n) => format!("{}: {} no longer exposed", name(owner, 40), services(n)),
        (n, 0) => format!("{}: {} running an image that fails policy", name(owner, 40), services(n)),
        (f, p) => format!("{}: {} exposed, {} no longer", name(owner, 40), services(f), p),
    };
    if let [only] = latest.as_slice() {
        // The image names its registry's account and region; the schedule
        // that sends the digest names neither.
        let at = crate::image::EcrImage::parse(&only.image)
            .map(|i| Context { region: i.region, account: i.registry_id })
            .unwrap_or_else(|| cx.clone());
        m.link = ecr_link(&at, &only.repository, &only.digest);
        m.attributes.insert("repository".into(), only.repository.clone());
    } else {
        m.link = format!("https://{r}.console.aws.amazon.com/ecs/v2/clusters?region={r}", r = cx.region);
    }
    m.headline = vec![format!(
        "Running services owned by {owner} changed against today's policy between {} and {} UTC.",
        window.start.format("%Y-%m-%d %H:%M"),
        window.end.format("%H:%M")
    )];
    let items = latest
        .iter()
        .map(|c| {
            let place = format!(
                "{} in {} runs {}@{}",
                c.service,
                c.environment.as_deref().unwrap_or("the base environment"),
                c.repository,
                short(&c.digest)
            );
            match c.status {
                ExposureStatus::Failing => {
                    let why = c.blocking.first().map(String::as_str).unwrap_or("it fails the policy");
                    let more = match c.blocking.len() {
                        0 | 1 => String::new(),
                        n => format!(" (and {} more)", n - 1),
                    };
                    format!("EXPOSED: {place}: {why}{more}")
                }
                ExposureStatus::Passing if c.accepted.is_empty() => format!("passing again: {place}"),
                ExposureStatus::Passing => {
                    let until: Vec<String> = c
                        .accepted
                        .iter()
                        .map(|a| {
                            let package =
                                a.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
                            format!("{}{package} until {}", a.id, a.expires)
                        })
                        .collect();
                    format!("accepted: {place}: by exception, {}", until.join(", "))
                }
            }
        })
        .collect();
    m.reasons = Some(Listing { heading: None, items, limit: Some(50) });
    if failing > 0 {
        m.next_step = lines(&[
            "What to do: rebuild the exposed images with fixed packages and release them through the",
            "pipeline; if a finding does not apply, add an exception with a reason and an expiry date",
            "to the policy. `shipgate exposure` lists every exposed service.",
        ]);
    } else {
        m.next_step =
            lines(&["Accepted findings block again when their exception expires; fix them before then."]);
    }
    if failing > 0 { "exposure.exposed" } else { "exposure.cleared" }
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
