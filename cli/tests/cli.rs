//! The `shipgate` binary, run as a user would: arguments in, output and exit
//! status out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";
const NOW: &str = "2026-11-28T12:00:00Z";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

fn shipgate(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_shipgate")).args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `shipgate scan evaluate` of payments-api's findings at NOW.
fn evaluate(policy: &Path, findings: &Path, extra: &[&str]) -> Run {
    let mut args =
        vec!["scan", "evaluate", "--policy", s(policy), "--repository", "payments-api", "--now", NOW];
    args.extend_from_slice(extra);
    args.push(s(findings));
    shipgate(&args)
}

fn findings(status: &str, findings: &str) -> String {
    format!(
        r#"{{"registryId":"123456789012","repositoryName":"payments-api","imageId":{{"imageDigest":"{DIGEST}"}},
        "imageScanStatus":{{"status":"{status}","description":"d"}},
        "imageScanFindings":{{"imageScanCompletedAt":"2026-11-28T10:00:00.000000+00:00","findings":[{findings}]}}}}"#
    )
}

fn finding(id: &str, severity: &str, package: &str) -> String {
    format!(
        r#"{{"name":"{id}","severity":"{severity}","attributes":[{{"key":"package_name","value":"{package}"}}]}}"#
    )
}

#[test]
fn policy_check_accepts_the_example_and_exits_zero() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/appsec.yaml");
    let run = shipgate(&["policy", "check", example, "--now", NOW]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["valid"], true);
}

/// Every YAML example of the users' policy reference (`docs/policy.md`) is a
/// valid policy, as `shipgate policy check` reads it.
#[test]
fn policy_reference_examples_are_valid_policies() {
    let reference = include_str!("../../docs/policy.md");
    let examples: Vec<&str> =
        reference.split("```yaml\n").skip(1).map(|rest| rest.split("```").next().unwrap()).collect();
    assert!(examples.len() >= 3, "docs/policy.md shows its examples in ```yaml blocks");
    let files = Files::new();
    for (i, example) in examples.iter().enumerate() {
        let path = files.write(&format!("example-{i}.yaml"), example);
        let run = shipgate(&["policy", "check", s(&path), "--now", NOW]);
        assert_eq!(run.code, 0, "example {i} of docs/policy.md:\n{example}\n{}", run.stdout);
    }
}

#[test]
fn policy_check_lists_every_error_with_file_line_and_column() {
    let f = Files::new();
    let good = f.write("good.yaml", "version: 1\n");
    let bad = f.write("bad.yaml", "version: 1\nscan:\n  tresholds: {HIGH: 1}\n  wait: 2h30\n");
    let run = shipgate(&["policy", "check", s(&good), s(&bad), "--format", "text"]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], format!("{}: valid", good.display()));
    assert_eq!(
        lines[1],
        format!("{}:3:3: scan.tresholds: unknown key (did you mean 'thresholds'?)", bad.display())
    );
    assert!(
        lines[2].starts_with(&format!("{}:4:9: scan.wait: must be a duration", bad.display())),
        "{lines:?}"
    );

    let json = shipgate(&["policy", "check", s(&bad)]).json();
    assert_eq!(json["files"][0]["errors"][0]["line"], 3);
    assert_eq!(json["files"][0]["errors"][0]["key"], "scan.tresholds");
}

