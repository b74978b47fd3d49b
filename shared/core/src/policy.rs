//! `appsec.yaml`, version 1: the model, its defaults, and layering.
//!
//! Reading and validating the YAML lives in [`crate::validate`]; this module
//! is the typed result, which is also the normalised form stored as the
//! last-known-good policy (`appsec.lkg.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Finding severities that thresholds and counts use, most severe first.
/// ECR's `UNDEFINED` and Inspector's `UNTRIAGED` are not here: they are
/// counted as the policy's `unknown_severity_as`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Informational,
}

impl Severity {
    pub const ALL: [Severity; 5] =
        [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Informational];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
        }
    }

    /// Parses a severity name, ignoring case.
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A duration written as an integer and a unit: `30s`, `30m`, `12h`, `14d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub seconds: u64,
}

impl Duration {
    pub const fn seconds(seconds: u64) -> Self {
        Self { seconds }
    }
    pub const fn minutes(m: u64) -> Self {
        Self { seconds: m * 60 }
    }
    pub const fn hours(h: u64) -> Self {
        Self { seconds: h * 3600 }
    }
    pub const fn days(d: u64) -> Self {
        Self { seconds: d * 86_400 }
    }

    /// Parses `<integer><s|m|h|d>`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let unit = text.chars().last()?;
        let number: u64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
        let factor = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        number.checked_mul(factor).map(Self::seconds)
    }

    /// As a chrono duration, saturating at chrono's largest (which is far
    /// below `u64::MAX` seconds) rather than panicking.
    pub fn as_chrono(self) -> chrono::Duration {
        i64::try_from(self.seconds)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for Duration {
    /// The largest unit that divides the duration exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match s {
            0 => write!(f, "0s"),
            _ if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Duration::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("invalid duration {text:?}")))
    }
}

/// `forbid | allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allowance {
    Forbid,
    Allow,
}

/// `require | ignore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    Require,
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub scan: ScanPolicy,
    pub images: ImagePolicy,
    pub task_definition: TaskDefinitionPolicy,
    pub deploy: DeployPolicy,
    pub notifications: NotificationPolicy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanPolicy {
    pub required: bool,
    pub wait: Duration,
    /// Maximum counted findings per severity; a severity not listed is unlimited.
    pub thresholds: BTreeMap<Severity, u64>,
    pub only_fixable: bool,
    pub unknown_severity_as: Severity,
    pub fail_on_stale_exceptions: bool,
    /// Risk rules on enhanced findings, whatever the thresholds (absent
    /// from last-known-good policies stored before it existed: off).
    #[serde(default)]
    pub fail_on: FailOn,
    pub allow_repo_exceptions: bool,
    pub exceptions: Vec<Exception>,
}

/// `scan.fail_on`: an enhanced finding that is counted fails the image when
/// it is known to be exploitable, or its EPSS score reaches the bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailOn {
    pub exploit_available: bool,
    /// 0 is off; otherwise a finding scoring at least this fails.
    pub epss_at_least: f64,
    /// What a counted finding without an EPSS score does under
    /// `epss_at_least`: fail (the default), or only warn.
    #[serde(default)]
    pub epss_missing: EpssMissing,
}

/// `scan.fail_on.epss_missing`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EpssMissing {
    #[default]
    Fail,
    Warn,
}

impl FailOn {
    /// The stricter of two: exploitability on if either asks, and the lower
    /// EPSS bound that is set (0 means unset, so it never wins).
    pub fn stricter(self, other: FailOn) -> FailOn {
        // Taken apart without `..`, as in [`layer`]: a new rule needs its own.
        let FailOn { exploit_available, epss_at_least, epss_missing } = self;
        let FailOn {
            exploit_available: other_exploit_available,
            epss_at_least: other_epss_at_least,
            epss_missing: other_epss_missing,
        } = other;
        let epss_at_least = match (epss_at_least > 0.0, other_epss_at_least > 0.0) {
            (true, true) => epss_at_least.min(other_epss_at_least),
            (true, false) => epss_at_least,
            (false, _) => other_epss_at_least,
        };
        // Failing on a missing score is the stricter.
        let epss_missing = if epss_missing == EpssMissing::Warn && other_epss_missing == EpssMissing::Warn {
            EpssMissing::Warn
        } else {
            EpssMissing::Fail
        };
        FailOn {
            exploit_available: exploit_available || other_exploit_available,
            epss_at_least,
            epss_missing,
        }
    }

    pub fn is_on(self) -> bool {
        self.exploit_available || self.epss_at_least > 0.0
    }

