//! Judging an image's scan findings against a policy (`docs/policy.md`, "How a scan is judged").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::findings::{BasicFinding, EnhancedFinding, ScanReport, ScanState};
use crate::glob::Glob;
use crate::policy::{EpssMissing, Exception, FailOn, Policy, Severity};

mod caseless;
mod positions;

use caseless::IdIndex;
use positions::Positions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    Pending,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Pending => "PENDING",
        }
    }
}

/// The judgement of one image's scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanVerdict {
    pub verdict: Verdict,
    /// The scan status as ECR reported it (`COMPLETE`, `IN_PROGRESS`, ...).
    pub status: String,
    /// Counted findings per severity (every severity, zeros included), after
    /// exceptions and `only_fixable`.
    pub counts: BTreeMap<Severity, u64>,
    pub violations: Vec<ScanViolation>,
    /// Findings an exception matched: not counted.
    pub excepted: Vec<ExceptedFinding>,
    /// Findings not counted because no fix is available (`only_fixable`).
    pub not_fixable: u64,
    pub expired_exceptions: Vec<ExceptionSummary>,
    pub expiring_exceptions: Vec<ExceptionSummary>,
    pub warnings: Vec<String>,
    /// Under `scan.fail_on.epss_at_least`: the highest EPSS score among the
    /// counted findings, the one the bound was held against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss_highest: Option<ScoredFinding>,
}

/// A finding's id and its EPSS score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredFinding {
    pub id: CompactString,
    pub score: f64,
}

impl ScanVerdict {
    /// A verdict with nothing counted, violated or excepted yet.
    pub fn empty(verdict: Verdict, status: impl Into<String>) -> Self {
        Self {
            verdict,
            status: status.into(),
            counts: Severity::ALL.into_iter().map(|s| (s, 0)).collect(),
            violations: Vec::new(),
            excepted: Vec::new(),
            not_fixable: 0,
            expired_exceptions: Vec::new(),
            expiring_exceptions: Vec::new(),
            warnings: Vec::new(),
            epss_highest: None,
        }
    }
}

/// The verdict on an image that has no scan to judge (outside ECR, or not
/// pinned by digest): FAIL when the policy requires a scan, else PASS with
/// `message` as a warning.
pub fn unscannable(policy: &Policy, message: String) -> ScanVerdict {
    if policy.scan.required {
        let mut verdict = ScanVerdict::empty(Verdict::Fail, "");
        verdict.violations.push(ScanViolation { rule: ScanRule::ScanStatus, severity: None, message });
        verdict
    } else {
        let mut verdict = ScanVerdict::empty(Verdict::Pass, "");
        verdict.warnings.push(message);
        verdict
    }
}

rule_ids! {
    /// The rules a scan can break: the one list of their ids.
    pub enum ScanRule {
        /// `scan.fail_on.exploit_available`: a known exploit.
        ExploitAvailable = "exploit_available",
        /// `scan.fail_on.epss_at_least`.
        Epss = "epss",
        /// `scan.fail_on.epss_missing: fail`: a counted finding has no
        /// EPSS score to hold against `epss_at_least`.
        EpssMissing = "epss_missing",
        /// `scan.thresholds`.
        Threshold = "threshold",
        /// `scan.fail_on_stale_exceptions`: an exception that matched nothing.
        StaleException = "stale_exception",
        /// No completed scan, with `scan.required`.
        ScanStatus = "scan_status",
        /// ECR counts more findings than the scan lists.
        ScanIncomplete = "scan_incomplete",
        /// No policy applies to the repository.
        NoPolicy = "no_policy",
        /// The function's environment has no overlay in the policy.
        UnknownEnvironment = "environment",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanViolation {
    pub rule: ScanRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptedFinding {
    /// Inline when short, as ids and package names are: thousands of
    /// excepted findings cost no allocation each.
    pub id: CompactString,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<CompactString>,
    pub severity: Severity,
    /// Shared by every finding the exception matches: built once per
    /// evaluation, not once per finding.
    pub exception: Arc<ExceptionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExceptionSummary {
    /// Shared with the policy's exception: a summary copies no text.
    pub id: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<Arc<str>>,
    pub expires: NaiveDate,
    pub reason: Arc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Arc<str>>,
}

impl From<&Exception> for ExceptionSummary {
    fn from(e: &Exception) -> Self {
        Self {
            id: e.id.clone(),
            package: e.package.clone(),
            expires: e.expires,
            reason: e.reason.clone(),
            ticket: e.ticket.clone(),
        }
    }
}

/// One finding, reduced to what the rules look at. Borrowed from the report:
/// judging allocates nothing per finding.
struct Finding<'a> {
    /// As the report holds it: an excepted finding's copy is a clone of its
    /// inline bytes, not a new string built from text.
    id: &'a CompactString,
    severity: Severity,
    /// Basic: the `package_name` attribute; enhanced: every vulnerable package.
    packages: Packages<'a>,
    /// Where the rest is read, only for a finding no exception matched.
    enhanced: Option<&'a EnhancedFinding>,
}

impl Finding<'_> {
    /// An enhanced finding whose `fixAvailable` is `NO`.
    fn unfixable(&self) -> bool {
        self.enhanced
            .is_some_and(|e| e.fix_available.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("NO")))
    }

    /// What `scan.fail_on` reads; basic findings carry neither.
    fn risk(&self) -> Option<Risk> {
        self.enhanced.map(|e| Risk { exploitable: e.exploitable(), epss: e.epss.map(|s| s.score) })
    }
}

/// A finding's packages, read where they are, and only when asked: most
/// findings match no exception by id, and their packages are never read.
#[derive(Clone, Copy)]
enum Packages<'a> {
    /// The `package_name` attribute.
    Basic(&'a BasicFinding),
    Enhanced(&'a [crate::findings::VulnerablePackage]),
}

impl<'a> Packages<'a> {
    fn iter(self) -> impl Iterator<Item = &'a str> {
        let (basic, enhanced) = match self {
            Packages::Basic(finding) => (finding.attribute("package_name"), &[][..]),
            Packages::Enhanced(list) => (None, list),
        };
        basic.into_iter().chain(enhanced.iter().map(|p| p.name.as_str()))
    }

    fn first(self) -> Option<&'a str> {
        self.iter().next()
    }
}

