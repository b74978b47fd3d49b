//! The release gate's judgement, without the I/O: its parameters, the build
//! artifact's documents, the continuation token, and how task-definition
//! rules and scan verdicts combine into one decision.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, ImageDigest};
use crate::policy::Policy;
use crate::rules::Violation;
use crate::scan::{ExceptedFinding, ScanVerdict, Verdict};

/// `UserParameters` of the Lambda invoke action, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateParameters {
    /// The central policy to use: `policies/<policy>/appsec.lkg.json`.
    /// Default: the image's repository, then `default` (`docs/policy.md`).
    #[serde(default)]
    pub policy: Option<String>,
    /// The environment overlay to apply.
    #[serde(default)]
    pub environment: Option<String>,
    /// The ECR repository, when it cannot be read from the image URI.
    #[serde(default)]
    pub repository: Option<String>,
    /// The task definition the deployment uses: its path in the input
    /// artifacts (`deploy/taskdef.json`), when the pipeline's deploy action
    /// does not say it or says several.
    #[serde(default)]
    pub taskdef: Option<String>,
}

impl GateParameters {
    /// Parses `UserParameters`; absent or blank means all defaults.
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let params: Self = serde_json::from_str(raw)
            .map_err(|e| format!("UserParameters is not valid: {e} (expected JSON like {{\"policy\":\"payments-api\",\"environment\":\"prod\"}})"))?;
        for (name, value) in [
            ("policy", &params.policy),
            ("environment", &params.environment),
            ("repository", &params.repository),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.contains("..") || v.starts_with('/') || v.chars().any(char::is_control))
            {
                return Err(format!("UserParameters.{name} {v:?} is not a valid name"));
            }
        }
        if let Some(path) = &params.taskdef
            && (path.is_empty()
                || path.starts_with('/')
                || path.split('/').any(|part| part.is_empty() || part == "..")
                || path.chars().any(char::is_control))
        {
            return Err(format!("UserParameters.taskdef {path:?} is not a path in the input artifact"));
        }
        Ok(params)
    }
}

/// `imageDetail.json` as CodeBuild writes it for CodeDeploy blue/green.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageDetail {
    #[serde(rename = "ImageURI")]
    pub image_uri: String,
}

impl ImageDetail {
    pub fn parse(text: &str) -> Result<Self, String> {
        let detail: Self = serde_json::from_str(text).map_err(|e| {
            format!("imageDetail.json is not valid: {e} (expected {{\"ImageURI\": \"...\"}})")
        })?;
        if detail.image_uri.trim().is_empty() {
            return Err("imageDetail.json has an empty ImageURI".into());
        }
        Ok(detail)
    }
}

/// The distinct image placeholders (`IMAGE1_NAME`) a task definition names.
pub fn image_placeholders(taskdef_json: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = taskdef_json;
    while let Some(start) = rest.find("\"<") {
        let Some(len) = rest[start + 2..].find(">\"") else { break };
        let name = &rest[start + 2..start + 2 + len];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(name.to_owned());
        }
        rest = &rest[start + 4 + len..];
    }
    names
}

/// Replaces CodeDeploy's image placeholders (`<IMAGE1_NAME>`) in a task
/// definition with the built image, as the CodeDeployToECS action will.
pub fn substitute_image_placeholders(taskdef_json: &str, image_uri: &str) -> String {
    let mut out = String::with_capacity(taskdef_json.len());
    let mut rest = taskdef_json;
    while let Some(start) = rest.find("\"<") {
        let Some(len) = rest[start + 2..].find(">\"") else { break };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push('"');
            out.push_str(image_uri);
            out.push('"');
        } else {
            out.push_str(&rest[start..start + 4 + len]);
        }
        rest = &rest[start + 4 + len..];
    }
    out.push_str(rest);
    out
}

/// What the gate remembers between invocations while it waits for a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Continuation {
    /// When the gate first saw this job's scan unfinished (epoch seconds).
    pub waiting_since: i64,
    /// How many invocations have waited so far.
    pub attempts: u32,
}

const TOKEN_PREFIX: &str = "sg1.";

impl Continuation {
    pub fn start(now: DateTime<Utc>) -> Self {
        Self { waiting_since: now.timestamp(), attempts: 1 }
    }