    /// Whether judging needs EPSS scores (which ECR's findings lack).
    pub fn reads_epss(self) -> bool {
        self.epss_at_least > 0.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    pub id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Arc<str>>,
    /// Repository globs; empty means every repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// Valid through the end of this day, UTC.
    pub expires: NaiveDate,
    pub reason: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Arc<str>>,
}

impl Exception {
    /// The first instant at which the exception no longer applies.
    pub fn expired_from(&self) -> chrono::DateTime<chrono::Utc> {
        let next_day = self.expires.succ_opt().unwrap_or(NaiveDate::MAX);
        next_day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
    }

    pub fn is_expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        now >= self.expired_from()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePolicy {
    /// Globs on the registry host; empty means any registry.
    pub allowed_registries: Vec<String>,
    pub require_digest: bool,
    /// Further allow-lists that must all match too: what a repository's own
    /// policy adds when layered (see [`layer`]). Empty lists are not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_allowed_registries: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinitionPolicy {
    pub privileged: Allowance,
    pub readonly_root_filesystem: Requirement,
    pub non_root_user: Requirement,
    pub host_namespaces: Allowance,
    pub allowed_capabilities: Vec<String>,
    pub forbid_env_names: Vec<String>,
    pub secret_env_patterns: Vec<String>,
    pub require_log_configuration: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployPolicy {
    pub require_gate_decision: bool,
    pub checks: Vec<HttpCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub path: String,
    pub expect_status: u16,
    pub timeout: Duration,
    pub attempts: u32,
    pub hook: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPolicy {
    pub exception_expiry_warning: Duration,
}

/// The moments of a blue/green deployment a check may name: each CodeDeploy
/// ECS hook beside the ECS native lifecycle stage that plays the same part
/// (`None` where the other kind has no such moment), so one `deploy.checks`
/// entry serves both kinds of deployment. The one list of hook names.
pub const HOOK_STAGES: &[(Option<&str>, Option<&str>)] = &[
    (Some("BeforeInstall"), Some("PRE_SCALE_UP")),
    (Some("AfterInstall"), Some("POST_SCALE_UP")),
    (None, Some("TEST_TRAFFIC_SHIFT")),
    (Some("AfterAllowTestTraffic"), Some("POST_TEST_TRAFFIC_SHIFT")),
    (Some("BeforeAllowTraffic"), Some("PRE_PRODUCTION_TRAFFIC_SHIFT")),
    (None, Some("PRODUCTION_TRAFFIC_SHIFT")),
    (Some("AfterAllowTraffic"), Some("POST_PRODUCTION_TRAFFIC_SHIFT")),
];

/// Every hook name a check may name: CodeDeploy's, then ECS's.
pub fn hook_names() -> Vec<&'static str> {
    let codedeploy = HOOK_STAGES.iter().filter_map(|(cd, _)| *cd);
    codedeploy.chain(HOOK_STAGES.iter().filter_map(|(_, ecs)| *ecs)).collect()
}

pub const DEFAULT_HOOK: &str = "AfterAllowTestTraffic";

impl HttpCheck {
    pub fn with_path(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            expect_status: 200,
            timeout: Duration::seconds(2),
            attempts: 3,
            hook: DEFAULT_HOOK.to_owned(),
        }
    }
}

impl Default for Policy {
    /// The defaults `docs/policy.md` lists.
    fn default() -> Self {
        Self {
            version: 1,
            owner: None,
            scan: ScanPolicy {
                required: true,
                wait: Duration::minutes(30),
                thresholds: [(Severity::Critical, 0), (Severity::High, 0), (Severity::Medium, 25)].into(),
                only_fixable: false,
                unknown_severity_as: Severity::High,
                fail_on_stale_exceptions: false,
                fail_on: FailOn::default(),
                allow_repo_exceptions: false,
                exceptions: Vec::new(),
            },
            images: ImagePolicy {
                allowed_registries: vec!["*.dkr.ecr.*.amazonaws.com".to_owned()],
                require_digest: true,
                also_allowed_registries: Vec::new(),
            },
            task_definition: TaskDefinitionPolicy {
                privileged: Allowance::Forbid,
                readonly_root_filesystem: Requirement::Require,
                non_root_user: Requirement::Require,
                host_namespaces: Allowance::Forbid,
                allowed_capabilities: Vec::new(),
                forbid_env_names: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
                    .map(str::to_owned)
                    .to_vec(),
                secret_env_patterns: vec!["(?i)(password|passwd|secret|token|api_?key)".to_owned()],
                require_log_configuration: true,
            },
            deploy: DeployPolicy { require_gate_decision: true, checks: Vec::new() },
            notifications: NotificationPolicy { exception_expiry_warning: Duration::days(14) },
        }
    }
}

/// A whole `appsec.yaml`: the base policy and, per environment, the base with
/// that environment's overlay merged in. This is the normalised form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub policy: Policy,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, Policy>,
}

/// A release or hook asked for an environment the policy does not define.
/// (Tested in `validate`, where documents are parsed.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment {requested:?} is not one the policy defines ({}); failing closed", known.join(", "))]
pub struct UnknownEnvironment {
    pub requested: String,
    pub known: Vec<String>,
}

impl PolicyDocument {
    /// Whether the base policy or any environment's judges EPSS scores.
    pub fn reads_epss(&self) -> bool {
        std::iter::once(&self.policy).chain(self.environments.values()).any(|p| p.scan.fail_on.reads_epss())
    }