/// An enhanced finding's exploitability and EPSS score.
#[derive(Clone, Copy)]
struct Risk {
    exploitable: bool,
    epss: Option<f64>,
}

/// Where the severity names of ECR and Inspector map to ours.
#[inline]
fn severity_of(raw: &str, unknown_as: Severity) -> Severity {
    // Both write the names in capitals: one comparison, as a rule.
    // By length first: one jump, then one comparison of known length
    // (a `match` on the texts would compare them in turn).
    match raw.len() {
        8 if raw == "CRITICAL" => Severity::Critical,
        4 if raw == "HIGH" => Severity::High,
        6 if raw == "MEDIUM" => Severity::Medium,
        3 if raw == "LOW" => Severity::Low,
        13 if raw == "INFORMATIONAL" => Severity::Informational,
        // ECR's and Inspector's names for a severity not (yet) assigned.
        9 if raw == "UNDEFINED" || raw == "UNTRIAGED" => unknown_as,
        _ => severity_written_otherwise(raw, unknown_as),
    }
}

/// A severity in other case or with spaces around it; else `unknown_as`.
#[cold]
fn severity_written_otherwise(raw: &str, unknown_as: Severity) -> Severity {
    Severity::parse(raw.trim()).unwrap_or(unknown_as)
}

/// The report's basic and enhanced findings, in [`findings`]' order.
fn parts(report: &ScanReport) -> (&[BasicFinding], &[EnhancedFinding]) {
    match &report.image_scan_findings {
        Some(f) => (&f.findings[..], &f.enhanced_findings[..]),
        None => (&[][..], &[][..]),
    }
}

/// The report's findings: its basic ones, then its enhanced ones.
fn findings(report: &ScanReport, unknown_as: Severity) -> impl Iterator<Item = Finding<'_>> {
    let (basic, enhanced) = parts(report);
    let basic = basic.iter().map(move |b| basic_finding(b, unknown_as));
    basic.chain(enhanced.iter().map(move |e| enhanced_finding(e, unknown_as)))
}

/// The finding at `position` in [`findings`].
fn finding_at(report: &ScanReport, position: usize, unknown_as: Severity) -> Option<Finding<'_>> {
    let (basic, enhanced) = parts(report);
    match basic.get(position) {
        Some(b) => Some(basic_finding(b, unknown_as)),
        None => enhanced.get(position - basic.len()).map(|e| enhanced_finding(e, unknown_as)),
    }
}

fn basic_finding(b: &BasicFinding, unknown_as: Severity) -> Finding<'_> {
    Finding {
        id: &b.name,
        severity: severity_of(&b.severity, unknown_as),
        packages: Packages::Basic(b),
        enhanced: None,
    }
}

fn enhanced_finding(e: &EnhancedFinding, unknown_as: Severity) -> Finding<'_> {
    Finding {
        id: enhanced_id(e),
        severity: severity_of(&e.severity, unknown_as),
        packages: Packages::Enhanced(
            e.package_vulnerability_details.as_ref().map_or(&[][..], |d| &d.vulnerable_packages[..]),
        ),
        enhanced: Some(e),
    }
}

fn enhanced_id(e: &EnhancedFinding) -> &CompactString {
    static NONE: CompactString = CompactString::const_new("");
    e.package_vulnerability_details.as_ref().map_or(&NONE, |d| &d.vulnerability_id)
}

/// An exception in force for this repository, and whether it matched.
struct ActiveException<'a> {
    exception: &'a Exception,
    /// What an excepted finding's record says of it, built on first use.
    summary: Option<Arc<ExceptionSummary>>,
    matched: bool,
}

/// True when the exception's `repositories` (if any) match the repository.
/// Globs are compiled once per evaluation, however many exceptions share them.
fn applies_to<'p>(e: &'p Exception, repository: &str, compiled: &mut HashMap<&'p str, bool>) -> bool {
    e.repositories.is_empty()
        || e.repositories.iter().any(|g| {
            *compiled
                .entry(g.as_str())
                .or_insert_with(|| Glob::new(g).is_ok_and(|glob| glob.is_match(repository)))
        })
}

/// Judges a scan report for `repository` at `now`: the exceptions in force,
/// whether the scan can be judged at all, which findings count, then the
/// rules they break.
pub fn evaluate_scan(
    policy: &Policy,
    repository: &str,
    report: &ScanReport,
    now: DateTime<Utc>,
) -> ScanVerdict {
    let scan = &policy.scan;
    let status = report.status().unwrap_or_default().to_owned();
    let mut verdict = ScanVerdict::empty(Verdict::Pass, status);
    let mut active = exceptions_in_force(policy, repository, now, &mut verdict);
    if let Some(judged) = unjudgeable(scan.required, report, verdict.clone()) {
        return judged;
    }
    let count = count_findings(policy, report, &mut active, &mut verdict);
    if scan.fail_on.exploit_available && count.basic_counted > 0 {
        verdict.warnings.push(format!(
            "scan.fail_on.exploit_available does not apply to the {} basic-scan finding(s): basic scanning does not report exploitAvailable",
            count.basic_counted
        ));
    }
    verdict.epss_highest = count.epss_highest.clone();
    verdict.violations.extend(count.risky.iter().cloned());
    let unscored = count.without_epss + count.basic_counted;
    if scan.fail_on.reads_epss() && unscored > 0 {
        let ids = sample(unscored_ids(report, &count), unscored, 3);
        let what = format!(
            "{unscored} counted finding(s) carry no EPSS score ({ids}), so scan.fail_on.epss_at_least could not judge them"
        );
        match scan.fail_on.epss_missing {
            EpssMissing::Warn => verdict.warnings.push(format!("{what} (scan.fail_on.epss_missing: warn)")),
            EpssMissing::Fail => verdict.violations.push(ScanViolation {
                rule: ScanRule::EpssMissing,
                severity: None,
                message: format!("{what}; set scan.fail_on.epss_missing: warn to let them pass"),
            }),
        }
    }

    for severity in Severity::ALL {
        *verdict.counts.entry(severity).or_default() += count.by_severity[severity as usize];
    }
    verdict.violations.extend(threshold_violations(policy, report, &count));
    if scan.fail_on_stale_exceptions {
        verdict.violations.extend(active.iter().filter(|a| !a.matched).map(|a| ScanViolation {
            rule: ScanRule::StaleException,
            severity: None,
            message: format!(
                "exception {} (expires {}) matches no finding in this image; remove it",
                a.exception.id, a.exception.expires
            ),
        }));
    }
    if !verdict.violations.is_empty() {
        verdict.verdict = Verdict::Fail;
    }
    verdict
}

