//! The checks every deployment hook runs, under today's policy for the
//! hook's environment: provenance (each image's passing gate decision, for
//! every image its platform may pull), the task definition's rules and each
//! image's findings as they are now (what passed once may fail today, and a
//! console deployment may reuse a gated digest in another task definition),
//! then the policy's HTTP checks against the test listener.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shipgate_aws::AwsError;
use shipgate_aws::inspector::judge_now;
use shipgate_aws::policies::{image_policy, policy_scope};
use shipgate_core::digest::{Digest, ImageDigest};
use shipgate_core::gate::{Decision, DecisionRecord};
use shipgate_core::hooks::{HookStatus, Provenance, hook_matches, provenance_key};
use shipgate_core::image::{EcrImage, parse_image, pin};
use shipgate_core::policy::{HttpCheck, Policy};
use shipgate_core::rules::{self, TASK_LEVEL, TaskRule, image_platform};
use shipgate_core::scan::{Verdict, unscannable};
use shipgate_core::taskdef::TaskDefinition;

use crate::{Deps, HookOutcome, TEST_LISTENER_VAR};

/// Why the image a container runs could not be told.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("ECR has no image {repository}@{digest}")]
    Missing { repository: String, digest: Digest },
    /// The image does not run on the task's platform.
    #[error("{message} ({rule})")]
    Platform { message: String, rule: TaskRule },
}

/// Provenance, today's judgement and the HTTP checks for the task definition
/// being deployed. `resolved` holds the digests ECS resolved container
/// images to (ECS native service revisions): those are what runs, whatever
/// the image string says.
pub(crate) async fn check_task_definition(
    deps: &Deps,
    hook: &str,
    task_definition: &str,
    resolved: &BTreeMap<String, Digest>,
) -> HookOutcome {
    let now = Utc::now();
    let mut td = match deps.ecs.describe_task_definition(task_definition).await {
        Ok(td) => td,
        Err(e) => return HookOutcome::failed(hook, e.to_string()),
    };
    // A digest ECS resolved is what the container runs: its rules
    // (`image_digest`) are judged on that.
    for c in &mut td.container_definitions {
        if let Some(digest) = resolved.get(&c.name) {
            c.image = pin(c.image.trim(), digest);
        }
    }
    let images: Vec<String> = td.container_definitions.iter().map(|c| c.image.trim().to_owned()).collect();
    // (container, image as written, the digest it runs as)
    let running: Vec<(String, String, Option<String>)> = td
        .container_definitions
        .iter()
        .map(|c| {
            let image = c.image.trim().to_owned();
            let digest = resolved
                .get(&c.name)
                .map(ToString::to_string)
                .or_else(|| parse_image(&image).digest.map(str::to_owned));
            (c.name.clone(), image, digest)
        })
        .collect();
    let digests: Vec<String> = running.iter().filter_map(|(_, _, d)| d.clone()).collect();
    let repository = images.iter().find_map(|i| EcrImage::parse(i)).map(|i| i.repository);
    let mut outcome = HookOutcome {
        digests: digests.clone(),
        repository: repository.clone(),
        ..HookOutcome::failed(hook, "")
    };
    outcome.reasons.clear();

    if repository.is_none() {
        outcome
            .reasons
            .push(format!("task definition {task_definition} has no ECR image to find a policy for"));
        return outcome;
    }
    // Each image is judged by its own repository's policy (an image from
    // outside ECR by the default policy), so one lenient repository cannot
    // waive provenance for the others.
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for (container, image, digest) in &running {
        let scope = policy_scope(image);
        if !policies.contains_key(&scope) {
            match image_policy(&deps.bucket, image, deps.environment.as_deref()).await {
                Ok(found) => {
                    outcome.owner = outcome.owner.take().or(found.owner);
                    policies.insert(scope.clone(), found.policy);
                }
                Err(reason) => {
                    outcome.reasons.push(reason.to_string());
                    return outcome;
                }
            }
        }
        let policy = &policies[&scope];
        let Some(digest) = digest.as_deref().and_then(|d| Digest::parse(d).ok()) else {
            if policy.deploy.require_gate_decision {
                outcome.reasons.push(format!(
                    "image {image} is not pinned by digest, so its gate decision cannot be checked"
                ));
            } else if policy.scan.required {
                outcome
                    .reasons
                    .push(format!("image {image} is not pinned by digest, so its findings cannot be judged"));
            }
            continue;
        };
        // What the task runs: for an image index, the image each host of
        // the task's platform pulls.
        let runs = match image_that_runs(deps, &td, container, image, &digest).await {
            Ok(runs) => runs,
            Err(reason) => {
                outcome.reasons.push(reason.to_string());
                continue;
            }
        };
        if policy.deploy.require_gate_decision {
            // Each image that may run must have passed the gate itself (a
            // pass for arm64 opens nothing for amd64).
            for child in &runs {
                match gate_decision(deps, child).await {
                    Ok(true) => {}
                    Ok(false) if *child != digest => outcome.reasons.push(format!(
                        "image {} runs {} on a host of this task's platform, which has no passing release-gate decision (was the index gated for another platform?)",
                        digest.short(),
                        child.short()
                    )),
                    Ok(false) => outcome.reasons.push(format!(
                        "image {} has no passing release-gate decision (was it deployed without the pipeline?)",
                        digest.short()
                    )),
                    Err(e) => outcome.reasons.push(e.to_string()),
                }
            }
        }
        outcome.reasons.extend(judge_findings(deps, policy, image, &runs, now).await);
    }
    outcome.reasons.extend(task_definition_violations(&td, &policies));
    // An ungated or failing image is stopped before any traffic reaches it.
    if !outcome.reasons.is_empty() {
        return outcome;
    }
    // The checks every image's policy asks for, each once.
    let mut checks: Vec<HttpCheck> = Vec::new();
    for policy in policies.values() {
        for check in &policy.deploy.checks {
            if !checks.contains(check) {
                checks.push(check.clone());
            }
        }
    }
    outcome.reasons.extend(run_checks(deps, &checks, hook).await);
    if outcome.reasons.is_empty() {
        outcome.status = HookStatus::Succeeded;
    }
    outcome
}