    pub fn next(self) -> Self {
        Self { attempts: self.attempts.saturating_add(1), ..self }
    }

    /// An opaque token (hex of a tiny JSON document): no secrets, far below
    /// CodePipeline's 2048 characters.
    pub fn to_token(self) -> String {
        format!("{TOKEN_PREFIX}{}", hex::encode(serde_json::to_vec(&self).unwrap_or_default()))
    }

    pub fn from_token(token: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "continuation token {:?} was not made by this gate",
                token.chars().take(40).collect::<String>()
            )
        };
        let hex_part = token.strip_prefix(TOKEN_PREFIX).ok_or_else(bad)?;
        let bytes = hex::decode(hex_part).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }

    pub fn waited(self, now: DateTime<Utc>) -> chrono::Duration {
        now - DateTime::from_timestamp(self.waiting_since, 0).unwrap_or(now)
    }
}

/// One image's scan, as the gate judged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageScan {
    pub container: String,
    pub image: String,
    pub repository: String,
    pub digest: Scanned,
    /// Where the scan was read: `ecr` (judged at decision time).
    pub source: String,
    /// When the image is an image index: the index's digest (the one the
    /// task definition names); `digest` is then its child for the task's
    /// platform, whose scan was judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_digest: Option<Digest>,
    /// The policy the scan was judged by when it is not the release's: an
    /// image from another repository (a sidecar) meets its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    pub verdict: ScanVerdict,
}

/// What an [`ImageScan`] is of: the platform image whose scan was judged,
/// or, for an image that has no scan (outside ECR, or not pinned by digest),
/// the image as the task definition names it. Either is its text in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scanned {
    Image(ImageDigest),
    Unscanned(String),
}

impl Scanned {
    /// For messages: a digest's first 12 hex digits; an image reference's
    /// first 19 characters, as long.
    pub fn short(&self) -> &str {
        match self {
            Self::Image(digest) => digest.short(),
            Self::Unscanned(reference) => {
                let end = reference.char_indices().nth(19).map_or(reference.len(), |(i, _)| i);
                &reference[..end]
            }
        }
    }
}

impl std::fmt::Display for Scanned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Image(digest) => digest.fmt(f),
            Self::Unscanned(reference) => f.write_str(reference),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Decision {
    Pass,
    Fail,
    /// A scan has not finished: ask CodePipeline to invoke again.
    Wait,
}

impl Decision {
    /// The word in notification dedupe keys. Stored keys depend on it, so it
    /// never changes, whatever the variant is called.
    pub fn dedupe_word(self) -> &'static str {
        match self {
            Decision::Pass => "Pass",
            Decision::Fail => "Fail",
            Decision::Wait => "Wait",
        }
    }
}

/// The gate's judgement of one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub decision: Decision,
    /// Why, most important first: task-definition violations, then scan
    /// violations, then pending scans.
    pub reasons: Vec<String>,
    pub violations: Vec<Violation>,
    pub scans: Vec<ImageScan>,
}

impl Judgement {
    /// A failure that is not about the release's content: a missing file,
    /// bad parameters, no policy. The gate fails closed.
    pub fn refused(reason: impl Into<String>) -> Self {
        Self { decision: Decision::Fail, reasons: vec![reason.into()], violations: vec![], scans: vec![] }
    }

    pub fn excepted(&self) -> Vec<&ExceptedFinding> {
        self.scans.iter().flat_map(|s| s.verdict.excepted.iter()).collect()
    }

    /// Every digest the decision speaks for, with its verdict: each judged
    /// image, and an image index under its platform child's verdict, so
    /// provenance holds for whichever of the two ECS reports.
    pub fn digests(&self) -> BTreeMap<String, Verdict> {
        self.scans
            .iter()
            .flat_map(|s| {
                let index = s.index_digest.iter().map(move |d| (d.to_string(), s.verdict.verdict));
                std::iter::once((s.digest.to_string(), s.verdict.verdict)).chain(index)
            })
            .collect()
    }
}

