//! Reading and validating `appsec.yaml` (`docs/policy.md`, "Validation").
//!
//! Every problem is reported, not just the first, each with the `line:col`
//! of the offending node and the dotted path of the key it concerns:
//! `4:3: scan.tresholds: unknown key (did you mean 'thresholds'?)`.
//!
//! Each section of the schema is one table of [`Field`]s: a key and the
//! setter its value runs. The table is the list of known keys, so a key is
//! added in one place, together with what it sets.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::policy::{
    Allowance, DeployPolicy, Duration, EpssMissing, Exception, FailOn, HttpCheck, ImagePolicy,
    NotificationPolicy, Policy, PolicyDocument, Requirement, Severity, TaskDefinitionPolicy, hook_names,
};
use crate::yaml::{Mark, Node, Value};
use crate::yaml_check::{Cx, Field, keys, start_mark, suggestion};
pub use crate::yaml_check::{Diagnostic, Invalid, compile_regex};

/// A valid policy, with its warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub document: PolicyDocument,
    pub warnings: Vec<Diagnostic>,
}

const MIN_WAIT: Duration = Duration::minutes(1);
const MAX_WAIT: Duration = Duration::hours(12);
const MAX_CHECK_TIMEOUT: Duration = Duration::minutes(5);
const MAX_ATTEMPTS: u64 = 10;
const MAX_EXPIRY_WARNING: Duration = Duration::days(365);

/// The keys at the top of the file besides the sections.
const VERSION: &str = "version";
const ENVIRONMENTS: &str = "environments";

/// Parses and validates a policy. `now` dates the warnings about expired and
/// expiring exceptions; without it there are none.
pub fn parse_policy(text: &str, now: Option<DateTime<Utc>>) -> Result<Parsed, Invalid> {
    let (mut cx, root) = Cx::read(text)?;
    if let Value::Null = root.value {
        cx.error(root.mark, VERSION, "required: the policy is empty".into());
        return Err(cx.into_invalid());
    }
    let known: Vec<&str> = [VERSION, ENVIRONMENTS].into_iter().chain(keys(SECTIONS)).collect();
    let mut base = Target { policy: Policy::default(), mode: Mode::Replace };
    let (mut version_seen, mut overlays) = (false, None);
    for (key, _, value) in cx.mapping(&root, "", &known) {
        match key {
            VERSION => {
                version_seen = true;
                check_version(&mut cx, value);
            }
            ENVIRONMENTS => overlays = Some(value),
            section => cx.field(SECTIONS, section, value, section, &mut base),
        }
    }
    if !version_seen && matches!(root.value, Value::Map(_)) {
        cx.error(start_mark(&root), VERSION, "required key is missing (version: 1)".into());
    }
    let base = base.policy;
    let mut environments = BTreeMap::new();
    for (name, _, overlay) in overlays.map(|o| cx.mapping(o, ENVIRONMENTS, &[])).unwrap_or_default() {
        let path = format!("{ENVIRONMENTS}.{name}");
        let mut merged = Target { policy: base.clone(), mode: Mode::Merge };
        for (key, key_node, value) in cx.mapping(overlay, &path, &known) {
            let key_path = format!("{path}.{key}");
            match key {
                VERSION | ENVIRONMENTS => {
                    cx.error(key_node.mark, &key_path, "not allowed in an environment overlay".into())
                }
                section => cx.field(SECTIONS, section, value, &key_path, &mut merged),
            }
        }
        environments.insert(name.to_owned(), merged.policy);
    }
    if let Some(now) = now {
        exception_warnings(&mut cx, &root, &base, &environments, now);
    }
    let (document, warnings) = cx.into_result(PolicyDocument { policy: base, environments })?;
    Ok(Parsed { document, warnings })
}

fn check_version(cx: &mut Cx, value: &Node) {
    match value.value {
        Value::Int(1) => {}
        Value::Int(other) => cx.error(value.mark, VERSION, format!("must be 1, got {other}")),
        _ => cx.error(value.mark, VERSION, format!("must be the integer 1, got {}", value.kind())),
    }
}

/// How a mapping-valued setting (`thresholds`) combines with what is there:
/// the base file replaces the default; an environment overlay merges into
/// the base key by key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Replace,
    Merge,
}

/// A policy being built, and how its settings combine with what is there.
struct Target {
    policy: Policy,
    mode: Mode,
}