/// The exceptions that apply to this repository and are in force; expired
/// and expiring ones are listed in the verdict. Expiring: within the warning
/// window of its end (an end at or before `now + window`, which is
/// `end - now <= window` without a subtraction per exception).
fn exceptions_in_force<'p>(
    policy: &'p Policy,
    repository: &str,
    now: DateTime<Utc>,
    verdict: &mut ScanVerdict,
) -> Vec<ActiveException<'p>> {
    let window = policy.notifications.exception_expiry_warning.as_chrono();
    let warn_from = now.checked_add_signed(window).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let mut active = Vec::new();
    let mut globs: HashMap<&str, bool> = HashMap::new();
    for e in policy.scan.exceptions.iter().filter(|e| applies_to(e, repository, &mut globs)) {
        let ends = e.expired_from();
        if now >= ends {
            verdict.expired_exceptions.push(e.into());
        } else {
            if ends <= warn_from {
                verdict.expiring_exceptions.push(e.into());
            }
            active.push(ActiveException { exception: e, summary: None, matched: false });
        }
    }
    active
}

/// The verdict on a scan that cannot be judged by its findings (still
/// running, failed, or complete with findings that disagree with ECR's
/// counts or are missing); `None` for a complete scan.
fn unjudgeable(required: bool, report: &ScanReport, mut verdict: ScanVerdict) -> Option<ScanVerdict> {
    match (report.state(), report.incompleteness()) {
        // Findings that disagree with ECR's counts, or none at all, cannot
        // be judged: passing them would pass what was not seen.
        (ScanState::Complete(_), Some(why)) => {
            verdict.verdict = Verdict::Fail;
            verdict.violations.push(ScanViolation {
                rule: ScanRule::ScanIncomplete,
                severity: None,
                message: format!("{why}; the findings are incomplete, so the scan cannot be judged"),
            });
        }
        (ScanState::Complete(_), None) => return None,
        (ScanState::Running(_), _) => verdict.verdict = Verdict::Pending,
        (ScanState::Unusable(other), _) => {
            let shown = if other.is_empty() { "missing" } else { other.as_str() };
            let description = report
                .image_scan_status
                .as_ref()
                .and_then(|s| s.description.as_deref())
                .filter(|d| !d.is_empty())
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let message = format!("scan status is {shown}{description}; no completed scan to judge");
            if required {
                verdict.verdict = Verdict::Fail;
                verdict.violations.push(ScanViolation {
                    rule: ScanRule::ScanStatus,
                    severity: None,
                    message,
                });
            } else {
                verdict.warnings.push(format!("{message} (scan.required is false, so this passes)"));
            }
        }
    }
    Some(verdict)
}

/// What counting a complete scan's findings found.
struct Count {
    /// Counted findings per severity, indexed as `Severity::ALL`: a plain
    /// array, no map lookup per finding.
    by_severity: [u64; Severity::ALL.len()],
    /// Which ones, a bit per report position, for a broken threshold's message.
    at: Positions,
    /// `scan.fail_on` violations: known exploits first, then EPSS, each in
    /// finding order (what to fix first).
    risky: Vec<ScanViolation>,
    /// Counted basic findings, which `scan.fail_on` cannot judge.
    basic_counted: u64,
    /// Counted enhanced findings without an EPSS score.
    without_epss: u64,
    /// The counted finding with the highest EPSS score, under a policy that
    /// reads scores.
    epss_highest: Option<ScoredFinding>,
}

/// Counts the findings no exception matched (and, with `only_fixable`, that
/// can be fixed), recording the excepted ones and the unfixable count in the
/// verdict and which exceptions matched in `active`.
fn count_findings(
    policy: &Policy,
    report: &ScanReport,
    active: &mut [ActiveException<'_>],
    verdict: &mut ScanVerdict,
) -> Count {
    let scan = &policy.scan;
    let by_id = IdIndex::new(active.iter().map(|a| &*a.exception.id));
    let (basic, enhanced) = parts(report);
    let mut count = Count {
        by_severity: [0; Severity::ALL.len()],
        at: Positions::new(basic.len() + enhanced.len()),
        risky: Vec::new(),
        basic_counted: 0,
        without_epss: 0,
        epss_highest: None,
    };
    for (position, finding) in findings(report, scan.unknown_severity_as).enumerate() {
        // Every exception that matches the finding is in use (none of them is
        // stale); the first one is the one the finding is listed under.
        let mut first_match: Option<usize> = None;
        for i in by_id.positions(finding.id) {
            let applies = match &active[i].exception.package {
                Some(p) => finding.packages.iter().any(|fp| fp == &**p),
                None => true,
            };
            if applies {
                active[i].matched = true;
                first_match.get_or_insert(i);
            }
        }
        if let Some(i) = first_match {
            let a = &mut active[i];
            let e = a.exception;
            let summary = a.summary.get_or_insert_with(|| Arc::new(e.into()));
            verdict.excepted.push(ExceptedFinding {
                id: finding.id.clone(),
                package: e.package.as_deref().or_else(|| finding.packages.first()).map(Into::into),
                severity: finding.severity,
                exception: Arc::clone(summary),
            });
            continue;
        }
        if scan.only_fixable && finding.unfixable() {
            verdict.not_fixable += 1;
            continue;
        }
        count.by_severity[finding.severity as usize] += 1;
        count.at.insert(position);
        // Exploitability and EPSS are read only for a policy that judges them.
        if scan.fail_on.is_on() {
            match finding.risk() {
                None => count.basic_counted += 1,
                Some(risk) => {
                    count.without_epss += u64::from(risk.epss.is_none());
                    if let Some(score) = risk.epss.filter(|_| scan.fail_on.reads_epss())
                        && count.epss_highest.as_ref().is_none_or(|h| score > h.score)
                    {
                        count.epss_highest = Some(ScoredFinding { id: finding.id.clone(), score });
                    }
                    fail_on_violations(scan.fail_on, &finding, risk, &mut count.risky);
                }
            }
        }
    }
    count.risky.sort_by_key(|v| v.rule != ScanRule::ExploitAvailable);
    count
}

/// The ids of the counted findings without an EPSS score (basic ones, and
/// enhanced ones Inspector gave no score), in report order, read again
/// from the report: only a verdict that names them pays for it.
fn unscored_ids<'a>(report: &'a ScanReport, count: &'a Count) -> impl Iterator<Item = &'a str> + 'a {
    // The severity is not read here: any will do.
    count
        .at
        .iter()
        .filter_map(|p| finding_at(report, p, Severity::Low))
        .filter(|finding| finding.risk().is_none_or(|r| r.epss.is_none()))
        .map(|finding| finding.id.as_str())
}

