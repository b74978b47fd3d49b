//! `shipgate`: Shipgate's policy engine on the command line, for CodeBuild
//! steps, pre-commit hooks and people. The same core the Lambda functions use.

mod exposure;
mod image;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::{Value, json};
use shipgate_core::digest::Digest;
use shipgate_core::findings::{ScanReport, ScanState};
use shipgate_core::image::parse_image;
use shipgate_core::manifest::Manifest;
use shipgate_core::policy::{Policy, PolicyDocument, Severity, layer};
use shipgate_core::rules::{Violation, check_task_definition, image_platform};
use shipgate_core::scan::{ScanVerdict, Verdict, evaluate_scan};
use shipgate_core::taskdef::TaskDefinition;
use shipgate_core::validate::{Diagnostic, parse_policy};

const POLICY_RULES: &str = "\
How policies are read:
  * A key given in the file replaces its default; `scan.thresholds` given in the
    base file replaces the default thresholds as a whole (unlisted = unlimited).
  * An environment overlay is merged onto the base policy with its defaults:
    mappings merge key by key (so `prod: {scan: {thresholds: {MEDIUM: 0}}}` keeps
    CRITICAL and HIGH from the base), lists and scalars replace.
  * --environment naming no overlay uses the base policy, with a warning.
  * Globs: `*` matches within one `/`-separated segment, `**` across segments,
    `?` one character, `[a-z]`/`[!a]` a set. Case-sensitive.
  * Severity names are read ignoring case; UNDEFINED and UNTRIAGED findings count
    as `scan.unknown_severity_as` and cannot carry a threshold of their own.";

const EXIT_CODES_SCAN: &str = "\
Exit status: 0 PASS, 1 FAIL, 3 PENDING (scan still running), 2 unusable input.

The verdict (JSON) carries: verdict, status, counts (counted findings per
severity after exceptions and only_fixable), violations, excepted (findings an
exception matched, with the exception), not_fixable, expired_exceptions,
expiring_exceptions (within notifications.exception_expiry_warning), warnings.

Rules (docs/policy.md): an exception matches a finding when the ids are equal
ignoring case, its package (if set) equals the finding's package (basic: the
package_name attribute; enhanced: any vulnerable package), the repository
matches one of its globs (if set), and --now is on or before the end of its
`expires` day, UTC. With only_fixable, enhanced findings with fixAvailable NO
are not counted; basic findings always are. Status COMPLETE/ACTIVE is judged,
IN_PROGRESS/PENDING is PENDING, any other status (or none) FAILs when
scan.required, else PASSes with a warning. scan.fail_on fails a counted
enhanced finding with exploitAvailable YES (exploit_available) or an EPSS
score at least epss_at_least (epss), whatever the thresholds; these are
listed first. Basic findings carry neither field, and ECR's enhanced findings
carry no EPSS score (add Inspector's `epss: {score: 0.42}` to a finding
to judge it): under epss_at_least, a counted finding without a score FAILs
(epss_missing) unless fail_on.epss_missing is warn.";

const EXIT_CODES_TASKDEF: &str = "\
Exit status: 0 no violations, 1 violations, 2 unusable input.