    /// The policy a release or hook for `requested` must meet: the base
    /// policy when none is asked for or the policy defines no environments,
    /// the environment's overlay when it defines that one, and otherwise a
    /// refusal: a typo (`prd`) must not fall back to the looser base.
    /// Surrounding whitespace in the name is ignored.
    pub fn environment(&self, requested: Option<&str>) -> Result<&Policy, UnknownEnvironment> {
        let Some(name) = requested.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(&self.policy) };
        if self.environments.is_empty() {
            return Ok(&self.policy);
        }
        self.environments.get(name).ok_or_else(|| UnknownEnvironment {
            requested: name.to_owned(),
            known: self.environments.keys().cloned().collect(),
        })
    }

    /// The policy for `environment`: its merged overlay, or the base policy
    /// when the environment is unset or has no overlay (`false` second value).
    pub fn for_environment(&self, environment: Option<&str>) -> (&Policy, bool) {
        match environment.and_then(|e| self.environments.get(e)) {
            Some(p) => (p, true),
            None => (&self.policy, environment.is_none()),
        }
    }

    /// The normalised JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Layers a repository's own policy onto the central one (`docs/policy.md`, "Layering"). The
/// repository can only tighten: thresholds take the minimum, requirements the
/// stricter value, and its exceptions count only when the central policy sets
/// `allow_repo_exceptions`. Operational settings (`scan.wait`, the expiry
/// warning's owner) stay the central policy's, except that the earlier expiry
/// warning wins.
pub fn layer(central: &Policy, repo: &Policy) -> Policy {
    // Every struct is taken apart field by field, with no `..`: a field added
    // to the model does not compile until its rule is written here.
    let Policy { version, owner, scan, images, task_definition, deploy, notifications } = central;
    let Policy {
        version: _,
        owner: repo_owner,
        scan: repo_scan,
        images: repo_images,
        task_definition: repo_task_definition,
        deploy: repo_deploy,
        notifications: repo_notifications,
    } = repo;
    Policy {
        version: *version,
        owner: owner.clone().or_else(|| repo_owner.clone()),
        scan: layer_scan(scan, repo_scan),
        images: layer_images(images, repo_images),
        task_definition: layer_task_definition(task_definition, repo_task_definition),
        deploy: layer_deploy(deploy, repo_deploy),
        notifications: layer_notifications(notifications, repo_notifications),
    }
}

fn layer_scan(central: &ScanPolicy, repo: &ScanPolicy) -> ScanPolicy {
    let ScanPolicy {
        required,
        wait,
        thresholds,
        only_fixable,
        unknown_severity_as,
        fail_on_stale_exceptions,
        fail_on,
        allow_repo_exceptions,
        exceptions,
    } = central;
    let ScanPolicy {
        required: repo_required,
        wait: _,
        thresholds: repo_thresholds,
        only_fixable: repo_only_fixable,
        unknown_severity_as: repo_unknown_severity_as,
        fail_on_stale_exceptions: repo_fail_on_stale_exceptions,
        fail_on: repo_fail_on,
        allow_repo_exceptions: _,
        exceptions: repo_exceptions,
    } = repo;
    let severities: BTreeSet<Severity> = thresholds.keys().chain(repo_thresholds.keys()).copied().collect();
    let thresholds = severities
        .into_iter()
        .map(|s| {
            let limit = match (thresholds.get(&s), repo_thresholds.get(&s)) {
                (Some(a), Some(b)) => *a.min(b),
                (Some(a), None) | (None, Some(a)) => *a,
                (None, None) => u64::MAX,
            };
            (s, limit)
        })
        .collect();
    let mut exceptions = exceptions.clone();
    if *allow_repo_exceptions {
        exceptions.extend(repo_exceptions.iter().cloned());
    }
    ScanPolicy {
        required: *required || *repo_required,
        wait: *wait,
        thresholds,
        only_fixable: *only_fixable && *repo_only_fixable,
        unknown_severity_as: (*unknown_severity_as).min(*repo_unknown_severity_as),
        fail_on_stale_exceptions: *fail_on_stale_exceptions || *repo_fail_on_stale_exceptions,
        fail_on: fail_on.stricter(*repo_fail_on),
        allow_repo_exceptions: *allow_repo_exceptions,
        exceptions,
    }
}

fn layer_images(central: &ImagePolicy, repo: &ImagePolicy) -> ImagePolicy {
    let ImagePolicy { allowed_registries, require_digest, also_allowed_registries } = central;
    let ImagePolicy {
        allowed_registries: repo_allowed,
        require_digest: repo_require_digest,
        also_allowed_registries: repo_also_allowed,
    } = repo;
    let mut layered = ImagePolicy {
        allowed_registries: allowed_registries.clone(),
        require_digest: *require_digest || *repo_require_digest,
        also_allowed_registries: also_allowed_registries.clone(),
    };
    if !repo_allowed.is_empty() {
        if layered.allowed_registries.is_empty() {
            layered.allowed_registries = repo_allowed.clone();
        } else {
            layered.also_allowed_registries.push(repo_allowed.clone());
        }
    }
    layered.also_allowed_registries.extend(repo_also_allowed.iter().cloned());
    layered
}

fn layer_task_definition(
    central: &TaskDefinitionPolicy,
    repo: &TaskDefinitionPolicy,
) -> TaskDefinitionPolicy {
    let TaskDefinitionPolicy {
        privileged,
        readonly_root_filesystem,
        non_root_user,
        host_namespaces,
        allowed_capabilities,
        forbid_env_names,
        secret_env_patterns,
        require_log_configuration,
    } = central;
    let TaskDefinitionPolicy {
        privileged: repo_privileged,
        readonly_root_filesystem: repo_readonly_root_filesystem,
        non_root_user: repo_non_root_user,
        host_namespaces: repo_host_namespaces,
        allowed_capabilities: repo_allowed_capabilities,
        forbid_env_names: repo_forbid_env_names,
        secret_env_patterns: repo_secret_env_patterns,
        require_log_configuration: repo_require_log_configuration,
    } = repo;
    let mut forbid_env_names = forbid_env_names.clone();
    union_into(&mut forbid_env_names, repo_forbid_env_names);
    let mut secret_env_patterns = secret_env_patterns.clone();
    union_into(&mut secret_env_patterns, repo_secret_env_patterns);
    TaskDefinitionPolicy {
        privileged: stricter_allowance(*privileged, *repo_privileged),
        readonly_root_filesystem: stricter_requirement(
            *readonly_root_filesystem,
            *repo_readonly_root_filesystem,
        ),
        non_root_user: stricter_requirement(*non_root_user, *repo_non_root_user),
        host_namespaces: stricter_allowance(*host_namespaces, *repo_host_namespaces),
        allowed_capabilities: allowed_capabilities
            .iter()
            .filter(|cap| repo_allowed_capabilities.iter().any(|x| same_capability(x, cap)))
            .cloned()
            .collect(),
        forbid_env_names,
        secret_env_patterns,
        require_log_configuration: *require_log_configuration || *repo_require_log_configuration,
    }
}

fn layer_deploy(central: &DeployPolicy, repo: &DeployPolicy) -> DeployPolicy {
    let DeployPolicy { require_gate_decision, checks } = central;
    let DeployPolicy { require_gate_decision: repo_require_gate_decision, checks: repo_checks } = repo;
    let mut checks = checks.clone();
    for check in repo_checks {
        if !checks.contains(check) {
            checks.push(check.clone());
        }
    }
    DeployPolicy { require_gate_decision: *require_gate_decision || *repo_require_gate_decision, checks }
}

fn layer_notifications(central: &NotificationPolicy, repo: &NotificationPolicy) -> NotificationPolicy {
    let NotificationPolicy { exception_expiry_warning } = central;
    let NotificationPolicy { exception_expiry_warning: repo_exception_expiry_warning } = repo;
    NotificationPolicy {
        exception_expiry_warning: (*exception_expiry_warning).max(*repo_exception_expiry_warning),
    }
}

fn stricter_allowance(a: Allowance, b: Allowance) -> Allowance {
    if a == Allowance::Forbid || b == Allowance::Forbid { Allowance::Forbid } else { Allowance::Allow }
}

fn stricter_requirement(a: Requirement, b: Requirement) -> Requirement {
    if a == Requirement::Require || b == Requirement::Require {
        Requirement::Require
    } else {
        Requirement::Ignore
    }
}

fn union_into(into: &mut Vec<String>, more: &[String]) {
    for item in more {
        if !into.contains(item) {
            into.push(item.clone());
        }
    }
}

/// `NET_ADMIN` and `CAP_NET_ADMIN` name the same capability, in any case.
pub fn same_capability(a: &str, b: &str) -> bool {
    fn bare(c: &str) -> String {
        let upper = c.trim().to_ascii_uppercase();
        upper.strip_prefix("CAP_").map(str::to_owned).unwrap_or(upper)
    }
    bare(a) == bare(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_canonically() {
        assert_eq!(Duration::parse("30m"), Some(Duration::minutes(30)));
        assert_eq!(Duration::parse("90s").unwrap().to_string(), "90s");
        assert_eq!(Duration::parse("120m").unwrap().to_string(), "2h");
        assert_eq!(Duration::parse("14d").unwrap().to_string(), "14d");
        for bad in ["", "m", "30", "30x", "-1m", "1.5h", "30 m"] {
            assert_eq!(Duration::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn exception_is_valid_through_the_end_of_its_day() {
        let e = Exception {
            id: "CVE-1".into(),
            package: None,
            repositories: vec![],
            expires: NaiveDate::from_ymd_opt(2026, 12, 31).unwrap(),
            reason: "r".into(),
            ticket: None,
        };
        let last = "2026-12-31T23:59:59.999Z".parse().unwrap();
        let next = "2027-01-01T00:00:00Z".parse().unwrap();
        assert!(!e.is_expired(last));
        assert!(e.is_expired(next));
    }

    #[test]
    fn layering_only_tightens() {
        let central = Policy::default();
        let mut repo = Policy::default();
        repo.scan.thresholds = [(Severity::High, 5), (Severity::Low, 3)].into();
        repo.scan.required = false;
        repo.task_definition.privileged = Allowance::Allow;
        repo.scan.exceptions.push(Exception {
            id: "CVE-2".into(),
            package: None,
            repositories: vec![],
            expires: NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
            reason: "r".into(),
            ticket: None,
        });
        let p = layer(&central, &repo);
        assert_eq!(
            p.scan.thresholds,
            [(Severity::Critical, 0), (Severity::High, 0), (Severity::Medium, 25), (Severity::Low, 3)].into()
        );
        assert!(p.scan.required);
        assert_eq!(p.task_definition.privileged, Allowance::Forbid);
        assert!(p.scan.exceptions.is_empty(), "repo exceptions need allow_repo_exceptions");

        let mut open = central.clone();
        open.scan.allow_repo_exceptions = true;
        assert_eq!(layer(&open, &repo).scan.exceptions.len(), 1);
    }

    #[test]
    fn fail_on_layers_to_the_stricter_rule_and_never_looser() {
        let on =
            |exploit, epss| FailOn { exploit_available: exploit, epss_at_least: epss, ..FailOn::default() };
        let with = |f: FailOn| Policy {
            scan: ScanPolicy { fail_on: f, ..Policy::default().scan },
            ..Policy::default()
        };
        let cases = [
            // (central, repository, layered)
            (on(false, 0.0), on(true, 0.5), on(true, 0.5)),
            (on(true, 0.5), on(false, 0.0), on(true, 0.5)),
            (on(false, 0.5), on(false, 0.2), on(false, 0.2)),
            (on(false, 0.2), on(false, 0.5), on(false, 0.2)),
            (on(false, 0.0), on(false, 0.0), on(false, 0.0)),
        ];
        for (central, repo, expected) in cases {
            assert_eq!(layer(&with(central), &with(repo)).scan.fail_on, expected, "{central:?} + {repo:?}");
        }
        let warn = FailOn { epss_missing: EpssMissing::Warn, ..on(false, 0.5) };
        for (central, repo, expected) in [
            (warn, warn, EpssMissing::Warn),
            (warn, on(false, 0.5), EpssMissing::Fail),
            (on(false, 0.5), warn, EpssMissing::Fail),
        ] {
            assert_eq!(
                layer(&with(central), &with(repo)).scan.fail_on.epss_missing,
                expected,
                "failing wins"
            );
        }
    }
}