/// Sets `field` when the value was valid; an invalid one was reported.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The sections: what the top of the file and an environment overlay set.
const SECTIONS: &[Field<Target>] = &[
    Field { key: "owner", set: |cx, t, v, path| set(&mut t.policy.owner, cx.string(v, path).map(Some)) },
    Field { key: "scan", set: |cx, t, v, path| cx.fields(v, path, SCAN, t) },
    Field { key: "images", set: |cx, t, v, path| cx.fields(v, path, IMAGES, &mut t.policy.images) },
    Field {
        key: "task_definition",
        set: |cx, t, v, path| cx.fields(v, path, TASK_DEFINITION, &mut t.policy.task_definition),
    },
    Field { key: "deploy", set: |cx, t, v, path| cx.fields(v, path, DEPLOY, &mut t.policy.deploy) },
    Field {
        key: "notifications",
        set: |cx, t, v, path| cx.fields(v, path, NOTIFICATIONS, &mut t.policy.notifications),
    },
];

const SCAN: &[Field<Target>] = &[
    Field { key: "required", set: |cx, t, v, path| set(&mut t.policy.scan.required, cx.bool(v, path)) },
    Field {
        key: "wait",
        set: |cx, t, v, path| {
            let wait = cx.duration(v, path).filter(|wait| {
                let in_range = (MIN_WAIT..=MAX_WAIT).contains(wait);
                if !in_range {
                    cx.error(v.mark, path, format!("must be between {MIN_WAIT} and {MAX_WAIT}, got {wait}"));
                }
                in_range
            });
            set(&mut t.policy.scan.wait, wait);
        },
    },
    Field {
        key: "thresholds",
        set: |cx, t, v, path| {
            let thresholds = &mut t.policy.scan.thresholds;
            if t.mode == Mode::Replace {
                thresholds.clear();
            }
            for (name, key_node, limit) in cx.mapping(v, path, &[]) {
                let key_path = format!("{path}.{name}");
                let severity = severity(cx, name, key_node.mark, &key_path);
                let limit = cx.count(limit, &key_path);
                if let (Some(severity), Some(limit)) = (severity, limit) {
                    thresholds.insert(severity, limit);
                }
            }
        },
    },
    Field {
        key: "only_fixable",
        set: |cx, t, v, path| set(&mut t.policy.scan.only_fixable, cx.bool(v, path)),
    },
    Field {
        key: "unknown_severity_as",
        set: |cx, t, v, path| {
            if let Some(name) = cx.string(v, path) {
                set(&mut t.policy.scan.unknown_severity_as, severity(cx, &name, v.mark, path));
            }
        },
    },
    Field {
        key: "fail_on_stale_exceptions",
        set: |cx, t, v, path| set(&mut t.policy.scan.fail_on_stale_exceptions, cx.bool(v, path)),
    },
    Field { key: "fail_on", set: |cx, t, v, path| cx.fields(v, path, FAIL_ON, &mut t.policy.scan.fail_on) },
    Field {
        key: "allow_repo_exceptions",
        set: |cx, t, v, path| set(&mut t.policy.scan.allow_repo_exceptions, cx.bool(v, path)),
    },
    Field {
        key: "exceptions",
        set: |cx, t, v, path| {
            if let Some(list) = cx.sequence(v, path) {
                t.policy.scan.exceptions = list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| exception(cx, e, &format!("{path}[{i}]")))
                    .collect();
            }
        },
    },
];

const FAIL_ON: &[Field<FailOn>] = &[
    Field { key: "exploit_available", set: |cx, f, v, path| set(&mut f.exploit_available, cx.bool(v, path)) },
    Field {
        key: "epss_at_least",
        set: |cx, f, v, path| {
            let bound = cx.number(v, path).filter(|n| {
                let in_range = (0.0..=1.0).contains(n);
                if !in_range {
                    cx.error(v.mark, path, format!("must be between 0 and 1 (an EPSS score), got {n}"));
                }
                in_range
            });
            set(&mut f.epss_at_least, bound);
        },
    },
    Field {
        key: "epss_missing",
        set: |cx, f, v, path| {
            let choice = cx.string(v, path).and_then(|text| match text.as_str() {
                "fail" => Some(EpssMissing::Fail),
                "warn" => Some(EpssMissing::Warn),
                other => {
                    cx.error(v.mark, path, format!("must be fail or warn, got {other:?}"));
                    None
                }
            });
            set(&mut f.epss_missing, choice);
        },
    },
];