/// Why each image `image` may run fails `policy` today, judged from its
/// current findings as release-gate judges them (`judge_now`).
async fn judge_findings(
    deps: &Deps,
    policy: &Policy,
    image: &str,
    runs: &[ImageDigest],
    now: DateTime<Utc>,
) -> Vec<String> {
    let Some(ecr) = EcrImage::parse(image) else {
        let verdict = unscannable(policy, format!("image {image} is not in ECR, so it has no scan"));
        return verdict.violations.into_iter().map(|v| v.message).collect();
    };
    let mut reasons = Vec::new();
    for child in runs {
        let judged = judge_now(
            &deps.ecr,
            &deps.inspector,
            policy,
            Some(&ecr.registry_id),
            &ecr.repository,
            child,
            now,
        );
        match judged.await {
            Err(e) => reasons.push(e.to_string()),
            Ok(v) => {
                match v.verdict {
                    Verdict::Pass => {}
                    Verdict::Fail => reasons.extend(v.violations.iter().map(|x| {
                        format!("today's scan of {}@{}: {}", ecr.repository, child.short(), x.message)
                    })),
                    Verdict::Pending if policy.scan.required => {
                        let status = if v.status.is_empty() { "not started" } else { v.status.as_str() };
                        reasons.push(format!(
                            "the scan of {}@{} is {status}, so its findings cannot be judged",
                            ecr.repository,
                            child.short()
                        ));
                    }
                    Verdict::Pending => {}
                }
            }
        }
    }
    reasons
}

/// The task definition's rules under today's policies, as release-gate
/// applies them: each container's settings by its own image's policy, the
/// task's (`host_namespaces`) by every one of them.
fn task_definition_violations(td: &TaskDefinition, policies: &BTreeMap<String, Policy>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut reasons = Vec::new();
    for (scope, policy) in policies {
        for v in rules::check_task_definition(policy, td) {
            let own = v.container == TASK_LEVEL
                || td
                    .container_definitions
                    .iter()
                    .any(|c| c.name == v.container && policy_scope(c.image.trim()) == *scope);
            let reason = format!("{} ({}): {}", v.rule, v.container, v.message);
            if own && seen.insert(reason.clone()) {
                reasons.push(reason);
            }
        }
    }
    reasons
}

/// The digests a container of `td` may run for `digest`: the image of an
/// ECR image index that each host of the task's `runtimePlatform` pulls, or
/// the image itself (after its config says it runs there); images outside
/// ECR as they are. `Err` says why the image cannot run or be read.
pub(crate) async fn image_that_runs(
    deps: &Deps,
    td: &TaskDefinition,
    container: &str,
    image: &str,
    digest: &Digest,
) -> Result<Vec<ImageDigest>, ImageError> {
    let Some(ecr) = EcrImage::parse(image) else {
        return Ok(vec![ImageDigest::assumed(digest.clone())]);
    };
    let manifest = deps
        .ecr
        .get_manifest(&deps.http, Some(&ecr.registry_id), &ecr.repository, digest)
        .await?
        .ok_or_else(|| ImageError::Missing { repository: ecr.repository.clone(), digest: digest.clone() })?;
    image_platform(td, container, image, digest, &manifest)
        .map_err(|v| ImageError::Platform { message: v.message, rule: v.rule })
}

/// True when the digest has a passing decision on record for this hook's
/// environment (the decision's own environment must be this one).
async fn gate_decision(deps: &Deps, digest: &ImageDigest) -> Result<bool, AwsError> {
    let key = provenance_key(digest.digest(), deps.environment.as_deref());
    let Some(provenance) = deps.bucket.get_json::<Provenance>(&key).await? else {
        return Ok(false);
    };
    let record = deps.bucket.get_json::<DecisionRecord>(&provenance.decision_key).await?;
    Ok(record.is_some_and(|r| {
        r.decision == Decision::Pass
            && r.digests.contains_key(digest.as_str())
            && r.environment == deps.environment
    }))
}

/// Runs the checks due at `hook`, returning why any failed.
async fn run_checks(deps: &Deps, checks: &[HttpCheck], hook: &str) -> Vec<String> {
    let due: Vec<_> = checks.iter().filter(|c| hook_matches(&c.hook, hook)).collect();
    if due.is_empty() {
        return Vec::new();
    }
    let Some(probe) = &deps.probe else {
        return vec![format!(
            "{} check(s) are due at {hook} but {TEST_LISTENER_VAR} is not configured",
            due.len()
        )];
    };
    let mut failures = Vec::new();
    for check in due {
        let timeout = Duration::from_secs(check.timeout.seconds);
        let outcome = probe.check(&check.path, check.expect_status, timeout, check.attempts).await;
        if !outcome.passed {
            failures.push(format!(
                "check GET {} failed after {} attempt(s): {}",
                outcome.path, outcome.attempts, outcome.last
            ));
        }
    }
    failures
}
