//! Reading and validating `appsec.yaml` (SPEC 3.1).
//!
//! Every problem is reported, not just the first, each with the `line:col`
//! of the offending node and the dotted path of the key it concerns:
//! `4:3: scan.tresholds: unknown key (did you mean 'thresholds'?)`.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::glob::Glob;
use crate::policy::{
    Allowance, Duration, Exception, HOOKS, HttpCheck, Policy, PolicyDocument, Requirement, Severity,
};
use crate::yaml::{self, Mark, Node, Value};

/// One finding about a policy file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    /// The dotted key path (`scan.thresholds.HIGH`); empty for the document.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.col, self.message)
        } else {
            write!(f, "{}:{}: {}: {}", self.line, self.col, self.key, self.message)
        }
    }
}

/// A valid policy, with its warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub document: PolicyDocument,
    pub warnings: Vec<Diagnostic>,
}

/// An invalid policy: every error, and the warnings found on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

const MIN_WAIT: Duration = Duration::minutes(1);
const MAX_WAIT: Duration = Duration::hours(12);
const MAX_CHECK_TIMEOUT: Duration = Duration::minutes(5);
const MAX_ATTEMPTS: u64 = 10;

/// Parses and validates a policy. `now` dates the warnings about expired and
/// expiring exceptions; without it there are none.
pub fn parse_policy(text: &str, now: Option<DateTime<Utc>>) -> Result<Parsed, Invalid> {
    let (mut cx, root) = Cx::read(text)?;
    let mut base = Policy::default();
    let mut environments = BTreeMap::new();
    if let Value::Null = root.value {
        cx.error(root.mark, "version", "required: the policy is empty".into());
        return Err(cx.into_invalid());
    }
    let entries = cx.mapping(&root, "", TOP_KEYS);
    let mut version_seen = false;
    for (key, key_node, value) in &entries {
        match *key {
            "version" => {
                version_seen = true;
                match value.value {
                    Value::Int(1) => {}
                    Value::Int(other) => cx.error(value.mark, "version", format!("must be 1, got {other}")),
                    _ => cx.error(
                        value.mark,
                        "version",
                        format!("must be the integer 1, got {}", value.kind()),
                    ),
                }
            }
            "environments" => {}
            _ => apply_section(&mut cx, &mut base, key, value, Mode::Replace),
        }
        let _ = key_node;
    }
    if !version_seen && matches!(root.value, Value::Map(_)) {
        cx.error(start_mark(&root), "version", "required key is missing (version: 1)".into());
    }
    if let Some((_, _, envs)) = entries.iter().find(|(k, _, _)| *k == "environments") {
        for (name, _, overlay) in cx.mapping(envs, "environments", &[]) {
            let path = format!("environments.{name}");
            let mut merged = base.clone();
            if let Value::Map(entries) = &overlay.value {
                for (k, _) in
                    entries.iter().filter(|(k, _)| matches!(k.as_str(), Some("version" | "environments")))
                {
                    let key = format!("{path}.{}", k.as_str().unwrap_or_default());
                    cx.error(k.mark, &key, "not allowed in an environment overlay".into());
                }
            }
            for (key, _, value) in cx.mapping(overlay, &path, OVERLAY_KEYS) {
                apply_section(&mut cx, &mut merged, key, value, Mode::Merge);
            }
            environments.insert(name.to_owned(), merged);
        }
    }
    if let Some(now) = now {
        cx.exception_warnings(&root, &base, &environments, now);
    }
    if cx.errors.is_empty() {
        let mut warnings = cx.warnings;
        warnings.sort();
        warnings.dedup();
        Ok(Parsed { document: PolicyDocument { policy: base, environments }, warnings })
    } else {
        Err(cx.into_invalid())
    }
}

const TOP_KEYS: &[&str] =
    &["version", "owner", "scan", "images", "task_definition", "deploy", "environments", "notifications"];
const OVERLAY_KEYS: &[&str] = &["owner", "scan", "images", "task_definition", "deploy", "notifications"];
const SCAN_KEYS: &[&str] = &[
    "required",
    "wait",
    "thresholds",
    "only_fixable",
    "unknown_severity_as",
    "fail_on_stale_exceptions",
    "allow_repo_exceptions",
    "exceptions",
];
const EXCEPTION_KEYS: &[&str] = &["id", "package", "repositories", "expires", "reason", "ticket"];
const IMAGES_KEYS: &[&str] = &["allowed_registries", "require_digest"];
const TASKDEF_KEYS: &[&str] = &[
    "privileged",
    "readonly_root_filesystem",
    "non_root_user",
    "host_namespaces",
    "allowed_capabilities",
    "forbid_env_names",
    "secret_env_patterns",
    "require_log_configuration",
];
const DEPLOY_KEYS: &[&str] = &["require_gate_decision", "checks"];
const CHECK_KEYS: &[&str] = &["path", "expect_status", "timeout", "attempts", "hook"];
const NOTIFICATION_KEYS: &[&str] = &["exception_expiry_warning"];