/// A violation per broken threshold, naming its counted findings, read again
/// from the report: only a failing image pays for naming them.
fn threshold_violations(policy: &Policy, report: &ScanReport, count: &Count) -> Vec<ScanViolation> {
    let scan = &policy.scan;
    let counted = &count.by_severity;
    let broken =
        |severity: Severity| scan.thresholds.get(&severity).is_some_and(|l| counted[severity as usize] > *l);
    if !Severity::ALL.into_iter().any(broken) {
        return Vec::new();
    }
    let mut offenders: [Vec<(bool, &str)>; Severity::ALL.len()] = Default::default();
    for finding in count.at.iter().filter_map(|p| finding_at(report, p, scan.unknown_severity_as)) {
        if broken(finding.severity) {
            let exploitable = finding.risk().is_some_and(|r| r.exploitable);
            offenders[finding.severity as usize].push((exploitable, finding.id));
        }
    }
    let mut violations = Vec::new();
    for (severity, limit) in scan.thresholds.iter().filter(|(s, _)| broken(**s)) {
        let counted = counted[*severity as usize];
        // Known exploits first, then the rest, each in finding order.
        let of = |exploitable: bool| {
            offenders[*severity as usize].iter().filter(move |(e, _)| *e == exploitable).map(|(_, id)| *id)
        };
        let ids = sample(of(true).chain(of(false)), counted, 3);
        let noun = if counted == 1 { "finding" } else { "findings" };
        violations.push(ScanViolation {
            rule: ScanRule::Threshold,
            severity: Some(*severity),
            message: format!("{counted} {severity} {noun}, more than the {limit} allowed ({ids})"),
        });
    }
    violations
}

/// The `scan.fail_on` rules a counted enhanced finding breaks.
fn fail_on_violations(fail_on: FailOn, finding: &Finding<'_>, risk: Risk, out: &mut Vec<ScanViolation>) {
    let exploit = fail_on.exploit_available && risk.exploitable;
    let epss = risk.epss.filter(|s| fail_on.epss_at_least > 0.0 && *s >= fail_on.epss_at_least);
    if !exploit && epss.is_none() {
        return;
    }
    let package = finding.packages.first().map(|p| format!(" in {p}")).unwrap_or_default();
    let named = format!("{}{package} ({})", finding.id, finding.severity);
    if exploit {
        out.push(ScanViolation {
            rule: ScanRule::ExploitAvailable,
            severity: Some(finding.severity),
            message: format!(
                "{named} has a known exploit (exploitAvailable YES), which scan.fail_on.exploit_available forbids"
            ),
        });
    }
    if let Some(score) = epss {
        out.push(ScanViolation {
            rule: ScanRule::Epss,
            severity: Some(finding.severity),
            message: format!(
                "{named} has EPSS score {score}, at least the {} of scan.fail_on.epss_at_least",
                fail_on.epss_at_least
            ),
        });
    }
}