#[test]
fn policy_check_of_a_missing_file_is_invalid() {
    let run = shipgate(&["policy", "check", "/nonexistent/appsec.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("cannot read"));
}

#[test]
fn scan_evaluate_exit_codes_follow_the_verdict() {
    let f = Files::new();
    let policy = f.write("p.yaml", "version: 1\n");
    let cases = [
        (findings("COMPLETE", &finding("CVE-1", "LOW", "x")), 0, "PASS"),
        (findings("COMPLETE", &finding("CVE-1", "CRITICAL", "x")), 1, "FAIL"),
        (findings("IN_PROGRESS", ""), 3, "PENDING"),
        (findings("UNSUPPORTED_IMAGE", ""), 1, "FAIL"),
    ];
    for (i, (body, code, verdict)) in cases.into_iter().enumerate() {
        let file = f.write(&format!("f{i}.json"), &body);
        let run = evaluate(&policy, &file, &[]);
        assert_eq!(run.code, code, "case {i}: {}", run.stdout);
        assert_eq!(run.json()["verdict"], verdict, "case {i}");
    }
}

#[test]
fn scan_evaluate_reports_counts_exceptions_and_expired_exceptions() {
    let f = Files::new();
    let policy = f.write(
        "p.yaml",
        "version: 1\nscan:\n  exceptions:\n    - {id: CVE-A, expires: 2026-12-05, reason: not reachable, ticket: SEC-1}\n    - {id: CVE-B, expires: 2026-01-01, reason: old}\n",
    );
    let body = findings(
        "COMPLETE",
        &[finding("cve-a", "CRITICAL", "openssl"), finding("CVE-B", "MEDIUM", "zlib")].join(","),
    );
    let file = f.write("f.json", &body);
    let run =
        shipgate(&["scan", "evaluate", "--policy", s(&policy), "--repository", "r", "--now", NOW, s(&file)]);
    assert_eq!(run.code, 0);
    let v = run.json();
    assert_eq!(v["counts"]["CRITICAL"], 0);
    assert_eq!(v["counts"]["MEDIUM"], 1);
    assert_eq!(v["excepted"][0]["exception"]["id"], "CVE-A");
    assert_eq!(v["expired_exceptions"][0]["id"], "CVE-B");
    assert_eq!(v["expiring_exceptions"][0]["id"], "CVE-A");
}

#[test]
fn scan_evaluate_accepts_an_array_of_pages_and_epoch_timestamps() {
    let f = Files::new();
    let policy = f.write("p.yaml", "version: 1\nscan: {thresholds: {HIGH: 1}}\n");
    let page = |id: &str| {
        findings("COMPLETE", &finding(id, "HIGH", "x"))
            .replace("\"2026-11-28T10:00:00.000000+00:00\"", "1795860000.0")
    };
    let file = f.write("pages.json", &format!("[{}, {}]", page("CVE-1"), page("CVE-2")));
    let run =
        shipgate(&["scan", "evaluate", "--policy", s(&policy), "--repository", "r", "--now", NOW, s(&file)]);
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["counts"]["HIGH"], 2);
}

#[test]
fn environment_overlay_applies_and_an_unknown_one_warns() {
    let f = Files::new();
    let policy = f.write("p.yaml", "version: 1\nenvironments:\n  prod: {scan: {thresholds: {MEDIUM: 0}}}\n");
    let file = f.write("f.json", &findings("COMPLETE", &finding("CVE-1", "MEDIUM", "x")));
    let args = |env: &str| {
        shipgate(&[
            "scan",
            "evaluate",
            "--policy",
            s(&policy),
            "--repository",
            "r",
            "--environment",
            env,
            "--now",
            NOW,
            s(&file),
        ])
    };
    assert_eq!(args("prod").code, 1);
    assert_eq!(args(" prod ").code, 1, "surrounding whitespace is not part of the name");
    // A typo must not fall back to the looser base policy.
    let typo = args("prd");
    assert_eq!(typo.code, 2);
    assert!(
        typo.stderr.contains("environment \"prd\" is not one the policy defines (prod)"),
        "{}",
        typo.stderr
    );
}

#[test]
fn repository_policy_can_only_tighten() {
    let f = Files::new();
    let central = f.write("central.yaml", "version: 1\nscan: {thresholds: {HIGH: 5}}\n");
    let loose = f.write("loose.yaml", "version: 1\nscan: {thresholds: {HIGH: 50}, exceptions: [{id: CVE-1, expires: 2030-01-01, reason: mine}]}\n");
    let body: Vec<String> = (1..=6).map(|i| finding(&format!("CVE-{i}"), "HIGH", "x")).collect();
    let file = f.write("f.json", &findings("COMPLETE", &body.join(",")));
    let run = shipgate(&[
        "scan",
        "evaluate",
        "--policy",
        s(&central),
        "--repo-policy",
        s(&loose),
        "--repository",
        "r",
        "--now",
        NOW,
        s(&file),
    ]);
    assert_eq!(run.code, 1, "6 HIGH > min(5, 50); the repo's own exception does not count");
    assert_eq!(run.json()["counts"]["HIGH"], 6);
}

#[test]
fn unusable_input_exits_two() {
    let f = Files::new();
    let policy = f.write("p.yaml", "version: 1\n");
    let bad_policy = f.write("bad.yaml", "version: 3\n");
    let not_json = f.write("f.json", "{not json");
    let good = f.write("g.json", &findings("COMPLETE", ""));
    let eval = |p: &Path, file: &Path| {
        shipgate(&["scan", "evaluate", "--policy", s(p), "--repository", "r", s(file)])
    };
    let run = eval(&policy, &not_json);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not JSON"), "{}", run.stderr);
    let run = eval(&bad_policy, &good);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.yaml:1:10: version: must be 1, got 3"), "{}", run.stderr);
    assert_eq!(
        shipgate(&[
            "scan",
            "evaluate",
            "--policy",
            s(&policy),
            "--repository",
            "r",
            "--now",
            "yesterday",
            s(&good)
        ])
        .code,
        2
    );
    assert_eq!(shipgate(&["taskdef", "check", "--policy", s(&policy), s(&not_json)]).code, 2);
}

#[test]
fn taskdef_check_prints_violations_with_rule_ids() {
    let f = Files::new();
    let policy = f.write("p.yaml", "version: 1\n");
    let bad = f.write(
        "bad.json",
        r#"{"family":"web","containerDefinitions":[{"name":"app","image":"nginx@sha256:abc","privileged":true,
           "environment":[{"name":"DB_PASSWORD","value":"hunter2"}]}]}"#,
    );
    let run = shipgate(&["taskdef", "check", "--policy", s(&policy), s(&bad)]);
    assert_eq!(run.code, 1);
    let rules: Vec<String> = run.json()["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        rules,
        [
            "privileged",
            "readonly_root_filesystem",
            "non_root_user",
            "secret_in_environment",
            "log_configuration",
            "image_registry",
            "image_digest"
        ]
    );
    assert!(!run.stdout.contains("hunter2"), "environment values are never printed");

    let good = f.write(
        "good.json",
        &format!(
            r#"{{"taskDefinition":{{"containerDefinitions":[{{"name":"app","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}",
            "user":"1000","readonlyRootFilesystem":true,"logConfiguration":{{"logDriver":"awslogs"}}}}]}}}}"#
        ),
    );
    let run = shipgate(&["taskdef", "check", "--policy", s(&policy), s(&good)]);
    assert_eq!((run.code, run.stdout.trim()), (0, "{\n  \"violations\": []\n}"));
}

