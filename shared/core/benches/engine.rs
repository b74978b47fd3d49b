//! Policy-engine figures: `cargo bench -p shipgate-core --bench engine`.
//!
//! Plain timing over repeated runs (median, min, max), so the benchmark needs
//! no extra framework to build. Inputs are generated, fixed and realistic:
//! 10,000 findings (basic and enhanced) judged against 500 exceptions, and a
//! 100 KB policy file.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use shipgate_core::findings::{
    Attribute, BasicFinding, EnhancedFinding, ImageScanFindings, PackageVulnerabilityDetails, ScanReport,
    ScanStatus, VulnerablePackage,
};
use shipgate_core::scan::evaluate_scan;
use shipgate_core::validate::parse_policy;

const RUNS: usize = 31;
const SEVERITIES: [&str; 6] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"];

/// Thresholds no generated report breaks, and ones it breaks at every severity.
const LENIENT: &str = "{CRITICAL: 100000, HIGH: 100000, MEDIUM: 100000}";
const STRICT: &str = "{CRITICAL: 0, HIGH: 0, MEDIUM: 0, LOW: 0, INFORMATIONAL: 0}";

fn policy_yaml(exceptions: usize) -> String {
    policy_with(exceptions, LENIENT)
}

fn policy_with(exceptions: usize, thresholds: &str) -> String {
    let mut yaml =
        format!("version: 1\nowner: team-payments\nscan:\n  thresholds: {thresholds}\n  exceptions:\n");
    for i in 0..exceptions {
        yaml.push_str(&format!(
            "    # Exception {i}: reviewed by the security team; see the ticket for the analysis.\n    - id: CVE-2026-{i:05}\n      package: pkg-{}\n      repositories: [\"payments-*\", \"team/**\"]\n      expires: 2027-06-30\n      reason: \"not reachable from the request path; the vulnerable function is never called\"\n      ticket: SEC-{i}\n",
            i % 50
        ));
    }
    yaml
}

fn report(findings: usize) -> ScanReport {
    let basic = (0..findings / 2).map(|i| BasicFinding {
        name: format!("CVE-2026-{:05}", i % 2000).into(),
        uri: None,
        severity: SEVERITIES[i % SEVERITIES.len()].into(),
        attributes: vec![Attribute {
            key: "package_name".into(),
            value: Some(format!("pkg-{}", i % 50).into()),
        }],
    });
    let enhanced = (0..findings - findings / 2).map(|i| EnhancedFinding {
        severity: SEVERITIES[(i + 1) % SEVERITIES.len()].into(),
        title: None,
        status: Some("ACTIVE".into()),
        fix_available: Some(if i % 3 == 0 { "NO" } else { "YES" }.into()),
        package_vulnerability_details: Some(PackageVulnerabilityDetails {
            vulnerability_id: format!("CVE-2026-{:05}", (i * 7) % 2000).into(),
            vulnerable_packages: vec![VulnerablePackage {
                name: format!("pkg-{}", i % 50).into(),
                ..Default::default()
            }],
            source_url: None,
        }),
        exploit_available: Some(if i % 10 == 0 { "YES" } else { "NO" }.into()),
        epss: None,
    });
    ScanReport {
        image_scan_status: Some(ScanStatus { status: "COMPLETE".into(), description: None }),
        image_scan_findings: Some(ImageScanFindings {
            findings: basic.collect(),
            enhanced_findings: enhanced.collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `cargo bench --bench engine -- <text>` runs only the measurements whose
/// name holds the text (to profile one alone).
fn selected(name: &str) -> bool {
    std::env::args().skip(1).filter(|a| !a.starts_with("--")).all(|filter| name.contains(&filter))
}

fn measure(name: &str, mut f: impl FnMut()) {
    if !selected(name) {
        return;
    }
    f(); // warm up
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| {name} | {:.3} | {:.3} | {:.3} |", ms(times[RUNS / 2]), ms(times[0]), ms(times[RUNS - 1]));
}

fn main() {
    let Ok(now) = "2026-11-28T12:00:00Z".parse::<DateTime<Utc>>() else { panic!("fixed time parses") };
    let Ok(parsed) = parse_policy(&policy_yaml(500), Some(now)) else {
        panic!("the generated policy is valid")
    };
    let policy = parsed.document.policy;
    assert_eq!(policy.scan.exceptions.len(), 500);
    let Ok(strict) = parse_policy(&policy_with(500, STRICT), Some(now)) else {
        panic!("the generated strict policy is valid")
    };
    let strict = strict.document.policy;
    let report = report(10_000);
    let big_yaml = {
        let mut y = policy_yaml(0);
        let mut n = 0;
        while y.len() < 100 * 1024 {
            y = policy_yaml(n);
            n += 10;
        }
        y
    };
    println!("Policy engine ({RUNS} runs each; milliseconds)\n");
    println!("| what | median | min | max |");
    println!("| --- | ---: | ---: | ---: |");
    measure("evaluate 10,000 findings against 500 exceptions", || {
        black_box(evaluate_scan(black_box(&policy), "payments-api", black_box(&report), now));
    });
    // A failing image: every severity over its threshold, so each violation
    // names its first findings and counts the rest.
    measure("a failing image: 10,000 findings, 500 exceptions, every threshold broken", || {
        black_box(evaluate_scan(black_box(&strict), "payments-api", black_box(&report), now));
    });
    measure(&format!("parse and validate a {} KB policy", big_yaml.len() / 1024), || {
        black_box(parse_policy(black_box(&big_yaml), Some(now)).is_ok());
    });
}