/// Combines task-definition violations and scan verdicts. Any violation or
/// failed scan fails at once (no point waiting for a scan); otherwise a
/// pending scan waits until the policy's `scan.wait` has passed since the
/// gate began waiting, then fails.
pub fn combine(
    policy: &Policy,
    violations: Vec<Violation>,
    scans: Vec<ImageScan>,
    waiting: Option<Continuation>,
    now: DateTime<Utc>,
) -> Judgement {
    let mut reasons: Vec<String> =
        violations.iter().map(|v| format!("{} ({}): {}", v.rule, v.container, v.message)).collect();
    for s in scans.iter().filter(|s| s.verdict.verdict == Verdict::Fail) {
        let under = s.policy.as_deref().map(|key| format!(" (under {key})")).unwrap_or_default();
        for v in &s.verdict.violations {
            reasons.push(format!("scan of {}@{}{under}: {}", s.repository, s.digest.short(), v.message));
        }
    }
    let pending: Vec<&ImageScan> = scans.iter().filter(|s| s.verdict.verdict == Verdict::Pending).collect();
    let decision = if !reasons.is_empty() {
        Decision::Fail
    } else if pending.is_empty() {
        Decision::Pass
    } else {
        let waited = waiting.map_or(chrono::Duration::zero(), |w| w.waited(now));
        let limit = policy.scan.wait.as_chrono();
        for s in &pending {
            let what =
                if s.verdict.status.is_empty() { "not started".to_owned() } else { s.verdict.status.clone() };
            if waited >= limit {
                reasons.push(format!(
                    "scan of {}@{} did not finish within scan.wait ({}): still {what}",
                    s.repository,
                    s.digest.short(),
                    policy.scan.wait
                ));
            } else {
                reasons.push(format!(
                    "waiting for the scan of {}@{} ({what})",
                    s.repository,
                    s.digest.short()
                ));
            }
        }
        if waited >= limit { Decision::Fail } else { Decision::Wait }
    };
    Judgement { decision, reasons, violations, scans }
}

/// The decision record: `decisions/<pipeline>/<execution-id>/<decision-id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub decision_id: String,
    pub job_id: String,
    pub pipeline: String,
    pub execution_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Every image digest judged, with its scan verdict.
    pub digests: BTreeMap<String, Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_sha256: Option<String>,
    /// Whether a repository-level appsec.yaml tightened the policy.
    #[serde(default)]
    pub repository_policy: bool,
    /// The policy's `owner`, told of the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub reasons: Vec<String>,
    pub violations: Vec<Violation>,
    pub exceptions_used: Vec<ExceptedFinding>,
    /// What the job reports: a later invocation for the same job (a
    /// redelivery) reports exactly this again.
    #[serde(default)]
    pub reported: ReportedResult,
    /// Whether the `Shipgate Gate Decision` event (and, for a pass, the
    /// provenance) went out.
    #[serde(default)]
    pub announced: bool,
}

/// The result a decision reports to CodePipeline: the summary (or, for a
/// failure, the message) and the output variables of a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedResult {
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_variables: Vec<(String, String)>,
}

impl DecisionRecord {
    pub fn key(&self) -> String {
        decision_key(&self.pipeline, &self.execution_id, &self.decision_id)
    }
}

/// Which record holds a job's decision: written once, before the record,
/// at `job_claim_key`, whatever pipeline `GetJobDetails` named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobClaim {
    pub record: String,
}

/// Where a job's claim is: keyed by its decision id alone.
pub fn job_claim_key(decision_id: &str) -> String {
    format!("decisions/jobs/{decision_id}.json")
}

/// Where a decision is recorded: one key per job id.
pub fn decision_key(pipeline: &str, execution_id: &str, decision_id: &str) -> String {
    format!("decisions/{pipeline}/{execution_id}/{decision_id}.json")
}

/// A stable decision id for a job: a redelivered job gets the same one.
pub fn decision_id(job_id: &str) -> String {
    format!("dec-{}", &crate::lkg::sha256_hex(job_id.as_bytes())[..20])
}

/// The `Shipgate Gate Decision` event's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecisionEvent {
    pub decision_id: String,
    pub pipeline: String,
    pub execution_id: String,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub digests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub reasons: Vec<String>,
}