/// `a, b, c and 4 more`: the first `n` distinct ids of `count` at most, in
/// order, and how many distinct ones are left (one pass, a set, not a scan of
/// the ids seen so far per id).
fn sample<'a>(ids: impl Iterator<Item = &'a str>, count: u64, n: usize) -> String {
    let mut unique: HashSet<&str> = HashSet::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut shown: Vec<&str> = Vec::with_capacity(n);
    for id in ids {
        if unique.insert(id) && shown.len() < n {
            shown.push(id);
        }
    }
    let more = unique.len() - shown.len();
    let shown = shown.join(", ");
    if more > 0 { format!("{shown} and {more} more") } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_scan_is_named_with_ecrs_description() {
        let report: ScanReport = serde_json::from_value(serde_json::json!({
            "imageScanStatus": {"status": "UNSUPPORTED_IMAGE", "description": "The operating system is not supported"}}))
        .unwrap();
        let v = evaluate_scan(&Policy::default(), "web", &report, "2026-11-28T12:00:00Z".parse().unwrap());
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(
            v.violations[0].message,
            "scan status is UNSUPPORTED_IMAGE: The operating system is not supported; no completed scan to judge"
        );
        let bare: ScanReport = serde_json::from_value(
            serde_json::json!({"imageScanStatus": {"status": "FAILED", "description": ""}}),
        )
        .unwrap();
        let v = evaluate_scan(&Policy::default(), "web", &bare, "2026-11-28T12:00:00Z".parse().unwrap());
        assert_eq!(v.violations[0].message, "scan status is FAILED; no completed scan to judge");
    }

    #[test]
    fn verdicts_read_as_their_serialized_names() {
        for v in [Verdict::Pass, Verdict::Fail, Verdict::Pending] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }
    use crate::findings::{
        Attribute, BasicFinding, EnhancedFinding, ImageScanFindings, PackageVulnerabilityDetails, ScanStatus,
        VulnerablePackage,
    };
    use crate::validate::parse_policy;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    fn policy(yaml: &str) -> Policy {
        parse_policy(&format!("version: 1\n{yaml}"), None).unwrap().document.policy
    }

    fn basic(id: &str, severity: &str, package: &str) -> BasicFinding {
        BasicFinding {
            name: id.into(),
            uri: None,
            severity: severity.into(),
            attributes: vec![Attribute { key: "package_name".into(), value: Some(package.into()) }],
        }
    }

    fn enhanced(id: &str, severity: &str, packages: &[&str], fix: &str) -> EnhancedFinding {
        EnhancedFinding {
            severity: severity.into(),
            title: None,
            status: Some("ACTIVE".into()),
            fix_available: Some(fix.into()),
            package_vulnerability_details: Some(PackageVulnerabilityDetails {
                vulnerability_id: id.into(),
                vulnerable_packages: packages
                    .iter()
                    .map(|p| VulnerablePackage { name: (*p).into(), ..Default::default() })
                    .collect(),
                source_url: None,
            }),
            exploit_available: None,
            epss: None,
        }
    }

    /// An enhanced finding with its exploit flag and EPSS score.
    fn risky(id: &str, severity: &str, package: &str, exploit: bool, epss: Option<f64>) -> EnhancedFinding {
        EnhancedFinding {
            exploit_available: Some(if exploit { "YES" } else { "NO" }.into()),
            epss: epss.map(|score| crate::findings::Epss { score }),
            ..enhanced(id, severity, &[package], "YES")
        }
    }

    fn report(status: &str, basic: Vec<BasicFinding>, enhanced: Vec<EnhancedFinding>) -> ScanReport {
        ScanReport {
            image_scan_status: Some(ScanStatus { status: status.into(), description: None }),
            image_scan_findings: Some(ImageScanFindings {
                findings: basic,
                enhanced_findings: enhanced,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const EXCEPTION: &str = "scan:\n  exceptions:\n    - {id: cve-2024-1, package: openssl, repositories: ['payments-*'], expires: 2026-12-31, reason: r}\n";

    #[test]
    fn matching_exception_removes_the_finding_from_the_counts() {
        let r = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "openssl")], vec![]);
        let v = evaluate_scan(&policy(EXCEPTION), "payments-api", &r, now());
        assert_eq!(v.verdict, Verdict::Pass);
        assert!(v.counts.values().all(|&c| c == 0));
        assert_eq!(v.excepted.len(), 1);
        assert_eq!(v.excepted[0].exception.id.as_ref(), "cve-2024-1");
    }

    #[test]
    fn exception_for_another_package_or_repository_does_not_apply() {
        let other_package = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "libssl")], vec![]);
        assert_eq!(
            evaluate_scan(&policy(EXCEPTION), "payments-api", &other_package, now()).verdict,
            Verdict::Fail
        );
        let r = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "openssl")], vec![]);
        assert_eq!(evaluate_scan(&policy(EXCEPTION), "billing", &r, now()).verdict, Verdict::Fail);
    }

    #[test]
    fn expired_exception_does_not_apply() {
        let r = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "openssl")], vec![]);
        let p = policy(EXCEPTION);
        let last_instant: DateTime<Utc> = "2026-12-31T23:59:59.999999999Z".parse().unwrap();
        assert_eq!(evaluate_scan(&p, "payments-api", &r, last_instant).verdict, Verdict::Pass);
        let next_day: DateTime<Utc> = "2027-01-01T00:00:00Z".parse().unwrap();
        let v = evaluate_scan(&p, "payments-api", &r, next_day);
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.expired_exceptions.len(), 1);
        assert!(v.excepted.is_empty());
    }

    #[test]
    fn exception_within_the_warning_window_is_listed_as_expiring() {
        let r = report("COMPLETE", vec![], vec![]);
        let soon: DateTime<Utc> = "2026-12-20T00:00:00Z".parse().unwrap();
        let v = evaluate_scan(&policy(EXCEPTION), "payments-api", &r, soon);
        assert_eq!(v.expiring_exceptions.len(), 1);
        assert!(evaluate_scan(&policy(EXCEPTION), "payments-api", &r, now()).expiring_exceptions.is_empty());
    }

    /// The window's last instant is in it (an exception ending exactly 14
    /// days from now is expiring; one nanosecond earlier it is not yet), as
    /// the notifier's daily digest counts it.
    #[test]
    fn the_warning_window_ends_where_the_daily_digest_ends_it() {
        let r = report("COMPLETE", vec![], vec![]);
        let p = policy(EXCEPTION);
        let edge: DateTime<Utc> = "2026-12-18T00:00:00Z".parse().unwrap();
        let before = edge - chrono::Duration::nanoseconds(1);
        for (at, expiring) in [(edge, 1), (before, 0)] {
            assert_eq!(evaluate_scan(&p, "payments-api", &r, at).expiring_exceptions.len(), expiring, "{at}");
            assert_eq!(crate::notify::expiring_exceptions("k", &p, at).len(), expiring, "{at}");
        }
    }

    #[test]
    fn enhanced_exception_matches_any_vulnerable_package() {
        let r = report(
            "ACTIVE",
            vec![],
            vec![enhanced("CVE-2024-1", "CRITICAL", &["libcrypto", "openssl"], "YES")],
        );
        assert_eq!(evaluate_scan(&policy(EXCEPTION), "payments-api", &r, now()).verdict, Verdict::Pass);
    }

    #[test]
    fn thresholds_fail_when_exceeded_and_name_the_findings() {
        let r = report(
            "COMPLETE",
            (0..3).map(|i| basic(&format!("CVE-2026-{i}"), "HIGH", "x")).collect(),
            vec![],
        );
        let v = evaluate_scan(&policy("scan: {thresholds: {HIGH: 2}}"), "r", &r, now());
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.counts[&Severity::High], 3);
        assert_eq!(
            v.violations[0].message,
            "3 HIGH findings, more than the 2 allowed (CVE-2026-0, CVE-2026-1, CVE-2026-2)"
        );
        let v = evaluate_scan(&policy("scan: {thresholds: {HIGH: 3}}"), "r", &r, now());
        assert_eq!(v.verdict, Verdict::Pass, "equal to the threshold passes");
    }

    #[test]
    fn unlisted_severity_is_unlimited() {
        let r = report("COMPLETE", (0..500).map(|i| basic(&format!("C-{i}"), "LOW", "x")).collect(), vec![]);
        assert_eq!(evaluate_scan(&Policy::default(), "r", &r, now()).verdict, Verdict::Pass);
    }

    #[test]
    fn undefined_and_untriaged_count_as_the_configured_severity() {
        let r = report(
            "COMPLETE",
            vec![basic("C-1", "UNDEFINED", "x")],
            vec![enhanced("C-2", "UNTRIAGED", &["y"], "YES")],
        );
        let v = evaluate_scan(&policy("scan: {unknown_severity_as: MEDIUM}"), "r", &r, now());
        assert_eq!(v.counts[&Severity::Medium], 2);
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(evaluate_scan(&Policy::default(), "r", &r, now()).verdict, Verdict::Fail, "default: HIGH");
    }

    #[test]
    fn only_fixable_skips_enhanced_findings_without_a_fix_but_never_basic_ones() {
        let r = report(
            "ACTIVE",
            vec![basic("C-1", "HIGH", "x")],
            vec![enhanced("C-2", "CRITICAL", &["y"], "NO"), enhanced("C-3", "LOW", &["z"], "PARTIAL")],
        );
        let v = evaluate_scan(&policy("scan: {only_fixable: true}"), "r", &r, now());
        assert_eq!(v.not_fixable, 1);
        assert_eq!(
            (v.counts[&Severity::High], v.counts[&Severity::Low], v.counts[&Severity::Critical]),
            (1, 1, 0)
        );
    }

    #[test]
    fn a_complete_scan_that_lists_fewer_findings_than_it_counts_fails() {
        let mut r = report("COMPLETE", vec![], vec![]);
        r.image_scan_findings.as_mut().unwrap().finding_severity_counts = [("CRITICAL".to_owned(), 5)].into();
        let lenient = policy("scan:\n  required: false\n");
        let v = evaluate_scan(&lenient, "payments-api", &r, now());
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.violations[0].rule, "scan_incomplete");
        assert!(v.violations[0].message.contains("counts 5"), "{}", v.violations[0].message);
        let mut listed = report("COMPLETE", vec![basic("CVE-2024-1", "LOW", "x")], vec![]);
        listed.image_scan_findings.as_mut().unwrap().finding_severity_counts = [("LOW".to_owned(), 1)].into();
        assert_eq!(evaluate_scan(&lenient, "payments-api", &listed, now()).verdict, Verdict::Pass);
        // Equal totals, different severities: the CRITICAL was never seen.
        let mut swapped = report("COMPLETE", vec![basic("CVE-2024-1", "LOW", "x")], vec![]);
        swapped.image_scan_findings.as_mut().unwrap().finding_severity_counts =
            [("CRITICAL".to_owned(), 1)].into();
        let v = evaluate_scan(&lenient, "payments-api", &swapped, now());
        assert_eq!((v.verdict, v.violations[0].rule), (Verdict::Fail, ScanRule::ScanIncomplete));
        assert!(v.violations[0].message.contains("1 CRITICAL"), "{}", v.violations[0].message);
        // COMPLETE, and no findings object at all.
        let mut bare = report("COMPLETE", vec![], vec![]);
        bare.image_scan_findings = None;
        let v = evaluate_scan(&lenient, "payments-api", &bare, now());
        assert_eq!((v.verdict, v.violations[0].rule), (Verdict::Fail, ScanRule::ScanIncomplete));
    }

    /// Exceptions sharing one id (in any case) are all tried, in policy
    /// order: the finding is listed under the first that applies, every one
    /// that applies is in use, and one for another package is stale.
    #[test]
    fn every_exception_for_one_id_is_tried_in_policy_order() {
        let yaml = "scan:\n  fail_on_stale_exceptions: true\n  exceptions:\n    - {id: cve-2024-1, package: zlib, expires: 2027-01-31, reason: first}\n    - {id: CVE-2024-1, package: openssl, expires: 2027-01-31, reason: second}\n    - {id: Cve-2024-1, package: openssl, expires: 2027-01-31, reason: third}\n";
        let r = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "openssl")], vec![]);
        let v = evaluate_scan(&policy(yaml), "payments-api", &r, now());
        assert_eq!(v.excepted.len(), 1);
        assert_eq!(v.excepted[0].exception.reason.as_ref(), "second");
        let stale: Vec<&str> = v.violations.iter().map(|x| x.message.as_str()).collect();
        assert_eq!(
            stale,
            ["exception cve-2024-1 (expires 2027-01-31) matches no finding in this image; remove it"]
        );
    }

    #[test]
    fn an_exception_that_matches_a_finding_another_also_matches_is_not_stale() {
        let yaml = "scan:\n  fail_on_stale_exceptions: true\n  exceptions:\n    - {id: CVE-2024-1, expires: 2027-01-31, reason: r}\n    - {id: CVE-2024-1, repositories: [payments-*], expires: 2027-01-31, reason: narrower}\n";
        let r = report("COMPLETE", vec![basic("CVE-2024-1", "CRITICAL", "openssl")], vec![]);
        let v = evaluate_scan(&policy(yaml), "payments-api", &r, now());
        assert!(v.violations.iter().all(|x| x.rule != "stale_exception"), "{:?}", v.violations);
        assert_eq!(v.verdict, Verdict::Pass);
    }

    #[test]
    fn stale_exception_fails_only_when_asked_to() {
        let r = report("COMPLETE", vec![], vec![]);
        let stale = format!("{EXCEPTION}  fail_on_stale_exceptions: true\n");
        let v = evaluate_scan(&policy(&stale), "payments-api", &r, now());
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.violations[0].rule, "stale_exception");
        assert_eq!(
            evaluate_scan(&policy(&stale), "billing", &r, now()).verdict,
            Verdict::Pass,
            "not this repo's"
        );
        assert_eq!(evaluate_scan(&policy(EXCEPTION), "payments-api", &r, now()).verdict, Verdict::Pass);
    }

    #[test]
    fn statuses_are_handled_as_written() {
        for status in ["IN_PROGRESS", "PENDING"] {
            assert_eq!(
                evaluate_scan(&Policy::default(), "r", &report(status, vec![], vec![]), now()).verdict,
                Verdict::Pending
            );
        }
        for status in [
            "FAILED",
            "UNSUPPORTED_IMAGE",
            "FINDINGS_UNAVAILABLE",
            "SCAN_ELIGIBILITY_EXPIRED",
            "LIMIT_EXCEEDED",
            "",
        ] {
            let r = report(status, vec![basic("C-1", "CRITICAL", "x")], vec![]);
            let v = evaluate_scan(&Policy::default(), "r", &r, now());
            assert_eq!(v.verdict, Verdict::Fail, "{status}");
            assert!(v.violations[0].message.contains(if status.is_empty() { "missing" } else { status }));
            let lenient = evaluate_scan(&policy("scan: {required: false}"), "r", &r, now());
            assert_eq!(lenient.verdict, Verdict::Pass, "{status}");
            assert_eq!(lenient.warnings.len(), 1);
        }
    }

    fn fail_on(yaml: &str) -> Policy {
        policy(&format!("scan:\n  thresholds: {{}}\n  fail_on: {yaml}\n"))
    }

    #[test]
    fn a_counted_exploitable_finding_fails_whatever_its_severity_and_comes_first() {
        let r = report(
            "ACTIVE",
            vec![],
            vec![
                risky("CVE-2026-10", "HIGH", "zlib", false, Some(0.9)),
                risky("CVE-2026-11", "LOW", "openssl", true, Some(0.1)),
            ],
        );
        let p = policy(
            "scan:\n  thresholds: {HIGH: 0}\n  fail_on: {exploit_available: true, epss_at_least: 0.5}\n",
        );
        let v = evaluate_scan(&p, "r", &r, now());
        assert_eq!(v.verdict, Verdict::Fail);
        let highest = v.epss_highest.as_ref().unwrap();
        assert_eq!(
            (highest.id.as_str(), highest.score),
            ("CVE-2026-10", 0.9),
            "the score the bound was held to"
        );
        let rules: Vec<&str> = v.violations.iter().map(|x| x.rule.as_str()).collect();
        assert_eq!(rules, ["exploit_available", "epss", "threshold"]);
        assert_eq!(
            v.violations[0].message,
            "CVE-2026-11 in openssl (LOW) has a known exploit (exploitAvailable YES), which scan.fail_on.exploit_available forbids"
        );
        assert_eq!(
            v.violations[1].message,
            "CVE-2026-10 in zlib (HIGH) has EPSS score 0.9, at least the 0.5 of scan.fail_on.epss_at_least"
        );
        let off = evaluate_scan(&policy("scan: {thresholds: {}}"), "r", &r, now());
        assert_eq!(off.verdict, Verdict::Pass, "fail_on is off by default");
    }

    #[test]
    fn epss_fails_from_the_bound_up() {
        let at = |score| report("ACTIVE", vec![], vec![risky("CVE-2026-1", "LOW", "x", false, Some(score))]);
        let p = fail_on("{epss_at_least: 0.5}");
        assert_eq!(
            evaluate_scan(&p, "r", &at(0.5), now()).verdict,
            Verdict::Fail,
            "equal to the bound fails"
        );
        assert_eq!(evaluate_scan(&p, "r", &at(0.4999), now()).verdict, Verdict::Pass);
        let zero = fail_on("{epss_at_least: 0}");
        assert_eq!(evaluate_scan(&zero, "r", &at(1.0), now()).verdict, Verdict::Pass, "0 is off");
    }

    #[test]
    fn an_excepted_or_unfixable_exploitable_finding_does_not_fail() {
        let r = report("ACTIVE", vec![], vec![risky("CVE-2024-1", "CRITICAL", "openssl", true, Some(0.97))]);
        let excepted = format!(
            "{EXCEPTION}  thresholds: {{}}\n  fail_on: {{exploit_available: true, epss_at_least: 0.1}}\n"
        );
        let v = evaluate_scan(&policy(&excepted), "payments-api", &r, now());
        assert_eq!(v.verdict, Verdict::Pass, "{:?}", v.violations);
        assert_eq!(v.excepted.len(), 1);
        let mut unfixable = r.clone();
        unfixable.image_scan_findings.as_mut().unwrap().enhanced_findings[0].fix_available =
            Some("NO".into());
        let p =
            policy("scan:\n  thresholds: {}\n  only_fixable: true\n  fail_on: {exploit_available: true}\n");
        assert_eq!(evaluate_scan(&p, "r", &unfixable, now()).verdict, Verdict::Pass);
    }

    #[test]
    fn a_finding_without_an_epss_score_fails_unless_the_policy_says_warn() {
        let r = report(
            "COMPLETE",
            vec![basic("CVE-2026-1", "LOW", "x"), basic("CVE-2026-2", "LOW", "y")],
            vec![
                risky("CVE-2026-3", "LOW", "z", false, None),
                risky("CVE-2026-4", "LOW", "w", false, Some(0.2)),
            ],
        );
        let unscored = "3 counted finding(s) carry no EPSS score (CVE-2026-1, CVE-2026-2, CVE-2026-3), so scan.fail_on.epss_at_least could not judge them";
        let basic_warning = "scan.fail_on.exploit_available does not apply to the 2 basic-scan finding(s): basic scanning does not report exploitAvailable";
        let v = evaluate_scan(&fail_on("{exploit_available: true, epss_at_least: 0.5}"), "r", &r, now());
        assert_eq!(v.verdict, Verdict::Fail);
        assert_eq!(v.violations.len(), 1);
        assert_eq!(v.violations[0].rule, ScanRule::EpssMissing);
        assert_eq!(
            v.violations[0].message,
            format!("{unscored}; set scan.fail_on.epss_missing: warn to let them pass")
        );
        assert_eq!(v.warnings, [basic_warning]);
        assert_eq!(v.epss_highest.as_ref().map(|h| h.score), Some(0.2));

        let warn = fail_on("{exploit_available: true, epss_at_least: 0.5, epss_missing: warn}");
        let v = evaluate_scan(&warn, "r", &r, now());
        assert_eq!(v.verdict, Verdict::Pass);
        assert_eq!(
            v.warnings,
            [basic_warning.to_owned(), format!("{unscored} (scan.fail_on.epss_missing: warn)")]
        );
        let exploit_only = evaluate_scan(&fail_on("{exploit_available: true}"), "r", &r, now());
        assert_eq!(exploit_only.verdict, Verdict::Pass, "no EPSS bound, no score needed");
        assert!(exploit_only.epss_highest.is_none());
        let quiet = evaluate_scan(&policy("scan: {thresholds: {}}"), "r", &r, now());
        assert!(quiet.warnings.is_empty(), "no fail_on, nothing to say");
    }

    /// A failing image lists the same id once per package: the message names
    /// distinct ids, in finding order, and counts the distinct rest, of
    /// another severity's findings none.
    #[test]
    fn threshold_messages_count_distinct_ids() {
        let basics = (0..3000)
            .map(|i| basic(&format!("CVE-2026-{}", i % 1000), "HIGH", &format!("pkg-{}", i / 1000)))
            .chain([basic("CVE-2026-9999", "LOW", "other")])
            .collect();
        let v = evaluate_scan(
            &policy("scan: {thresholds: {HIGH: 0}}"),
            "r",
            &report("COMPLETE", basics, vec![]),
            now(),
        );
        assert_eq!(
            v.violations[0].message,
            "3000 HIGH findings, more than the 0 allowed (CVE-2026-0, CVE-2026-1, CVE-2026-2 and 997 more)"
        );
    }

    #[test]
    fn threshold_messages_name_exploitable_findings_first() {
        let r = report(
            "ACTIVE",
            vec![],
            (0..5).map(|i| risky(&format!("CVE-2026-{i}"), "HIGH", "x", i == 4, None)).collect(),
        );
        let v = evaluate_scan(&policy("scan: {thresholds: {HIGH: 0}}"), "r", &r, now());
        assert_eq!(
            v.violations[0].message,
            "5 HIGH findings, more than the 0 allowed (CVE-2026-4, CVE-2026-0, CVE-2026-1 and 2 more)"
        );
    }

    fn arb_findings() -> impl Strategy<Value = (Vec<BasicFinding>, Vec<EnhancedFinding>)> {
        let sev = prop::sample::select(vec![
            "CRITICAL",
            "HIGH",
            "MEDIUM",
            "LOW",
            "INFORMATIONAL",
            "UNDEFINED",
            "UNTRIAGED",
        ]);
        let id = (0u32..20).prop_map(|i| format!("CVE-2026-{i}"));
        let pkg = prop::sample::select(vec!["openssl", "zlib", "glibc"]);
        let fix = prop::sample::select(vec!["YES", "NO", "PARTIAL"]);
        let b = (id.clone(), sev.clone(), pkg.clone()).prop_map(|(i, s, p)| basic(&i, s, p));
        let risk = (any::<bool>(), prop::option::of(0.0f64..=1.0));
        let e = (id, sev, pkg, fix, risk).prop_map(|(i, s, p, f, (x, epss))| EnhancedFinding {
            fix_available: Some(f.into()),
            ..risky(&i, s, p, x, epss)
        });
        (prop::collection::vec(b, 0..40), prop::collection::vec(e, 0..40))
    }

    fn arb_policy() -> impl Strategy<Value = Policy> {
        let exception = (0u32..20, prop::sample::select(vec!["", "openssl", "zlib"]), 0i64..60).prop_map(
            |(i, p, days)| {
                let package = if p.is_empty() { String::new() } else { format!(", package: {p}") };
                let expires = (now() + chrono::Duration::days(days - 30)).date_naive();
                format!("    - {{id: cve-2026-{i}{package}, expires: {expires}, reason: r}}\n")
            },
        );
        (prop::collection::vec(exception, 0..10), any::<bool>(), any::<bool>()).prop_map(
            |(exceptions, fixable, stale)| {
                let mut yaml = format!(
                    "scan:\n  only_fixable: {fixable}\n  fail_on_stale_exceptions: {stale}\n  exceptions:\n"
                );
                if exceptions.is_empty() {
                    yaml = format!("scan:\n  only_fixable: {fixable}\n  fail_on_stale_exceptions: {stale}\n");
                }
                yaml.extend(exceptions);
                policy(&yaml)
            },
        )
    }

    proptest! {
        #[test]
        fn counts_add_up_to_findings_minus_excepted_and_unfixable(p in arb_policy(), (b, e) in arb_findings()) {
            let total = b.len() + e.len();
            let v = evaluate_scan(&p, "payments-api", &report("COMPLETE", b, e), now());
            let counted: u64 = v.counts.values().sum();
            prop_assert_eq!(counted + v.excepted.len() as u64 + v.not_fixable, total as u64);
        }

        #[test]
        fn evaluation_is_deterministic_and_survives_the_normalised_form(p in arb_policy(), (b, e) in arb_findings()) {
            let r = report("COMPLETE", b, e);
            let first = evaluate_scan(&p, "payments-api", &r, now());
            prop_assert_eq!(&first, &evaluate_scan(&p, "payments-api", &r, now()));
            let doc = crate::policy::PolicyDocument { policy: p, environments: Default::default() };
            let back: crate::policy::PolicyDocument = serde_json::from_str(&doc.to_json()).unwrap();
            prop_assert_eq!(&first, &evaluate_scan(&back.policy, "payments-api", &r, now()));
        }

        #[test]
        fn fail_on_only_ever_tightens_and_judges_only_counted_enhanced_findings(
            p in arb_policy(), (b, e) in arb_findings(), epss in 0.0f64..=1.0,
        ) {
            let r = report("COMPLETE", b, e.clone());
            let before = evaluate_scan(&p, "payments-api", &r, now());
            let mut strict = p.clone();
            strict.scan.fail_on = FailOn { exploit_available: true, epss_at_least: epss, ..FailOn::default() };
            let after = evaluate_scan(&strict, "payments-api", &r, now());
            prop_assert_eq!(&after.counts, &before.counts, "fail_on changes no count");
            prop_assert!(before.verdict != Verdict::Fail || after.verdict == Verdict::Fail);
            let exploitable = e.iter().filter(|f| f.exploitable()).count();
            let flagged = after.violations.iter().filter(|v| v.rule == "exploit_available").count();
            prop_assert!(flagged <= exploitable);
            let counted: u64 = after.counts.values().sum();
            prop_assert!(flagged as u64 <= counted);
        }

        #[test]
        fn verdict_fails_exactly_when_a_threshold_is_exceeded(p in arb_policy(), (b, e) in arb_findings()) {
            let v = evaluate_scan(&p, "payments-api", &report("COMPLETE", b, e), now());
            let over = p.scan.thresholds.iter().any(|(s, l)| v.counts.get(s).copied().unwrap_or(0) > *l);
            let stale = v.violations.iter().any(|x| x.rule == "stale_exception");
            prop_assert_eq!(v.verdict == Verdict::Fail, over || stale);
        }
    }
}
