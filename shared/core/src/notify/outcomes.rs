//! One function per outcome: what its message says. Each fills the
//! message's text, link, attributes and dedupe key, and returns the
//! outcome's `event_type`.

use chrono::NaiveDate;

use super::{Context, Expiring, Listing, Message, codedeploy_link, ecr_link, lines, name, pipeline_link};
use crate::events::PolicyRejected;
use crate::exposure::{ExposureStatus, ExposureWindow};
use crate::gate::{Decision, GateDecisionEvent};
use crate::hooks::{HookResultEvent, HookStatus};
use crate::scan::Verdict;
use crate::verdict::ScanVerdictEvent;

/// A pipeline execution that reached a final state.
pub(super) fn pipeline_outcome(
    m: &mut Message,
    cx: &Context,
    pipeline: &str,
    execution_id: &str,
    state: &str,
    recovered: bool,
) -> &'static str {
    m.link = pipeline_link(cx, pipeline, execution_id);
    m.attributes.insert("pipeline".into(), pipeline.to_owned());
    m.dedupe_key = format!("pipeline/{pipeline}/{execution_id}/{state}");
    if state == "FAILED" {
        m.subject = format!("Pipeline {} failed", name(pipeline, 60));
        m.headline = vec![format!("The pipeline {pipeline} failed (execution {execution_id}).")];
        m.next_step = lines(&[
            "What to do: open the execution, find the failed action and read its summary.",
            "A Shipgate block says which policy rule stopped the release and how to fix it.",
        ]);
        "pipeline.failed"
    } else if recovered {
        m.subject = format!("Pipeline {} is passing again", name(pipeline, 60));
        m.headline =
            vec![format!("The pipeline {pipeline} succeeded (execution {execution_id}) after a failed run.")];
        m.next_step = lines(&["Nothing to do."]);
        "pipeline.recovered"
    } else {
        m.subject = format!("Pipeline {} succeeded", name(pipeline, 60));
        m.headline = vec![format!("The pipeline {pipeline} succeeded (execution {execution_id}).")];
        "pipeline.succeeded"
    }
}

/// An action that reached a final state.
// One argument per field of the outcome's variant, destructured by `render`.
#[allow(clippy::too_many_arguments)]
pub(super) fn action_outcome(
    m: &mut Message,
    cx: &Context,
    pipeline: &str,
    execution_id: &str,
    stage: &str,
    action: &str,
    state: &str,
    summary: Option<&str>,
) -> &'static str {
    m.link = pipeline_link(cx, pipeline, execution_id);
    m.attributes.insert("pipeline".into(), pipeline.to_owned());
    m.dedupe_key = format!("action/{pipeline}/{execution_id}/{stage}/{action}/{state}");
    let word = if state == "FAILED" { "failed" } else { "succeeded" };
    m.subject = format!("{} {word} in pipeline {}", name(action, 30), name(pipeline, 40));
    m.headline = vec![format!(
        "The action {action} (stage {stage}) of pipeline {pipeline} {word} (execution {execution_id})."
    )];
    m.quote = summary.filter(|s| !s.trim().is_empty()).map(str::to_owned);
    if state == "FAILED" { "action.failed" } else { "action.succeeded" }
}

/// A CodeDeploy deployment's state change.
// One argument per field of the outcome's variant, destructured by `render`.
#[allow(clippy::too_many_arguments)]
pub(super) fn deployment_outcome(
    m: &mut Message,
    cx: &Context,
    deployment_id: &str,
    application: Option<&str>,
    group: Option<&str>,
    state: &str,
    rollback_id: Option<&str>,
    rolls_back: Option<&str>,
) -> &'static str {
    m.link = codedeploy_link(cx, deployment_id);
    m.dedupe_key = format!("deployment/{deployment_id}/{state}");
    let what = match (application, group) {
        (Some(a), Some(g)) => format!("{a} ({g})"),
        (Some(a), None) => a.to_owned(),
        _ => deployment_id.to_owned(),
    };
    if let (true, Some(failed)) = (state == "SUCCESS", rolls_back) {
        m.subject = format!("Rollback of {} completed", name(&what, 60));
        m.headline = vec![
            format!("Deployment {deployment_id} rolled {what} back after deployment {failed} failed."),
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

/// A scan verdict.
pub(super) fn scan_verdict(m: &mut Message, cx: &Context, v: &ScanVerdictEvent) -> &'static str {
    m.link = ecr_link(cx, &v.repository, &v.digest);
    m.attributes.insert("repository".into(), v.repository.clone());
    m.dedupe_key =
        format!("scan/{}/{}/{}/{}", v.repository, v.digest, v.scanned_at.timestamp(), v.verdict.as_str());
    let image = match v.image_tags.first() {
        Some(tag) => format!("{}:{tag}", v.repository),
        None => format!("{}@{}", v.repository, v.digest.short()),
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

/// A release gate's decision.
pub(super) fn gate_decision(m: &mut Message, cx: &Context, d: &GateDecisionEvent) -> &'static str {
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

/// A deployment hook's result.
pub(super) fn hook_result(m: &mut Message, cx: &Context, h: &HookResultEvent) -> &'static str {
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
    let what = h.application.clone().or_else(|| h.repository.clone()).unwrap_or_else(|| h.deployment.clone());
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
        m.headline = vec![format!("Shipgate passed the {} hook of deployment {}.", h.hook, h.deployment)];
        "hook.succeeded"
    }
}

/// A policy upload that failed validation.
pub(super) fn policy_rejected(m: &mut Message, cx: &Context, p: &PolicyRejected) -> &'static str {
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

/// One owner's exceptions about to expire.
pub(super) fn expiring(
    m: &mut Message,
    owner: &str,
    day: NaiveDate,
    exceptions: &[Expiring],
) -> &'static str {
    m.link = "https://s3.console.aws.amazon.com/s3/buckets".to_owned();
    m.dedupe_key = format!("expiring/{owner}/{day}");
    let n = exceptions.len();
    m.subject =
        format!("{n} policy exception{} of {} expire soon", if n == 1 { "" } else { "s" }, name(owner, 50));
    m.headline = vec![format!(
        "These exceptions owned by {owner} expire soon; after that the findings they cover block releases:"
    )];
    let items = exceptions
        .iter()
        .map(|e| {
            let package = e.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
            let ticket = e.ticket.as_deref().map(|t| format!(", ticket {t}")).unwrap_or_default();
            let left = (e.expires - day).num_days();
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

/// One owner's window of exposure flips: one line per image, failing first.
pub(super) fn exposure(m: &mut Message, cx: &Context, window: &ExposureWindow) -> &'static str {
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
                c.digest.short()
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