impl GateDecisionEvent {
    pub fn from_record(r: &DecisionRecord) -> Self {
        Self {
            decision_id: r.decision_id.clone(),
            pipeline: r.pipeline.clone(),
            execution_id: r.execution_id.clone(),
            decision: r.decision,
            environment: r.environment.clone(),
            repository: r.repository.clone(),
            image: r.image.clone(),
            digests: r.digests.keys().cloned().collect(),
            policy_key: r.policy_key.clone(),
            owner: r.owner.clone(),
            reasons: r.reasons.iter().take(10).cloned().collect(),
        }
    }
}

/// The job failure message: the top reasons, within CodePipeline's limit.
pub fn failure_message(policy_key: Option<&str>, reasons: &[String], limit: usize) -> String {
    let head = match policy_key {
        Some(key) => format!("Release blocked by {key}"),
        None => "Release blocked".to_owned(),
    };
    let mut message = format!("{head}: ");
    let shown = 5;
    message.push_str(&reasons.iter().take(shown).cloned().collect::<Vec<_>>().join("; "));
    if reasons.len() > shown {
        message.push_str(&format!("; and {} more", reasons.len() - shown));
    }
    if message.len() > limit {
        let mut end = limit.saturating_sub(4);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str(" ...");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Duration;
    use crate::scan::ScanVerdict;

    #[test]
    fn parameters_parse_and_name_what_is_wrong() {
        let p = GateParameters::parse(Some(r#"{"policy":"payments-api","environment":"prod"}"#)).unwrap();
        assert_eq!((p.policy.as_deref(), p.environment.as_deref()), (Some("payments-api"), Some("prod")));
        assert_eq!(GateParameters::parse(None).unwrap(), GateParameters::default());
        assert!(
            GateParameters::parse(Some("{policy: x")).unwrap_err().starts_with("UserParameters is not valid")
        );
        assert!(
            GateParameters::parse(Some(r#"{"enviroment":"prod"}"#))
                .unwrap_err()
                .contains("unknown field `enviroment`")
        );
        assert!(
            GateParameters::parse(Some(r#"{"policy":"../x"}"#))
                .unwrap_err()
                .contains("UserParameters.policy")
        );
    }

    #[test]
    fn placeholders_are_replaced_with_the_image() {
        let td = r#"{"containerDefinitions":[{"name":"app","image":"<IMAGE1_NAME>","environment":[{"name":"A","value":"<not a placeholder>"}]}]}"#;
        let out = substitute_image_placeholders(td, "repo@sha256:aa");
        assert!(out.contains(r#""image":"repo@sha256:aa""#), "{out}");
        assert!(out.contains("<not a placeholder>"));
    }

    #[test]
    fn a_scanned_image_is_its_digest_and_an_unscanned_one_its_reference_in_json() {
        let digest = format!("sha256:{}", "4f".repeat(32));
        let scanned: Scanned = serde_json::from_value(serde_json::json!(digest)).unwrap();
        assert!(matches!(&scanned, Scanned::Image(d) if d == &digest));
        assert_eq!(scanned.short(), "sha256:4f4f4f4f4f4f");
        let unscanned: Scanned =
            serde_json::from_value(serde_json::json!("docker.io/library/nginx:1.27")).unwrap();
        assert_eq!(unscanned, Scanned::Unscanned("docker.io/library/nginx:1.27".into()));
        assert_eq!(serde_json::to_value(&unscanned).unwrap(), "docker.io/library/nginx:1.27");
        assert_eq!(unscanned.short(), "docker.io/library/n");
    }

    #[test]
    fn an_index_speaks_with_its_platform_childs_verdict() {
        let mut child = scan(Verdict::Pass);
        let index = Digest::of(b"index");
        child.index_digest = Some(index.clone());
        let j = Judgement {
            decision: Decision::Pass,
            reasons: vec![],
            violations: vec![],
            scans: vec![child, scan(Verdict::Pass)],
        };
        let digests = j.digests();
        assert_eq!(digests.get(index.as_str()), Some(&Verdict::Pass));
        assert_eq!(digests.get(&format!("sha256:{}", "4f".repeat(32))), Some(&Verdict::Pass));
        assert_eq!(digests.len(), 2);
    }

    #[test]
    fn continuation_tokens_round_trip_and_reject_forgeries() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let c = Continuation::start(now).next();
        let token = c.to_token();
        assert!(token.len() < 2048);
        assert_eq!(Continuation::from_token(&token).unwrap(), c);
        assert!(Continuation::from_token("sg1.zz").is_err());
        assert!(Continuation::from_token("anything").is_err());
    }

    fn scan(verdict: Verdict) -> ImageScan {
        ImageScan {
            container: "app".into(),
            image: "i".into(),
            repository: "r".into(),
            digest: Scanned::Image(ImageDigest::parse(&format!("sha256:{}", "4f".repeat(32))).unwrap()),
            source: "ecr".into(),
            index_digest: None,
            policy: None,
            verdict: ScanVerdict::empty(
                verdict,
                if verdict == Verdict::Pending { "IN_PROGRESS" } else { "COMPLETE" },
            ),
        }
    }

    #[test]
    fn pending_scan_waits_until_scan_wait_then_fails() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut policy = Policy::default();
        policy.scan.wait = Duration::minutes(30);
        let first = combine(&policy, vec![], vec![scan(Verdict::Pending)], None, now);
        assert_eq!(first.decision, Decision::Wait);
        let started = Continuation::start(now);
        let later = combine(
            &policy,
            vec![],
            vec![scan(Verdict::Pending)],
            Some(started),
            now + chrono::Duration::minutes(29),
        );
        assert_eq!(later.decision, Decision::Wait);
        let expired = combine(
            &policy,
            vec![],
            vec![scan(Verdict::Pending)],
            Some(started),
            now + chrono::Duration::minutes(30),
        );
        assert_eq!(expired.decision, Decision::Fail);
        assert!(
            expired.reasons[0].contains("did not finish within scan.wait (30m)"),
            "{:?}",
            expired.reasons
        );
    }

    #[test]
    fn a_violation_fails_without_waiting_for_the_scan() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let v = Violation {
            rule: crate::rules::TaskRule::Privileged,
            container: "app".into(),
            message: "runs privileged".into(),
        };
        let j = combine(&Policy::default(), vec![v], vec![scan(Verdict::Pending)], None, now);
        assert_eq!(j.decision, Decision::Fail);
        assert_eq!(j.reasons[0], "privileged (app): runs privileged");
    }

    #[test]
    fn failure_message_fits_the_limit() {
        let reasons: Vec<String> = (0..50).map(|i| format!("reason {i} {}", "x".repeat(300))).collect();
        let m = failure_message(Some("policies/p/appsec.lkg.json"), &reasons, 5000);
        assert!(m.len() <= 5000);
        assert!(m.starts_with("Release blocked by policies/p/appsec.lkg.json: reason 0"));
        assert!(m.ends_with("; and 45 more"));
    }

    #[test]
    fn failure_message_is_cut_at_a_character_within_the_limit_and_only_past_it() {
        let reasons = vec!["é".repeat(40)];
        let whole = failure_message(None, &reasons, 10_000);
        assert_eq!(whole, format!("Release blocked: {}", "é".repeat(40)));
        assert_eq!(failure_message(None, &reasons, whole.len()), whole, "exactly at the limit: whole");
        for limit in [60, 61, 62, 63] {
            let cut = failure_message(None, &reasons, limit);
            assert!(cut.len() <= limit && cut.len() >= limit - 5, "{limit}: {} {cut}", cut.len());
            assert!(cut.ends_with(" ..."), "{cut}");
            assert!(cut.starts_with("Release blocked: éé"), "{cut}");
        }
        let five = vec!["r".to_owned(); 5];
        assert!(!failure_message(None, &five, 10_000).contains("more"));
        let six = vec!["r".to_owned(); 6];
        assert!(failure_message(None, &six, 10_000).ends_with("; and 1 more"));
    }

    #[test]
    fn user_parameters_refuse_empty_absolute_traversing_and_control_names() {
        for bad in ["", "/etc", "a/../b", "a\\u0007b"] {
            let json = format!(r#"{{"environment":"{bad}"}}"#);
            let err = GateParameters::parse(Some(&json)).unwrap_err();
            assert!(err.contains("UserParameters.environment"), "{bad:?}: {err}");
        }
        assert!(GateParameters::parse(Some(r#"{"environment":"prod-eu_1"}"#)).is_ok());
    }

    #[test]
    fn placeholders_are_every_distinct_well_formed_name() {
        let td = r#"{"a":"<IMAGE1_NAME>","b":"<IMAGE2_NAME>","c":"<IMAGE1_NAME>","d":"<not one>","e":"<>","f":"<IMAGE3_NAME>"}"#;
        let names: Vec<String> = image_placeholders(td).into_iter().collect();
        assert_eq!(names, ["IMAGE1_NAME", "IMAGE2_NAME", "IMAGE3_NAME"]);
        assert!(image_placeholders(r#"{"image":"repo@sha256:aa"}"#).is_empty());
        assert!(image_placeholders(r#"{"image":"<IMAGE1_NAME"}"#).is_empty());
    }

    #[test]
    fn substitution_replaces_each_placeholder_and_keeps_everything_else() {
        let td = r#"{"x":"<A>","y":"<not one>","z":"<B_2>","w":1}"#;
        assert_eq!(
            substitute_image_placeholders(td, "img@sha256:aa"),
            r#"{"x":"img@sha256:aa","y":"<not one>","z":"img@sha256:aa","w":1}"#
        );
        assert_eq!(substitute_image_placeholders(r#"{"x":"<A"}"#, "i"), r#"{"x":"<A"}"#);
    }

    #[test]
    fn a_continuation_counts_its_attempts_from_when_waiting_began() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let next = Continuation::start(now).next().next();
        assert_eq!(next, Continuation { waiting_since: now.timestamp(), attempts: 3 });
    }

    #[test]
    fn dedupe_words_never_change() {
        let words = [Decision::Pass, Decision::Fail, Decision::Wait].map(Decision::dedupe_word);
        assert_eq!(words, ["Pass", "Fail", "Wait"]);
    }

    #[test]
    fn a_failed_scan_alone_fails_the_release_naming_its_violations() {
        let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let mut failed = scan(Verdict::Fail);
        failed.verdict.violations.push(crate::scan::ScanViolation {
            rule: crate::scan::ScanRule::Threshold,
            severity: None,
            message: "1 CRITICAL finding".into(),
        });
        let passed = scan(Verdict::Pass);
        let j = combine(&Policy::default(), vec![], vec![passed.clone(), failed], None, now);
        assert_eq!(j.decision, Decision::Fail);
        assert_eq!(j.reasons, ["scan of r@sha256:4f4f4f4f4f4f: 1 CRITICAL finding"]);
        assert_eq!(combine(&Policy::default(), vec![], vec![passed], None, now).decision, Decision::Pass);
    }

    #[test]
    fn the_excepted_findings_are_every_scans() {
        let finding = |id: &str| crate::scan::ExceptedFinding {
            id: id.into(),
            package: None,
            severity: crate::policy::Severity::Critical,
            exception: std::sync::Arc::new(crate::scan::ExceptionSummary {
                id: id.into(),
                package: None,
                expires: "2027-01-31".parse().unwrap(),
                reason: "r".into(),
                ticket: None,
            }),
        };
        let mut a = scan(Verdict::Pass);
        a.verdict.excepted.push(finding("CVE-1"));
        let mut b = scan(Verdict::Pass);
        b.verdict.excepted.push(finding("CVE-2"));
        let j =
            Judgement { decision: Decision::Pass, reasons: vec![], violations: vec![], scans: vec![a, b] };
        let ids: Vec<&str> = j.excepted().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["CVE-1", "CVE-2"]);
    }

    #[test]
    fn each_job_has_its_own_stable_decision_key() {
        assert_eq!(decision_id("job-1"), decision_id("job-1"));
        assert_ne!(decision_id("job-1"), decision_id("job-2"));
        assert!(decision_id("job-1").starts_with("dec-") && decision_id("job-1").len() == 24);
        assert_eq!(decision_key("p", "e", "dec-1"), "decisions/p/e/dec-1.json");
        let record: DecisionRecord = serde_json::from_value(serde_json::json!({"decision_id": "dec-1",
            "job_id": "job-1", "pipeline": "p", "execution_id": "e", "decided_at": "2026-11-28T12:00:00Z",
            "decision": "PASS", "digests": {}, "reasons": [], "violations": [], "exceptions_used": []}))
        .unwrap();
        assert_eq!(record.key(), "decisions/p/e/dec-1.json");
    }
}