/// How a mapping-valued setting (`thresholds`) combines with what is there:
/// the base file replaces the default; an environment overlay merges into
/// the base key by key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Replace,
    Merge,
}

fn apply_section(cx: &mut Cx, p: &mut Policy, key: &str, value: &Node, mode: Mode) {
    match key {
        "owner" => {
            if let Some(owner) = cx.string(value, "owner") {
                p.owner = Some(owner);
            }
        }
        "scan" => apply_scan(cx, p, value, mode),
        "images" => {
            for (k, _, v) in cx.mapping(value, "images", IMAGES_KEYS) {
                let path = format!("images.{k}");
                match k {
                    "allowed_registries" => {
                        if let Some(globs) = cx.globs(v, &path) {
                            p.images.allowed_registries = globs;
                        }
                    }
                    _ => set(&mut p.images.require_digest, cx.bool(v, &path)),
                }
            }
        }
        "task_definition" => apply_task_definition(cx, p, value),
        "deploy" => {
            for (k, _, v) in cx.mapping(value, "deploy", DEPLOY_KEYS) {
                let path = format!("deploy.{k}");
                match k {
                    "require_gate_decision" => set(&mut p.deploy.require_gate_decision, cx.bool(v, &path)),
                    _ => {
                        if let Some(checks) = checks(cx, v, &path) {
                            p.deploy.checks = checks;
                        }
                    }
                }
            }
        }
        "notifications" => {
            for (k, _, v) in cx.mapping(value, "notifications", NOTIFICATION_KEYS) {
                let path = format!("notifications.{k}");
                set(&mut p.notifications.exception_expiry_warning, cx.duration(v, &path));
            }
        }
        _ => {}
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

fn apply_scan(cx: &mut Cx, p: &mut Policy, node: &Node, mode: Mode) {
    for (k, _, v) in cx.mapping(node, "scan", SCAN_KEYS) {
        let path = format!("scan.{k}");
        let s = &mut p.scan;
        match k {
            "required" => set(&mut s.required, cx.bool(v, &path)),
            "wait" => {
                if let Some(wait) = cx.duration(v, &path) {
                    if wait < MIN_WAIT || wait > MAX_WAIT {
                        cx.error(
                            v.mark,
                            &path,
                            format!("must be between {MIN_WAIT} and {MAX_WAIT}, got {wait}"),
                        );
                    } else {
                        s.wait = wait;
                    }
                }
            }
            "thresholds" => {
                if mode == Mode::Replace {
                    s.thresholds.clear();
                }
                for (name, key_node, limit) in cx.mapping(v, &path, &[]) {
                    let key_path = format!("{path}.{name}");
                    let severity = cx.severity(name, key_node.mark, &key_path);
                    let limit = cx.count(limit, &key_path);
                    if let (Some(severity), Some(limit)) = (severity, limit) {
                        s.thresholds.insert(severity, limit);
                    }
                }
            }
            "only_fixable" => set(&mut s.only_fixable, cx.bool(v, &path)),
            "unknown_severity_as" => {
                if let Some(name) = cx.string(v, &path) {
                    set(&mut s.unknown_severity_as, cx.severity(&name, v.mark, &path));
                }
            }
            "fail_on_stale_exceptions" => set(&mut s.fail_on_stale_exceptions, cx.bool(v, &path)),
            "allow_repo_exceptions" => set(&mut s.allow_repo_exceptions, cx.bool(v, &path)),
            _ => {
                if let Some(list) = cx.sequence(v, &path) {
                    s.exceptions = list
                        .iter()
                        .enumerate()
                        .filter_map(|(i, e)| exception(cx, e, &format!("{path}[{i}]")))
                        .collect();
                }
            }
        }
    }
}

fn exception(cx: &mut Cx, node: &Node, path: &str) -> Option<Exception> {
    let entries = cx.mapping(node, path, EXCEPTION_KEYS);
    if !matches!(node.value, Value::Map(_)) {
        return None;
    }
    let (mut id, mut package, mut repositories, mut expires, mut reason, mut ticket) =
        (None, None, Vec::new(), None, None, None);
    let mut ok = true;
    for (k, _, v) in entries {
        let key = format!("{path}.{k}");
        match k {
            "id" => id = cx.text(v, &key),
            "package" => package = cx.text(v, &key),
            "repositories" => match cx.globs(v, &key) {
                Some(globs) => repositories = globs,
                None => ok = false,
            },
            "expires" => expires = cx.date(v, &key),
            "reason" => reason = cx.text(v, &key),
            _ => ticket = cx.text(v, &key),
        }
    }
    for (name, present) in
        [("id", id.is_some()), ("expires", expires.is_some()), ("reason", reason.is_some())]
    {
        let missing_key =
            !matches!(&node.value, Value::Map(m) if m.iter().any(|(k, _)| k.as_str() == Some(name)));
        if missing_key {
            cx.error(start_mark(node), &format!("{path}.{name}"), "required key is missing".into());
        }
        ok &= present;
    }
    if let Some(r) = &reason
        && r.trim().is_empty()
    {
        cx.error(start_mark(node), &format!("{path}.reason"), "must not be empty".into());
        ok = false;
    }
    if let Some(i) = &id
        && i.trim().is_empty()
    {
        cx.error(start_mark(node), &format!("{path}.id"), "must not be empty".into());
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(Exception {
        id: id?.trim().to_owned(),
        package,
        repositories,
        expires: expires?,
        reason: reason?,
        ticket,
    })
}

fn apply_task_definition(cx: &mut Cx, p: &mut Policy, node: &Node) {
    for (k, _, v) in cx.mapping(node, "task_definition", TASKDEF_KEYS) {
        let path = format!("task_definition.{k}");
        let t = &mut p.task_definition;
        match k {
            "privileged" => set(&mut t.privileged, cx.allowance(v, &path)),
            "host_namespaces" => set(&mut t.host_namespaces, cx.allowance(v, &path)),
            "readonly_root_filesystem" => set(&mut t.readonly_root_filesystem, cx.requirement(v, &path)),
            "non_root_user" => set(&mut t.non_root_user, cx.requirement(v, &path)),
            "allowed_capabilities" => set(&mut t.allowed_capabilities, cx.strings(v, &path)),
            "forbid_env_names" => set(&mut t.forbid_env_names, cx.strings(v, &path)),
            "secret_env_patterns" => {
                if let Some(patterns) = cx.strings_with_marks(v, &path) {
                    let mut valid = true;
                    for (i, (pattern, mark)) in patterns.iter().enumerate() {
                        if let Err(e) = compile_regex(pattern) {
                            cx.error(
                                *mark,
                                &format!("{path}[{i}]"),
                                format!("invalid regular expression: {e}"),
                            );
                            valid = false;
                        }
                    }
                    if valid {
                        t.secret_env_patterns = patterns.into_iter().map(|(p, _)| p).collect();
                    }
                }
            }
            _ => set(&mut t.require_log_configuration, cx.bool(v, &path)),
        }
    }
}

/// Compiles a policy regex with a size limit, so a pattern cannot make the
/// evaluator slow or large.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
        // The regex crate's message spans several lines; the last says what.
        e.to_string().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim().to_owned()
    })
}