#[test]
fn help_explains_the_commands() {
    let run = shipgate(&["scan", "evaluate", "--help"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("3 PENDING"));
    assert!(shipgate(&["--help"]).stdout.contains("policy"));
}

/// `aws ecr batch-get-image` output for `web@<digest>`, an image index with
/// images for `platforms`.
fn batch_get_image(digest: &str, platforms: &[&str]) -> String {
    let manifests: Vec<Value> = platforms
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let parts: Vec<&str> = p.split('/').collect();
            let mut platform = serde_json::json!({"os": parts[0], "architecture": parts[1]});
            if let Some(variant) = parts.get(2) {
                platform["variant"] = (*variant).into();
            }
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": format!("sha256:{}", i.to_string().repeat(64)), "size": 1, "platform": platform})
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests});
    serde_json::json!({"images": [{"registryId": "123456789012", "repositoryName": "web",
        "imageId": {"imageDigest": digest}, "imageManifest": index.to_string(),
        "imageManifestMediaType": "application/vnd.oci.image.index.v1+json"}], "failures": []})
    .to_string()
}

#[test]
fn image_resolve_names_every_image_a_platform_may_run() {
    let f = Files::new();
    let child = |i: u32| format!("sha256:{}", i.to_string().repeat(64));
    // A clean v9 image first, then the one a Graviton host pulls.
    let graviton =
        f.write("graviton.json", &batch_get_image(DIGEST, &["linux/arm64/v9", "linux/arm64", "linux/amd64"]));
    let run = shipgate(&[
        "image",
        "resolve",
        "--manifest",
        s(&graviton),
        "--platform",
        "linux/arm64",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let image = &run.json()["images"][0];
    assert_eq!(image["runs"], serde_json::json!([child(1)]), "{image}");
    assert_eq!(image["hosts"][0]["host"], "linux/arm64/v8");
    assert_eq!(image["index"], true);

    // Every amd64 level a host may have: each image one of them pulls.
    let levels =
        f.write("levels.json", &batch_get_image(DIGEST, &["linux/amd64", "linux/amd64/v3", "linux/arm64"]));
    let run = shipgate(&[
        "image",
        "resolve",
        "--manifest",
        s(&levels),
        "--platform",
        "linux/amd64",
        "--format",
        "json",
    ]);
    assert_eq!(run.json()["images"][0]["runs"], serde_json::json!([child(0), child(1)]));
    let run = shipgate(&["image", "resolve", "--manifest", s(&levels), "--platform", "linux/amd64/v2"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains(&format!("runs {}:", child(0))), "{}", run.stdout);
    assert!(run.stdout.contains("linux/amd64/v2 host pulls"), "{}", run.stdout);

    // A task definition says its platform; an index without it exits 1.
    let taskdef = f.write(
        "taskdef.json",
        r#"{"runtimePlatform":{"cpuArchitecture":"ARM64"},"containerDefinitions":[{"name":"app","image":"web"}]}"#,
    );
    let amd = f.write("amd.json", &batch_get_image(DIGEST, &["linux/amd64"]));
    let run = shipgate(&["image", "resolve", "--manifest", s(&amd), "--platform", s(&taskdef)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("nothing runs on linux/arm64 (it has linux/amd64)"), "{}", run.stdout);

    let run = shipgate(&["image", "resolve", "--manifest", s(&amd), "--platform", "arm64"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--platform"), "{}", run.stderr);
}

#[test]
fn taskdef_check_with_a_manifest_applies_image_platform() {
    let f = Files::new();
    let policy = f.write("appsec.yaml", "version: 1\n");
    let taskdef = f.write(
        "taskdef.json",
        &format!(
            r#"{{"runtimePlatform":{{"cpuArchitecture":"ARM64","operatingSystemFamily":"LINUX"}},
            "containerDefinitions":[{{"name":"app","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}",
            "user":"1000","readonlyRootFilesystem":true,"logConfiguration":{{"logDriver":"awslogs"}}}}]}}"#
        ),
    );
    let amd_only = f.write("amd.json", &batch_get_image(DIGEST, &["linux/amd64"]));
    let run =
        shipgate(&["taskdef", "check", "--policy", s(&policy), "--manifest", s(&amd_only), s(&taskdef)]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let v = &run.json()["violations"][0];
    assert_eq!((v["rule"].as_str(), v["container"].as_str()), (Some("image_platform"), Some("app")));
    assert!(v["message"].as_str().unwrap().contains("it has linux/amd64"), "{v}");

    let both = f.write("both.json", &batch_get_image(DIGEST, &["linux/amd64", "linux/arm64"]));
    let run = shipgate(&["taskdef", "check", "--policy", s(&policy), "--manifest", s(&both), s(&taskdef)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // Without a manifest for the image, the rule is not judged, and the user is told.
    let other = f.write("other.json", &batch_get_image(&DIGEST.replace("4", "5"), &["linux/amd64"]));
    let run = shipgate(&["taskdef", "check", "--policy", s(&policy), "--manifest", s(&other), s(&taskdef)]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("image_platform not judged"), "{}", run.stderr);
    assert!(run.stderr.contains("matches no container's image"), "{}", run.stderr);

    let broken = f.write("broken.json", r#"{"images": [{"imageManifest": "{not json"}]}"#);
    let run = shipgate(&["taskdef", "check", "--policy", s(&policy), "--manifest", s(&broken), s(&taskdef)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("images[0].imageManifest"), "{}", run.stderr);
}

#[test]
fn scan_evaluate_applies_fail_on_and_lists_known_exploits_first() {
    let f = Files::new();
    let policy = f.write(
        "appsec.yaml",
        "version: 1\nscan:\n  thresholds: {HIGH: 0}\n  fail_on: {exploit_available: true}\n",
    );
    let enhanced = |id: &str, severity: &str, exploit: &str| {
        format!(
            r#"{{"severity":"{severity}","status":"ACTIVE","fixAvailable":"YES","exploitAvailable":"{exploit}",
            "packageVulnerabilityDetails":{{"vulnerabilityId":"{id}","vulnerablePackages":[{{"name":"openssl"}}]}}}}"#
        )
    };
    let page = format!(
        r#"{{"repositoryName":"payments-api","imageId":{{"imageDigest":"{DIGEST}"}},"imageScanStatus":{{"status":"ACTIVE"}},
        "imageScanFindings":{{"enhancedFindings":[{},{}]}}}}"#,
        enhanced("CVE-2026-1", "HIGH", "NO"),
        enhanced("CVE-2026-2", "LOW", "YES")
    );
    let findings = f.write("findings.json", &page);
    let run = evaluate(&policy, &findings, &["--format", "text"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let blocked: Vec<&str> = run.stdout.lines().skip_while(|l| *l != "Blocked by:").skip(1).take(2).collect();
    assert!(blocked[0].contains("CVE-2026-2 in openssl (LOW) has a known exploit"), "{}", run.stdout);
    assert!(blocked[1].contains("1 HIGH finding"), "{}", run.stdout);
}

/// The review's cases, reproduced with the CLI as it found them (#32): each
/// used to pass.
#[test]
fn the_reviews_cases_fail_through_the_cli() {
    let f = Files::new();
    let policy = f.write("appsec.yaml", "version: 1\nscan:\n  thresholds: {}\n");
    // Root by another spelling.
    for user in ["-0", "-00", "-0:0", "4294967296"] {
        let td = f.write(
            "td.json",
            &format!(
                r#"{{"containerDefinitions":[{{"name":"app","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}",
                "user":"{user}","readonlyRootFilesystem":true,"logConfiguration":{{"logDriver":"awslogs"}}}}]}}"#
            ),
        );
        let run = shipgate(&["taskdef", "check", "--policy", s(&policy), s(&td)]);
        assert_eq!(run.code, 1, "user {user}: {}", run.stdout);
        assert_eq!(run.json()["violations"][0]["rule"], "non_root_user", "user {user}");
    }
    // A COMPLETE scan with no findings object, and a severity miscounted.
    let bare = f.write(
        "bare.json",
        &format!(
            r#"{{"repositoryName":"payments-api","imageId":{{"imageDigest":"{DIGEST}"}},"imageScanStatus":{{"status":"COMPLETE"}}}}"#
        ),
    );
    let miscounted = f.write(
        "miscounted.json",
        &findings("COMPLETE", &finding("CVE-2026-1", "LOW", "zlib"))
            .replace(r#""findings":["#, r#""findingSeverityCounts":{"CRITICAL":1},"findings":["#),
    );
    for file in [&bare, &miscounted] {
        let run = evaluate(&policy, file, &[]);
        assert_eq!((run.code, run.json()["verdict"].as_str()), (1, Some("FAIL")), "{}", run.stdout);
        assert_eq!(run.json()["violations"][0]["rule"], "scan_incomplete", "{}", run.stdout);
    }
    // An EPSS bound and a finding without a score.
    let epss = f.write("epss.yaml", "version: 1\nscan:\n  thresholds: {}\n  fail_on: {epss_at_least: 0.5}\n");
    let unscored = f.write("unscored.json", &findings("COMPLETE", &finding("CVE-2026-2", "LOW", "zlib")));
    let run = evaluate(&epss, &unscored, &[]);
    assert_eq!((run.code, run.json()["verdict"].as_str()), (1, Some("FAIL")), "{}", run.stdout);
    assert_eq!(run.json()["violations"][0]["rule"], "epss_missing");
    // A crafted environment value never reaches any output.
    let crafted = r#"x\", expected a secret hunter2"#;
    let td = f.write(
        "crafted.json",
        &format!(r#"{{"containerDefinitions":[{{"name":"app","image":"web","environment":[{{"name":"A","value":{{"nested":"{crafted}"}}}}]}}]}}"#),
    );
    for format in ["json", "text"] {
        let run = shipgate(&["taskdef", "check", "--policy", s(&policy), "--format", format, s(&td)]);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("environment[0].value"), "{}", run.stderr);
        for out in [&run.stdout, &run.stderr] {
            assert!(!out.contains("hunter2"), "{out}");
        }
    }
}