Prints {\"violations\":[{\"rule\",\"container\",\"message\"}]}. Rule ids:
privileged, readonly_root_filesystem, non_root_user (user unset, root, 0, 0:*
or root:*), host_namespaces (pidMode/ipcMode/networkMode host; reported once
for the task with container \"*\"), capabilities, forbidden_env (environment or
secrets), secret_in_environment, log_configuration, image_registry (an image
with no registry host is Docker Hub's, docker.io), image_digest, and with
--manifest image_platform (an image index with no image for the task's
runtimePlatform, X86_64/LINUX when unset; the output of `aws ecr
batch-get-image --accepted-media-types` with the index media types, matched to
containers by repository and digest or tag).
TASKDEF is the taskDefinition of `aws ecs describe-task-definition`, that whole
output, or a register-task-definition input (taskdef.json). Environment values
are never printed.";

/// Judge container releases against an appsec.yaml policy.
#[derive(Debug, Parser)]
#[command(name = "shipgate", version, about, long_about = None, after_help = POLICY_RULES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check appsec.yaml files.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Judge ECR image-scan findings.
    #[command(subcommand)]
    Scan(ScanCommand),
    /// Check an ECS task definition's containers and images.
    #[command(subcommand)]
    Taskdef(TaskdefCommand),
    /// List the running services whose images fail today's policy, by owner
    /// and environment (from the config bucket, with your AWS credentials).
    #[command(after_help = EXIT_CODES_EXPOSURE)]
    Exposure(ExposureArgs),
    /// Tell which image of an image index a task runs.
    #[command(subcommand)]
    Image(ImageCommand),
}

const EXIT_CODES_RESOLVE: &str = "\
Exit status: 0 every image has an image for the platform, 1 one has none,
2 unusable input.

Prints, for each image of the manifest file, every image a task on the
platform may run (runs) and what each host it may land on pulls (hosts), as
containerd picks a child of an index (github.com/containerd/platforms:
normalised os/architecture/variant matched exactly, then the host's lower
levels: amd64/v3 also runs v2, v1 and 386; arm64 (v8) runs arm64 and arm/v8
to arm/v5, never arm64/v9). A platform without a variant is every host it may
be: linux/amd64 is amd64 v1 to v4, linux/arm64 is arm64/v8. Shipgate judges
each image in runs, and a release passes only when all of them pass.";

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Print every image a task on a platform may run from an image index.
    #[command(after_help = EXIT_CODES_RESOLVE)]
    Resolve {
        /// The output of `aws ecr batch-get-image --accepted-media-types`
        /// with the index media types (repeatable).
        #[arg(long, value_name = "FILE", required = true)]
        manifest: Vec<PathBuf>,
        /// os/architecture[/variant] (linux/arm64, linux/amd64/v3), or a task
        /// definition file whose runtimePlatform says it.
        #[arg(long, value_name = "PLATFORM|TASKDEF.json")]
        platform: String,
        /// Output for machines (json) or people (text).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

const EXIT_CODES_EXPOSURE: &str = "\
Exit status: 0 nothing running fails the policy, 1 something does, 2 the bucket
could not be read.

Reads running/<environment>/<service>.json in the config bucket: what each
completed deployment runs (recorded by deploy-hooks) and its last judgement
(by scan-gate, on every Inspector finding for the image, every accepted
policy and daily). Uses the standard AWS configuration: AWS_PROFILE or the
access key variables, AWS_REGION, and AWS_ENDPOINT_URL for `make local`
(which prints the values). Needs s3:ListBucket on running/* and
s3:GetObject on running/* in the bucket (and kms:Decrypt with its key).";

#[derive(Debug, Args)]
struct ExposureArgs {
    /// The Shipgate config bucket (the stack's ConfigBucketName output).
    #[arg(long, env = "SHIPGATE_CONFIG_BUCKET", value_name = "NAME")]
    bucket: String,
    /// Also list running images that pass (and the exceptions they pass by).
    #[arg(long)]
    all: bool,
    /// Output for people (text) or machines (json).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate policy files; print every error as FILE:line:col: message.
    ///
    /// Exit status: 0 all valid, 1 any invalid (or unreadable). Warnings
    /// (exceptions expired or expiring within the warning window) do not fail.
    #[command(after_help = POLICY_RULES)]
    Check {
        /// The appsec.yaml files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
enum ScanCommand {
    /// Judge one image's findings: the output of `aws ecr describe-image-scan-findings`
    /// (one page, merged pages, or a JSON array of pages).
    #[command(after_help = EXIT_CODES_SCAN)]
    Evaluate {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The ECR repository the image belongs to (for exception globs).
        #[arg(long, value_name = "NAME")]
        repository: String,
        /// The findings JSON file.
        #[arg(value_name = "FINDINGS.json")]
        findings: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Subcommand)]
enum TaskdefCommand {
    /// Check a task definition against the policy's task_definition and images rules.
    #[command(after_help = EXIT_CODES_TASKDEF)]
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// The task definition JSON file.
        #[arg(value_name = "TASKDEF.json")]
        taskdef: PathBuf,
        /// The output of `aws ecr batch-get-image` for the task's images
        /// (repeatable): applies image_platform to each image it holds.
        #[arg(long, value_name = "FILE")]
        manifest: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, Args)]
struct PolicyArgs {
    /// The central policy (appsec.yaml).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A repository's own appsec.yaml, layered on the central one: it can only tighten.
    #[arg(long, value_name = "FILE")]
    repo_policy: Option<PathBuf>,
    /// Use this environment's overlay (environments.<ENV>).
    #[arg(long, value_name = "ENV")]
    environment: Option<String>,
}

#[derive(Debug, Args)]
struct Common {
    /// Output for machines (json) or people (text).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// The time to judge at, RFC 3339 (default: now). Exceptions expire by it.
    #[arg(long, value_name = "RFC3339", value_parser = parse_now)]
    now: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Text,
}

fn parse_now(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); e.g. 2026-11-28T09:30:00Z"))
}

/// Input the command cannot use: exit 2 with this message.
struct Unusable(String);

const EXIT_UNUSABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy(PolicyCommand::Check { files, common }) => Ok(policy_check(&files, &common)),
        Command::Scan(ScanCommand::Evaluate { policy, repository, findings, common }) => {
            scan_evaluate(&policy, &repository, &findings, &common)
        }
        Command::Taskdef(TaskdefCommand::Check { policy, taskdef, manifest, common }) => {
            taskdef_check(&policy, &taskdef, &manifest, &common)
        }
        Command::Exposure(args) => exposure_list(&args),
        Command::Image(ImageCommand::Resolve { manifest, platform, format }) => {
            image::resolve(&manifest, &platform, format)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Unusable(message)) => {
            eprintln!("shipgate: {message}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

fn exposure_list(args: &ExposureArgs) -> Result<u8, Unusable> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Unusable(format!("cannot start: {e}")))?;
    let records = runtime
        .block_on(async {
            let sdk = shipgate_aws::load_sdk_config().await;
            let bucket = shipgate_aws::s3::Bucket::new(shipgate_aws::clients::s3(&sdk), &args.bucket);
            exposure::running(&bucket).await
        })
        .map_err(Unusable)?;
    let rows = exposure::rows(&records, args.all);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"services": records.len(), "images": rows}))
                .unwrap_or_default()
        ),
        Format::Text => print!("{}", exposure::text(&rows, records.len())),
    }
    let exposed = rows.iter().any(|r| r.status == shipgate_core::exposure::ExposureStatus::Failing);
    Ok(u8::from(exposed))
}

fn now(common: &Common) -> DateTime<Utc> {
    common.now.unwrap_or_else(Utc::now)
}

fn read(path: &Path) -> Result<String, Unusable> {
    std::fs::read_to_string(path).map_err(|e| Unusable(format!("{}: cannot read: {e}", path.display())))
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

fn located(file: &Path, d: &Diagnostic) -> String {
    format!("{}:{d}", file.display())
}

fn diagnostic_json(file: &Path, d: &Diagnostic) -> Value {
    json!({"line": d.line, "col": d.col, "key": d.key, "message": d.message, "text": located(file, d)})
}

fn policy_check(files: &[PathBuf], common: &Common) -> u8 {
    let now = now(common);
    let mut reports = Vec::new();
    let mut all_valid = true;
    for file in files {
        let (errors, warnings) = match std::fs::read_to_string(file) {
            Err(e) => (
                vec![Diagnostic {
                    line: 0,
                    col: 0,
                    key: String::new(),
                    message: format!("cannot read: {e}"),
                }],
                vec![],
            ),
            Ok(text) => match parse_policy(&text, Some(now)) {
                Ok(parsed) => (vec![], parsed.warnings),
                Err(invalid) => (invalid.errors, invalid.warnings),
            },
        };
        all_valid &= errors.is_empty();
        reports.push((file, errors, warnings));
    }
    match common.format {
        Format::Json => {
            let files: Vec<Value> = reports
                .iter()
                .map(|(file, errors, warnings)| {
                    json!({
                        "file": file.display().to_string(),
                        "valid": errors.is_empty(),
                        "errors": errors.iter().map(|d| diagnostic_json(file, d)).collect::<Vec<_>>(),
                        "warnings": warnings.iter().map(|d| diagnostic_json(file, d)).collect::<Vec<_>>(),
                    })
                })
                .collect();
            print_json(&json!({"valid": all_valid, "files": files}));
        }
        Format::Text => {
            for (file, errors, warnings) in &reports {
                for d in errors {
                    println!("{}", located(file, d));
                }
                for d in warnings {
                    println!("{} (warning)", located(file, d));
                }
                if errors.is_empty() {
                    println!("{}: valid", file.display());
                }
            }
        }
    }
    u8::from(!all_valid)
}

/// Loads the policy (central, optionally layered with the repository's) for
/// the environment, returning it with any warnings about the choice.
fn load_policy(args: &PolicyArgs) -> Result<(Policy, Vec<String>), Unusable> {
    let mut warnings = Vec::new();
    let mut resolve = |path: &Path| -> Result<Policy, Unusable> {
        let doc: PolicyDocument = match parse_policy(&read(path)?, None) {
            Ok(parsed) => parsed.document,
            Err(invalid) => {
                let errors: Vec<String> = invalid.errors.iter().map(|d| located(path, d)).collect();
                return Err(Unusable(format!("invalid policy:\n{}", errors.join("\n"))));
            }
        };
        let policy = doc
            .environment(args.environment.as_deref())
            .map_err(|unknown| Unusable(format!("{}: {unknown}", path.display())))?;
        if let Some(env) = &args.environment
            && doc.environments.is_empty()
        {
            warnings.push(format!(
                "{}: defines no environments; using the base policy for {env:?}",
                path.display()
            ));
        }
        Ok(policy.clone())
    };
    let central = resolve(&args.policy)?;
    let policy = match &args.repo_policy {
        Some(path) => layer(&central, &resolve(path)?),
        None => central,
    };
    Ok((policy, warnings))
}

fn read_findings(path: &Path) -> Result<ScanReport, Unusable> {
    let text = read(path)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| Unusable(format!("{}: not JSON: {e}", path.display())))?;
    let pages = match value {
        Value::Array(pages) => pages,
        page @ Value::Object(_) => vec![page],
        _ => {
            return Err(Unusable(format!(
                "{}: expected the JSON object of describe-image-scan-findings",
                path.display()
            )));
        }
    };
    let mut reports = Vec::with_capacity(pages.len());
    for (i, page) in pages.into_iter().enumerate() {
        let report: ScanReport = serde_json::from_value(page)
            .map_err(|e| Unusable(format!("{}: page {i} is not scan findings: {e}", path.display())))?;
        reports.push(report);
    }
    Ok(ScanReport::merge(reports))
}

fn scan_evaluate(
    args: &PolicyArgs,
    repository: &str,
    findings: &Path,
    common: &Common,
) -> Result<u8, Unusable> {
    let (policy, policy_warnings) = load_policy(args)?;
    let report = read_findings(findings)?;
    let mut verdict = evaluate_scan(&policy, repository, &report, now(common));
    verdict.warnings.splice(0..0, policy_warnings);
    match common.format {
        Format::Json => {
            let mut value = serde_json::to_value(&verdict).unwrap_or_default();
            value["repository"] = json!(repository);
            print_json(&value);
        }
        Format::Text => print!("{}", scan_text(&policy, repository, &verdict)),
    }
    Ok(match verdict.verdict {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
        Verdict::Pending => 3,
    })
}

fn scan_text(policy: &Policy, repository: &str, v: &ScanVerdict) -> String {
    let mut out = format!(
        "{repository}: {} (scan {})\n",
        v.verdict.as_str(),
        if v.status.is_empty() { "status missing" } else { &v.status }
    );
    if ScanState::parse(&v.status).is_complete() {
        out.push_str("  severity        counted  allowed\n");
        for s in Severity::ALL {
            let counted = v.counts.get(&s).copied().unwrap_or(0);
            let allowed = policy.scan.thresholds.get(&s).map_or("any".to_owned(), u64::to_string);
            let over = policy.scan.thresholds.get(&s).is_some_and(|l| counted > *l);
            out.push_str(&format!(
                "  {:<14} {counted:>8}  {allowed:>7}{}\n",
                s.as_str(),
                if over { "  over" } else { "" }
            ));
        }
        if v.not_fixable > 0 {
            out.push_str(&format!("  not counted (no fix available): {}\n", v.not_fixable));
        }
    }
    if !v.violations.is_empty() {
        out.push_str("Blocked by:\n");
        for x in &v.violations {
            out.push_str(&format!("  - {}\n", x.message));
        }
    }
    if !v.excepted.is_empty() {
        out.push_str("Excepted:\n");
        for e in &v.excepted {
            let package = e.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
            let ticket = e.exception.ticket.as_deref().map(|t| format!(" [{t}]")).unwrap_or_default();
            out.push_str(&format!(
                "  - {} ({}){package} until {}: {}{ticket}\n",
                e.id, e.severity, e.exception.expires, e.exception.reason
            ));
        }
    }
    for e in &v.expired_exceptions {
        out.push_str(&format!("Expired exception: {} (expired {})\n", e.id, e.expires));
    }
    for e in &v.expiring_exceptions {
        out.push_str(&format!("Expiring soon: {} (expires {})\n", e.id, e.expires));
    }
    for w in &v.warnings {
        out.push_str(&format!("Warning: {w}\n"));
    }
    out
}

/// One image of `aws ecr batch-get-image`'s output.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcrImageOutput {
    #[serde(default)]
    repository_name: String,
    #[serde(default)]
    image_id: EcrImageId,
    #[serde(default)]
    image_manifest: String,
    #[serde(default)]
    image_manifest_media_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EcrImageId {
    image_digest: Option<String>,
    image_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchGetImageOutput {
    images: Vec<EcrImageOutput>,
}

/// The images of `aws ecr batch-get-image` output files, with their manifests.
fn read_manifests(paths: &[PathBuf]) -> Result<Vec<(EcrImageOutput, Manifest)>, Unusable> {
    let mut out = Vec::new();
    for path in paths {
        let output: BatchGetImageOutput = serde_json::from_str(&read(path)?).map_err(|e| {
            Unusable(format!("{}: not the output of aws ecr batch-get-image: {e}", path.display()))
        })?;
        for (i, image) in output.images.into_iter().enumerate() {
            let manifest = Manifest::parse(image.image_manifest_media_type.as_deref(), &image.image_manifest)
                .map_err(|e| Unusable(format!("{}: images[{i}].imageManifest: {e}", path.display())))?;
            out.push((image, manifest));
        }
    }
    Ok(out)
}

/// `image_platform` for each container whose image one of the manifests is
/// (same repository, and the same digest or tag); a container with none is
/// not judged by it, and the caller is told.
fn platform_violations(
    td: &TaskDefinition,
    manifests: &[(EcrImageOutput, Manifest)],
    warnings: &mut Vec<String>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut used = vec![false; manifests.len()];
    for c in &td.container_definitions {
        let image = c.image.trim();
        let r = parse_image(image);
        let found = manifests.iter().position(|(m, _)| {
            m.repository_name == r.repository
                && (r.digest.is_some_and(|d| m.image_id.image_digest.as_deref() == Some(d))
                    || (r.digest.is_none()
                        && r.tag.unwrap_or("latest") == m.image_id.image_tag.as_deref().unwrap_or("")))
        });
        let Some(i) = found else {
            warnings.push(format!(
                "container {}: no manifest given for {image}; image_platform not judged",
                c.name
            ));
            continue;
        };
        used[i] = true;
        let (m, manifest) = &manifests[i];
        let digest = m.image_id.image_digest.as_deref().unwrap_or_default();
        let Ok(digest) = Digest::parse(digest) else {
            warnings.push(format!(
                "container {}: the manifest's imageDigest {digest:?} is not a sha256 digest; image_platform not judged",
                c.name
            ));
            continue;
        };
        if let Err(v) = image_platform(td, &c.name, image, &digest, manifest) {
            violations.push(v);
        }
    }
    for ((m, _), used) in manifests.iter().zip(used) {
        if !used {
            let id = m.image_id.image_digest.as_deref().or(m.image_id.image_tag.as_deref()).unwrap_or("?");
            warnings.push(format!("the manifest of {}@{id} matches no container's image", m.repository_name));
        }
    }
    violations
}

fn taskdef_check(
    args: &PolicyArgs,
    taskdef: &Path,
    manifests: &[PathBuf],
    common: &Common,
) -> Result<u8, Unusable> {
    let (policy, mut warnings) = load_policy(args)?;
    let td = TaskDefinition::from_json(&read(taskdef)?)
        .map_err(|e| Unusable(format!("{}: {e}", taskdef.display())))?;
    let manifests = read_manifests(manifests)?;
    let mut violations: Vec<Violation> = check_task_definition(&policy, &td);
    if !manifests.is_empty() {
        violations.extend(platform_violations(&td, &manifests, &mut warnings));
    }
    for w in &warnings {
        eprintln!("shipgate: warning: {w}");
    }
    match common.format {
        Format::Json => print_json(&json!({"violations": violations})),
        Format::Text => {
            if violations.is_empty() {
                println!("{}: no violations", taskdef.display());
            }
            for v in &violations {
                println!("{} [{}] {}: {}", taskdef.display(), v.rule, v.container, v.message);
            }
        }
    }
    Ok(u8::from(!violations.is_empty()))
}