fn checks(cx: &mut Cx, node: &Node, path: &str) -> Option<Vec<HttpCheck>> {
    let list = cx.sequence(node, path)?;
    let mut checks = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let entries = cx.mapping(item, &item_path, CHECK_KEYS);
        if !matches!(item.value, Value::Map(_)) {
            continue;
        }
        let mut check = HttpCheck::with_path("");
        let mut has_path = false;
        for (k, _, v) in entries {
            let key = format!("{item_path}.{k}");
            match k {
                "path" => {
                    if let Some(p) = cx.string(v, &key) {
                        if p.starts_with('/') && !p.contains("://") && !p.chars().any(char::is_whitespace) {
                            check.path = p;
                            has_path = true;
                        } else {
                            cx.error(v.mark, &key, format!("must be a path starting with '/', got {p:?}"));
                        }
                    }
                }
                "expect_status" => {
                    if let Some(status) = cx.count(v, &key) {
                        if (100..=599).contains(&status) {
                            check.expect_status = status as u16;
                        } else {
                            cx.error(v.mark, &key, format!("must be an HTTP status (100-599), got {status}"));
                        }
                    }
                }
                "timeout" => {
                    if let Some(t) = cx.duration(v, &key) {
                        if t.seconds == 0 || t > MAX_CHECK_TIMEOUT {
                            cx.error(
                                v.mark,
                                &key,
                                format!("must be between 1s and {MAX_CHECK_TIMEOUT}, got {t}"),
                            );
                        } else {
                            check.timeout = t;
                        }
                    }
                }
                "attempts" => {
                    if let Some(n) = cx.count(v, &key) {
                        if (1..=MAX_ATTEMPTS).contains(&n) {
                            check.attempts = n as u32;
                        } else {
                            cx.error(v.mark, &key, format!("must be between 1 and {MAX_ATTEMPTS}, got {n}"));
                        }
                    }
                }
                _ => {
                    if let Some(hook) = cx.string(v, &key) {
                        if HOOKS.contains(&hook.as_str()) {
                            check.hook = hook;
                        } else {
                            let hint = suggestion(&hook, HOOKS);
                            cx.error(v.mark, &key, format!("unknown hook {hook:?}{hint}"));
                        }
                    }
                }
            }
        }
        if has_path {
            checks.push(check);
        } else if !matches!(&item.value, Value::Map(m) if m.iter().any(|(k, _)| k.as_str() == Some("path"))) {
            cx.error(start_mark(item), &format!("{item_path}.path"), "required key is missing".into());
        }
    }
    Some(checks)
}