/// An exception as read so far: each key sets its own slot; `complete`
/// turns it into an [`Exception`] when nothing is missing or invalid.
#[derive(Default)]
struct ExceptionDraft {
    id: Option<String>,
    package: Option<String>,
    repositories: Option<Vec<String>>,
    expires: Option<NaiveDate>,
    reason: Option<String>,
    ticket: Option<String>,
    invalid: bool,
}

const EXCEPTION: &[Field<ExceptionDraft>] = &[
    Field { key: "id", set: |cx, e, v, path| e.id = cx.text(v, path) },
    Field { key: "package", set: |cx, e, v, path| e.package = cx.text(v, path) },
    Field {
        key: "repositories",
        set: |cx, e, v, path| {
            e.repositories = cx.globs(v, path);
            e.invalid |= e.repositories.is_none();
        },
    },
    Field { key: "expires", set: |cx, e, v, path| e.expires = cx.date(v, path) },
    Field { key: "reason", set: |cx, e, v, path| e.reason = cx.text(v, path) },
    Field { key: "ticket", set: |cx, e, v, path| e.ticket = cx.text(v, path) },
];

/// The keys an exception must have.
const EXCEPTION_REQUIRED: [&str; 3] = ["id", "expires", "reason"];

fn exception(cx: &mut Cx, node: &Node, path: &str) -> Option<Exception> {
    let mut draft = ExceptionDraft::default();
    cx.fields(node, path, EXCEPTION, &mut draft);
    if !matches!(node.value, Value::Map(_)) {
        return None;
    }
    for name in EXCEPTION_REQUIRED {
        if !has_key(node, name) {
            cx.error(start_mark(node), &format!("{path}.{name}"), "required key is missing".into());
        }
    }
    let mut ok = !draft.invalid && draft.id.is_some() && draft.expires.is_some() && draft.reason.is_some();
    for (name, value) in [("reason", &draft.reason), ("id", &draft.id)] {
        if value.as_deref().is_some_and(|s| s.trim().is_empty()) {
            cx.error(start_mark(node), &format!("{path}.{name}"), "must not be empty".into());
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(Exception {
        id: draft.id?.trim().into(),
        package: draft.package.map(Into::into),
        repositories: draft.repositories.unwrap_or_default(),
        expires: draft.expires?,
        reason: draft.reason?.into(),
        ticket: draft.ticket.map(Into::into),
    })
}

/// Whether a mapping node has `key`, valid or not.
fn has_key(node: &Node, key: &str) -> bool {
    matches!(&node.value, Value::Map(m) if m.iter().any(|(k, _)| k.as_str() == Some(key)))
}

const IMAGES: &[Field<ImagePolicy>] = &[
    Field {
        key: "allowed_registries",
        set: |cx, i, v, path| set(&mut i.allowed_registries, cx.globs(v, path)),
    },
    Field { key: "require_digest", set: |cx, i, v, path| set(&mut i.require_digest, cx.bool(v, path)) },
];

const TASK_DEFINITION: &[Field<TaskDefinitionPolicy>] = &[
    Field { key: "privileged", set: |cx, t, v, path| set(&mut t.privileged, allowance(cx, v, path)) },
    Field {
        key: "readonly_root_filesystem",
        set: |cx, t, v, path| set(&mut t.readonly_root_filesystem, requirement(cx, v, path)),
    },
    Field { key: "non_root_user", set: |cx, t, v, path| set(&mut t.non_root_user, requirement(cx, v, path)) },
    Field {
        key: "host_namespaces",
        set: |cx, t, v, path| set(&mut t.host_namespaces, allowance(cx, v, path)),
    },
    Field {
        key: "allowed_capabilities",
        set: |cx, t, v, path| set(&mut t.allowed_capabilities, cx.strings(v, path)),
    },
    Field {
        key: "forbid_env_names",
        set: |cx, t, v, path| set(&mut t.forbid_env_names, cx.strings(v, path)),
    },
    Field {
        key: "secret_env_patterns",
        set: |cx, t, v, path| {
            let Some(patterns) = cx.strings_with_marks(v, path) else { return };
            let mut valid = true;
            for (i, (pattern, mark)) in patterns.iter().enumerate() {
                if let Err(e) = compile_regex(pattern) {
                    cx.error(*mark, &format!("{path}[{i}]"), format!("invalid regular expression: {e}"));
                    valid = false;
                }
            }
            if valid {
                t.secret_env_patterns = patterns.into_iter().map(|(p, _)| p).collect();
            }
        },
    },
    Field {
        key: "require_log_configuration",
        set: |cx, t, v, path| set(&mut t.require_log_configuration, cx.bool(v, path)),
    },
];

const DEPLOY: &[Field<DeployPolicy>] = &[
    Field {
        key: "require_gate_decision",
        set: |cx, d, v, path| set(&mut d.require_gate_decision, cx.bool(v, path)),
    },
    Field { key: "checks", set: |cx, d, v, path| set(&mut d.checks, checks(cx, v, path)) },
];

const NOTIFICATIONS: &[Field<NotificationPolicy>] = &[Field {
    key: "exception_expiry_warning",
    set: |cx, n, v, path| {
        let warning = cx.duration(v, path).filter(|w| {
            let in_range = *w <= MAX_EXPIRY_WARNING;
            if !in_range {
                cx.error(v.mark, path, format!("must be at most {MAX_EXPIRY_WARNING}, got {w}"));
            }
            in_range
        });
        set(&mut n.exception_expiry_warning, warning);
    },
}];

/// An HTTP check as read so far; it counts only with a valid `path`.
struct CheckDraft {
    check: HttpCheck,
    has_path: bool,
}

const CHECK: &[Field<CheckDraft>] = &[
    Field {
        key: "path",
        set: |cx, c, v, path| {
            let Some(p) = cx.string(v, path) else { return };
            if p.starts_with('/') && !p.contains("://") && !p.chars().any(char::is_whitespace) {
                c.check.path = p;
                c.has_path = true;
            } else {
                cx.error(v.mark, path, format!("must be a path starting with '/', got {p:?}"));
            }
        },
    },
    Field {
        key: "expect_status",
        set: |cx, c, v, path| {
            let Some(status) = cx.count(v, path) else { return };
            match u16::try_from(status) {
                Ok(status) if (100..=599).contains(&status) => c.check.expect_status = status,
                _ => cx.error(v.mark, path, format!("must be an HTTP status (100-599), got {status}")),
            }
        },
    },
    Field {
        key: "timeout",
        set: |cx, c, v, path| {
            let Some(t) = cx.duration(v, path) else { return };
            if t.seconds == 0 || t > MAX_CHECK_TIMEOUT {
                cx.error(v.mark, path, format!("must be between 1s and {MAX_CHECK_TIMEOUT}, got {t}"));
            } else {
                c.check.timeout = t;
            }
        },
    },
    Field {
        key: "attempts",
        set: |cx, c, v, path| {
            let Some(n) = cx.count(v, path) else { return };
            match u32::try_from(n) {
                Ok(n) if (1..=MAX_ATTEMPTS).contains(&u64::from(n)) => c.check.attempts = n,
                _ => cx.error(v.mark, path, format!("must be between 1 and {MAX_ATTEMPTS}, got {n}")),
            }
        },
    },
    Field {
        key: "hook",
        set: |cx, c, v, path| {
            let Some(hook) = cx.string(v, path) else { return };
            let hooks = hook_names();
            if hooks.contains(&hook.as_str()) {
                c.check.hook = hook;
            } else {
                let hint = suggestion(&hook, &hooks);
                cx.error(v.mark, path, format!("unknown hook {hook:?}{hint}"));
            }
        },
    },
];

fn checks(cx: &mut Cx, node: &Node, path: &str) -> Option<Vec<HttpCheck>> {
    let list = cx.sequence(node, path)?;
    let mut checks = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let mut draft = CheckDraft { check: HttpCheck::with_path(""), has_path: false };
        cx.fields(item, &item_path, CHECK, &mut draft);
        if !matches!(item.value, Value::Map(_)) {
            continue;
        }
        if draft.has_path {
            checks.push(draft.check);
        } else if !has_key(item, "path") {
            cx.error(start_mark(item), &format!("{item_path}.path"), "required key is missing".into());
        }
    }
    Some(checks)
}

fn severity(cx: &mut Cx, name: &str, mark: Mark, path: &str) -> Option<Severity> {
    let parsed = Severity::parse(name);
    if parsed.is_none() {
        let why = if ["UNDEFINED", "UNTRIAGED"].iter().any(|u| u.eq_ignore_ascii_case(name)) {
            " (UNDEFINED and UNTRIAGED findings are counted as scan.unknown_severity_as)".to_owned()
        } else {
            let names: Vec<_> = Severity::ALL.iter().map(|s| s.as_str()).collect();
            suggestion(&name.to_ascii_uppercase(), &names)
        };
        cx.error(mark, path, format!("unknown severity {name:?}{why}"));
    }
    parsed
}

fn allowance(cx: &mut Cx, node: &Node, path: &str) -> Option<Allowance> {
    cx.keyword(node, path, &[("forbid", Allowance::Forbid), ("allow", Allowance::Allow)])
}

fn requirement(cx: &mut Cx, node: &Node, path: &str) -> Option<Requirement> {
    cx.keyword(node, path, &[("require", Requirement::Require), ("ignore", Requirement::Ignore)])
}

/// Warnings for exceptions already expired or expiring within the window.
fn exception_warnings(
    cx: &mut Cx,
    root: &Node,
    base: &Policy,
    environments: &BTreeMap<String, Policy>,
    now: DateTime<Utc>,
) {
    let mut seen = std::collections::BTreeSet::new();
    let policies = std::iter::once(base).chain(environments.values());
    for policy in policies {
        let window = policy.notifications.exception_expiry_warning.as_chrono();
        for e in &policy.scan.exceptions {
            if !seen.insert((e.id.clone(), e.expires, e.package.clone(), e.repositories.clone())) {
                continue;
            }
            let mark = find_exception_mark(root, &e.id).unwrap_or_else(|| start_mark(root));
            let key = format!("scan.exceptions ({})", e.id);
            let message = if e.is_expired(now) {
                format!("expired on {}; it no longer applies", e.expires)
            } else if e.expired_from() - now <= window {
                format!("expires on {}, within the warning window", e.expires)
            } else {
                continue;
            };
            cx.warning(mark, &key, message);
        }
    }
}

/// Where the exception with `id` is written (its `id` value), for warnings.
fn find_exception_mark(node: &Node, id: &str) -> Option<Mark> {
    match &node.value {
        Value::Map(entries) => entries.iter().find_map(|(k, v)| {
            if k.as_str() == Some("id") && v.scalar_text().is_some_and(|t| t.trim() == id) {
                Some(start_mark(node))
            } else {
                find_exception_mark(v, id)
            }
        }),
        Value::Seq(items) => items.iter().find_map(|i| find_exception_mark(i, id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_policy(text, None).unwrap_err().errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn minimal_policy_takes_every_default() {
        let parsed = parse_policy("version: 1\n", None).unwrap();
        assert_eq!(parsed.document.policy, Policy::default());
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        assert_eq!(
            errors("version: 1\nscan:\n  tresholds: {HIGH: 1}\n"),
            ["3:3: scan.tresholds: unknown key (did you mean 'thresholds'?)"]
        );
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = "version: 2\nscan:\n  wait: 13h\n  thresholds: {HIGH: -1, SEVERE: 3}\n  required: yes\n";
        assert_eq!(
            errors(text),
            [
                "1:10: version: must be 1, got 2",
                "3:9: scan.wait: must be between 1m and 12h, got 13h",
                "4:22: scan.thresholds.HIGH: must not be negative, got -1",
                "4:26: scan.thresholds.SEVERE: unknown severity \"SEVERE\" (expected one of: CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL)",
                "5:13: scan.required: must be true or false, got a string",
            ]
        );
    }

    #[test]
    fn exception_missing_fields_are_named() {
        let text = "version: 1\nscan:\n  exceptions:\n    - id: CVE-1\n      reason: ''\n";
        assert_eq!(
            errors(text),
            [
                "4:7: scan.exceptions[0].expires: required key is missing",
                "4:7: scan.exceptions[0].reason: must not be empty"
            ]
        );
    }

    #[test]
    fn invalid_globs_and_regexes_are_errors() {
        let text = "version: 1\nimages:\n  allowed_registries: ['[abc']\ntask_definition:\n  secret_env_patterns: ['(unclosed']\n";
        let errs = errors(text);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("3:24: images.allowed_registries[0]: invalid glob"), "{errs:?}");
        assert!(
            errs[1].starts_with("5:25: task_definition.secret_env_patterns[0]: invalid regular expression"),
            "{errs:?}"
        );
    }

    #[test]
    fn fail_on_is_read_checked_and_merged_by_environment() {
        let text = "version: 1\nscan:\n  fail_on: {exploit_available: true}\nenvironments:\n  prod: {scan: {fail_on: {epss_at_least: 0.2}}}\n";
        let doc = parse_policy(text, None).unwrap().document;
        assert_eq!(
            doc.policy.scan.fail_on,
            FailOn { exploit_available: true, epss_at_least: 0.0, ..FailOn::default() }
        );
        let (prod, _) = doc.for_environment(Some("prod"));
        assert_eq!(
            prod.scan.fail_on,
            FailOn { exploit_available: true, epss_at_least: 0.2, ..FailOn::default() }
        );
        let warn =
            parse_policy("version: 1\nscan:\n  fail_on: {epss_at_least: 0.3, epss_missing: warn}\n", None);
        assert_eq!(warn.unwrap().document.policy.scan.fail_on.epss_missing, EpssMissing::Warn);
        let errs = errors("version: 1\nscan:\n  fail_on: {epss_missing: skip}\n");
        assert_eq!(errs, ["3:27: scan.fail_on.epss_missing: must be fail or warn, got \"skip\""]);
        let errs = errors("version: 1\nscan:\n  fail_on: {epss_at_least: 1.5, exploit: true}\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs.iter().any(|e| e.starts_with("3:28: scan.fail_on.epss_at_least: must be between 0 and 1")),
            "{errs:?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("scan.fail_on.exploit") && e.contains("exploit_available")),
            "{errs:?}"
        );
        assert_eq!(errors("version: 1\nscan:\n  fail_on: {epss_at_least: high}\n").len(), 1);
    }

    #[test]
    fn yaml_syntax_error_has_a_position() {
        let errs = errors("version: 1\nscan: [\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("YAML syntax"), "{errs:?}");
    }

    #[test]
    fn environment_overlay_merges_thresholds_into_the_base() {
        let text = "version: 1\nscan:\n  thresholds: {CRITICAL: 0, HIGH: 2}\nenvironments:\n  prod: {scan: {thresholds: {HIGH: 0}}}\n";
        let doc = parse_policy(text, None).unwrap().document;
        assert_eq!(doc.policy.scan.thresholds, [(Severity::Critical, 0), (Severity::High, 2)].into());
        assert_eq!(
            doc.environments["prod"].scan.thresholds,
            [(Severity::Critical, 0), (Severity::High, 0)].into()
        );
    }

    #[test]
    fn overlay_may_not_change_the_version() {
        assert_eq!(
            errors("version: 1\nenvironments:\n  prod: {version: 2}\n"),
            ["3:10: environments.prod.version: not allowed in an environment overlay"]
        );
    }

    #[test]
    fn expired_and_expiring_exceptions_warn() {
        let text = "version: 1\nscan:\n  exceptions:\n    - {id: CVE-1, expires: 2026-11-01, reason: r}\n    - {id: CVE-2, expires: 2026-12-05, reason: r}\n    - {id: CVE-3, expires: 2027-06-01, reason: r}\n";
        let now = "2026-11-28T12:00:00Z".parse().unwrap();
        let warnings: Vec<String> =
            parse_policy(text, Some(now)).unwrap().warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "4:8: scan.exceptions (CVE-1): expired on 2026-11-01; it no longer applies",
                "5:8: scan.exceptions (CVE-2): expires on 2026-12-05, within the warning window",
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_judged_without_panicking(text in "\\PC{0,300}") {
            let _ = parse_policy(&text, None);
        }

        #[test]
        fn any_yaml_shaped_text_is_judged_without_panicking(
            lines in proptest::collection::vec("( {0,4})(version|scan|wait|thresholds|HIGH|exceptions|- id|expires|reason|environments|prod)(: )?(1|-1|30m|\\[|\\{|x|2026-12-31|&a|\\*a)?", 0..20)
        ) {
            let _ = parse_policy(&lines.join("\n"), None);
        }

        #[test]
        fn durations_round_trip(n in 0u64..100_000, unit in proptest::sample::select(vec!['s', 'm', 'h', 'd'])) {
            let d = Duration::parse(&format!("{n}{unit}")).unwrap();
            proptest::prop_assert_eq!(Duration::parse(&d.to_string()), Some(d));
        }
    }

    #[test]
    fn an_environment_the_policy_does_not_define_is_refused() {
        let with =
            parse_policy("version: 1\nenvironments:\n  prod: {scan: {thresholds: {MEDIUM: 0}}}\n", None)
                .unwrap();
        let doc = with.document;
        assert_eq!(doc.environment(Some(" prod ")).unwrap(), &doc.environments["prod"]);
        assert_eq!(doc.environment(None).unwrap(), &doc.policy);
        let err = doc.environment(Some("prd")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment \"prd\" is not one the policy defines (prod); failing closed"
        );
        let without = parse_policy("version: 1\n", None).unwrap().document;
        assert_eq!(
            without.environment(Some("prd")).unwrap(),
            &without.policy,
            "no environments: today's behaviour"
        );
    }

    #[test]
    fn a_huge_duration_is_an_error_not_a_panic() {
        assert_eq!(
            errors("version: 1\nnotifications: {exception_expiry_warning: 200000000000d}\n"),
            ["2:43: notifications.exception_expiry_warning: must be at most 365d, got 200000000000d"]
        );
        assert_eq!(
            errors("version: 1\nnotifications: {exception_expiry_warning: 400d}\n"),
            ["2:43: notifications.exception_expiry_warning: must be at most 365d, got 400d"]
        );
        assert_eq!(Duration::seconds(u64::MAX).as_chrono(), chrono::Duration::MAX);
    }

    /// Documents built from the schema's own keys, with extreme, wrong-typed
    /// and unicode values: parsing, validation, layering and evaluation
    /// always answer (a policy, or errors with line:col), never panic.
    fn section_document() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let values = proptest::sample::select(vec![
            "1",
            "0",
            "-1",
            "99999999999999999999",
            "200000000000d",
            "400d",
            "30m",
            "0s",
            "13h",
            "1e309",
            "true",
            "~",
            "[]",
            "{}",
            "\"ü\u{202e}\"",
            "é",
            "[HIGH]",
            "{HIGH: 0}",
            "{CRITICAL: -5}",
            "9999-12-31",
            "0000-01-01",
            "2026-11-28",
            "[{id: CVE-1, expires: 9999-12-31, reason: r}]",
            "[{id: ''}]",
            "[{path: /healthz, timeout: 999999999999s, attempts: 4294967297, expect_status: 70000}]",
            "['[', '(']",
            "forbid",
            "require",
            "allow",
            "ignore",
        ]);
        let keys: Vec<&'static str> = keys(SECTIONS)
            .chain(keys(SCAN))
            .chain(keys(IMAGES))
            .chain(keys(TASK_DEFINITION))
            .chain(keys(DEPLOY))
            .chain(keys(NOTIFICATIONS))
            .chain(keys(EXCEPTION))
            .chain(keys(CHECK))
            .chain(["version", "environments", "prod"])
            .collect();
        let line =
            (proptest::sample::select(keys.clone()), proptest::sample::select(keys), values, 0usize..3)
                .prop_map(|(outer, inner, value, shape)| match shape {
                    0 => format!("{outer}: {value}"),
                    1 => format!("{outer}:\n  {inner}: {value}"),
                    _ => format!("{outer}: {{{inner}: {value}}}"),
                });
        proptest::collection::vec(line, 0..8).prop_map(|lines| format!("version: 1\n{}\n", lines.join("\n")))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn any_document_of_schema_keys_is_answered_without_panicking(text in section_document()) {
            let now: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
            match parse_policy(&text, Some(now)) {
                Err(invalid) => proptest::prop_assert!(!invalid.errors.is_empty()),
                Ok(parsed) => {
                    let document = parsed.document;
                    let report = crate::findings::ScanReport {
                        image_scan_status: Some(crate::findings::ScanStatus { status: "COMPLETE".into(), description: None }),
                        ..Default::default()
                    };
                    let td = crate::taskdef::TaskDefinition::default();
                    for env in std::iter::once(None).chain(document.environments.keys().map(|k| Some(k.as_str()))) {
                        let (policy, _) = document.for_environment(env);
                        let layered = crate::policy::layer(policy, policy);
                        let _ = crate::scan::evaluate_scan(&layered, "payments-api", &report, now);
                        let _ = crate::rules::check_task_definition(&layered, &td);
                        let _ = crate::notify::expiring_exceptions("k", &layered, now);
                    }
                }
            }
        }
    }

    #[test]
    fn normalised_form_round_trips() {
        let text = include_str!("../../../examples/appsec.yaml");
        let doc = parse_policy(text, None).unwrap().document;
        let back: PolicyDocument = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(back, doc);
    }
}