/// Collects diagnostics while walking a YAML tree; shared by every document
/// Shipgate validates (policies, routes).
#[derive(Default)]
pub(crate) struct Cx {
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Cx {
    /// Reads a YAML document to validate; a syntax error is the one error.
    pub(crate) fn read(text: &str) -> Result<(Self, Node), Invalid> {
        let mut cx = Cx::default();
        match yaml::parse(text) {
            Ok(root) => Ok((cx, root)),
            Err(e) => {
                cx.error(e.mark, "", format!("YAML syntax: {}", e.message));
                Err(cx.into_invalid())
            }
        }
    }

    pub(crate) fn error(&mut self, mark: Mark, key: &str, message: String) {
        self.errors.push(Diagnostic { line: mark.line, col: mark.col, key: key.to_owned(), message });
    }

    pub(crate) fn into_invalid(mut self) -> Invalid {
        // Environment overlays re-walk the base; report each problem once.
        self.errors.sort();
        self.errors.dedup();
        self.warnings.sort();
        self.warnings.dedup();
        Invalid { errors: self.errors, warnings: self.warnings }
    }

    pub(crate) fn type_error(&mut self, node: &Node, key: &str, expected: &str) {
        self.error(node.mark, key, format!("must be {expected}, got {}", node.kind()));
    }

    /// The entries of a mapping whose keys are strings, reporting unknown keys
    /// (when `known` is not empty) with the nearest known one, and duplicates.
    pub(crate) fn mapping<'a>(
        &mut self,
        node: &'a Node,
        path: &str,
        known: &[&str],
    ) -> Vec<(&'a str, &'a Node, &'a Node)> {
        let Value::Map(entries) = &node.value else {
            if !(matches!(node.value, Value::Null) && path.is_empty()) {
                self.type_error(node, path, "a mapping");
            }
            return Vec::new();
        };
        let mut out: Vec<(&'a str, &'a Node, &'a Node)> = Vec::new();
        for (k, v) in entries {
            let Some(name) = k.as_str() else {
                self.error(k.mark, path, format!("keys must be strings, got {}", k.kind()));
                continue;
            };
            let key_path = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
            if out.iter().any(|(seen, _, _)| *seen == name) {
                self.error(k.mark, &key_path, "duplicate key".into());
                continue;
            }
            if !known.is_empty() && !known.contains(&name) {
                if matches!(name, "version" | "environments") && known == OVERLAY_KEYS {
                    continue; // reported by the overlay check
                }
                let hint = suggestion(name, known);
                self.error(k.mark, &key_path, format!("unknown key{hint}"));
                continue;
            }
            out.push((name, k, v));
        }
        out
    }

    pub(crate) fn sequence<'a>(&mut self, node: &'a Node, path: &str) -> Option<&'a [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.type_error(node, path, "a list");
                None
            }
        }
    }

    pub(crate) fn bool(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.type_error(node, path, "true or false");
                None
            }
        }
    }

    /// A non-negative integer.
    pub(crate) fn count(&mut self, node: &Node, path: &str) -> Option<u64> {
        match node.value {
            Value::Int(i) if i >= 0 => Some(i as u64),
            Value::Int(i) => {
                self.error(node.mark, path, format!("must not be negative, got {i}"));
                None
            }
            _ => {
                self.type_error(node, path, "a non-negative integer");
                None
            }
        }
    }

    pub(crate) fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    /// A scalar read as text (an exception id of `12345` is an id).
    pub(crate) fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = node.scalar_text();
        if text.is_none() {
            self.type_error(node, path, "a string");
        }
        text
    }

    pub(crate) fn strings_with_marks(&mut self, node: &Node, path: &str) -> Option<Vec<(String, Mark)>> {
        let items = self.sequence(node, path)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(item, &format!("{path}[{i}]")) {
                Some(s) => out.push((s, item.mark)),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(crate) fn strings(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        self.strings_with_marks(node, path).map(|v| v.into_iter().map(|(s, _)| s).collect())
    }

    pub(crate) fn globs(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let items = self.strings_with_marks(node, path)?;
        let mut ok = true;
        for (i, (pattern, mark)) in items.iter().enumerate() {
            if let Err(e) = Glob::new(pattern) {
                self.error(*mark, &format!("{path}[{i}]"), e.to_string());
                ok = false;
            }
        }
        ok.then(|| items.into_iter().map(|(s, _)| s).collect())
    }

    pub(crate) fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let parsed = node.as_str().and_then(Duration::parse);
        if parsed.is_none() {
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be a duration like 30s, 30m, 12h or 14d, got {got}"));
        }
        parsed
    }

    pub(crate) fn date(&mut self, node: &Node, path: &str) -> Option<NaiveDate> {
        let parsed = node.as_str().and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok());
        if parsed.is_none() {
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be a date like 2026-12-31, got {got}"));
        }
        parsed
    }

    pub(crate) fn severity(&mut self, name: &str, mark: Mark, path: &str) -> Option<Severity> {
        let parsed = Severity::parse(name);
        if parsed.is_none() {
            let why = if ["UNDEFINED", "UNTRIAGED"].iter().any(|u| u.eq_ignore_ascii_case(name)) {
                " (UNDEFINED and UNTRIAGED findings are counted as scan.unknown_severity_as)".to_owned()
            } else {
                let names: Vec<_> = Severity::ALL.iter().map(|s| s.as_str()).collect();
                suggestion(&name.to_ascii_uppercase(), &names)
            };
            self.error(mark, path, format!("unknown severity {name:?}{why}"));
        }
        parsed
    }

    pub(crate) fn keyword<T: Copy>(&mut self, node: &Node, path: &str, options: &[(&str, T)]) -> Option<T> {
        let found = node.as_str().and_then(|s| options.iter().find(|(name, _)| *name == s)).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
            let got = node.scalar_text().map_or_else(|| node.kind().to_owned(), |t| format!("{t:?}"));
            self.error(node.mark, path, format!("must be {}, got {got}", names.join(" or ")));
        }
        found
    }

    pub(crate) fn allowance(&mut self, node: &Node, path: &str) -> Option<Allowance> {
        self.keyword(node, path, &[("forbid", Allowance::Forbid), ("allow", Allowance::Allow)])
    }

    pub(crate) fn requirement(&mut self, node: &Node, path: &str) -> Option<Requirement> {
        self.keyword(node, path, &[("require", Requirement::Require), ("ignore", Requirement::Ignore)])
    }

    /// Warnings for exceptions already expired or expiring within the window.
    fn exception_warnings(
        &mut self,
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
                self.warnings.push(Diagnostic { line: mark.line, col: mark.col, key, message });
            }
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

/// ` (did you mean 'x'?)` with the nearest candidate by edit distance when
/// it is close, else the list of candidates.
fn suggestion(word: &str, candidates: &[&str]) -> String {
    let word = word.to_ascii_lowercase();
    let nearest = candidates
        .iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), *c))
        .min_by_key(|(d, _)| *d);
    match nearest {
        Some((distance, c)) if distance <= (word.chars().count() / 3).max(2) => {
            format!(" (did you mean '{c}'?)")
        }
        Some(_) => format!(" (expected one of: {})", candidates.join(", ")),
        None => String::new(),
    }
}

/// Where a mapping visibly starts: its first key (the parser marks a block
/// mapping at its first `:`).
pub(crate) fn start_mark(node: &Node) -> Mark {
    match &node.value {
        Value::Map(entries) if !entries.is_empty() => entries[0].0.mark,
        _ => node.mark,
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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
    fn normalised_form_round_trips() {
        let text = include_str!("../../../examples/appsec.yaml");
        let doc = parse_policy(text, None).unwrap().document;
        let back: PolicyDocument = serde_json::from_str(&doc.to_json()).unwrap();
        assert_eq!(back, doc);
    }
}
