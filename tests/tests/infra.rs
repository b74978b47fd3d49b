//! The fleet template grants each function's role exactly the AWS actions
//! its code calls: a new SDK call without its permission fails here, and so
//! does a permission no code uses.
//!
//! The actions are found by reading the source: the SDK operations each
//! adapter in `shared/aws` calls, which adapters each function uses (through
//! its own code and other adapters), and the operations it calls directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;
use shipgate_core::yaml::{self, Node, Value};

/// Every SDK operation Shipgate calls, and the IAM actions it needs: the
/// operation's own, and those AWS checks besides. A GET of a missing key
/// needs `s3:ListBucket` to be told 404 rather than 403 (and every first
/// read is of a missing key); `DescribeImageScanFindings` of an image with
/// enhanced findings needs `inspector2:ListFindings` (and ECR's
/// enhanced-scanning page lists `inspector2:ListCoverage`: granted, since
/// whether that call needs it is not said). Whether the grants are
/// enough is what the emulator, enforcing IAM, checks by running each
/// function as its role; this table checks that no grant goes unused.
const OPERATIONS: &[(&str, &[&str])] = &[
    ("get_object", &["s3:GetObject", "s3:ListBucket"]),
    ("put_object", &["s3:PutObject"]),
    ("list_objects_v2", &["s3:ListBucket"]),
    (
        "describe_image_scan_findings",
        &["ecr:DescribeImageScanFindings", "inspector2:ListFindings", "inspector2:ListCoverage"],
    ),
    ("describe_images", &["ecr:DescribeImages"]),
    ("batch_get_image", &["ecr:BatchGetImage"]),
    ("get_download_url_for_layer", &["ecr:GetDownloadUrlForLayer"]),
    ("list_findings", &["inspector2:ListFindings"]),
    ("describe_task_definition", &["ecs:DescribeTaskDefinition"]),
    ("describe_service_revisions", &["ecs:DescribeServiceRevisions"]),
    ("publish", &["sns:Publish"]),
    ("put_events", &["events:PutEvents"]),
    ("put_job_success_result", &["codepipeline:PutJobSuccessResult"]),
    ("put_job_failure_result", &["codepipeline:PutJobFailureResult"]),
    ("get_job_details", &["codepipeline:GetJobDetails"]),
    ("get_pipeline", &["codepipeline:GetPipeline"]),
    ("start_pipeline_execution", &["codepipeline:StartPipelineExecution"]),
    ("get_deployment", &["codedeploy:GetDeployment"]),
    ("get_deployment_group", &["codedeploy:GetDeploymentGroup"]),
    ("list_deployment_targets", &["codedeploy:ListDeploymentTargets"]),
    ("get_deployment_target", &["codedeploy:GetDeploymentTarget"]),
    ("put_lifecycle_event_hook_execution_status", &["codedeploy:PutLifecycleEventHookExecutionStatus"]),
    ("get_secret_value", &["secretsmanager:GetSecretValue"]),
];

/// Adapters whose calls are not made with the function's role: the artifact
/// reader signs with the CodePipeline job's own credentials.
const NOT_THE_ROLE: &[&str] = &["artifacts::read_files"];

/// Calls that look like SDK operations but are not.
const NOT_OPERATIONS: &[&str] = &[
    "send",
    "builder",
    "build",
    "clone",
    "to_owned",
    "to_string",
    "as_str",
    "collect",
    "into_inner",
    "customize",
    "config_override",
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What one piece of code reaches: SDK operations, adapter items it calls.
#[derive(Debug, Default)]
struct Reach {
    operations: BTreeSet<String>,
    calls: BTreeSet<String>,
}

struct Scanner {
    op: Regex,
    chain: Regex,
    bucket: Regex,
    client: Regex,
    self_call: Regex,
    path_call: Regex,
    free_call: Regex,
    known_ops: BTreeSet<&'static str>,
}

impl Scanner {
    fn new() -> Self {
        Self {
            op: Regex::new(r"\.([a-z][a-z0-9_]*)\(\)").unwrap(),
            chain: Regex::new(r"(?s)\.([a-z][a-z0-9_]*)\(\)[^;{}]*?\.send\(\)").unwrap(),
            bucket: Regex::new(r"bucket\s*\.\s*([a-z_0-9]+)(?:::<[^>]*>)?\(").unwrap(),
            // The adapters' service types, held as `deps.ecr` and so on.
            client: Regex::new(r"\b(ecr|ecs|codedeploy|codepipeline)\s*\.\s*([a-z_0-9]+)\(").unwrap(),
            self_call: Regex::new(r"self\s*\.\s*([a-z_0-9]+)(?:::<[^>]*>)?\(").unwrap(),
            // `Type::method(...)`: an associated function, or a method called
            // by its path.
            path_call: Regex::new(r"\b([A-Z][A-Za-z]*)::([a-z_0-9]+)\(").unwrap(),
            free_call: Regex::new(r"\b([a-z_][a-z0-9_]*)\(").unwrap(),
            known_ops: OPERATIONS.iter().map(|(op, _)| *op).collect(),
        }
    }

    /// The reach of `code`; `owner` is the impl type for `self.` calls,
    /// `free` the names of adapter free functions (`module::name` by name).
    fn reach(&self, code: &str, owner: Option<&str>, free: &BTreeMap<String, String>) -> Reach {
        let mut reach = Reach::default();
        for c in self.op.captures_iter(code) {
            if self.known_ops.contains(&c[1]) {
                reach.operations.insert(c[1].to_owned());
            }
        }
        for c in self.chain.captures_iter(code) {
            let name = &c[1];
            assert!(
                self.known_ops.contains(name) || NOT_OPERATIONS.contains(&name),
                "SDK operation {name} is called but has no IAM action in tests/tests/infra.rs OPERATIONS"
            );
        }
        for c in self.bucket.captures_iter(code) {
            reach.calls.insert(format!("Bucket::{}", &c[1]));
        }
        for c in self.client.captures_iter(code) {
            let owner = match &c[1] {
                "ecr" => "Ecr",
                "ecs" => "Ecs",
                "codedeploy" => "CodeDeploy",
                _ => "CodePipeline",
            };
            reach.calls.insert(format!("{owner}::{}", &c[2]));
        }
        if code.contains("bus.put(") {
            reach.calls.insert("Bus::put".into());
        }
        if code.contains("topic.publish(") {
            reach.calls.insert("Topic::publish".into());
        }
        if let Some(owner) = owner {
            for c in self.self_call.captures_iter(code) {
                reach.calls.insert(format!("{owner}::{}", &c[1]));
            }
        }
        for c in self.path_call.captures_iter(code) {
            reach.calls.insert(format!("{}::{}", &c[1], &c[2]));
        }
        for c in self.free_call.captures_iter(code) {
            if let Some(qualified) = free.get(&c[1]) {
                reach.calls.insert(qualified.clone());
            }
        }
        reach
    }
}

/// Every adapter item in shared/aws (`Type::method` or `module::function`)
/// with its body.
fn adapter_items() -> BTreeMap<String, (Option<String>, String)> {
    let fn_line = Regex::new(r"^\s*(pub(\(crate\))? )?(async )?fn ([a-z_0-9]+)").unwrap();
    let impl_line = Regex::new(r"^impl(<[^>]*>)? ([A-Z][A-Za-z]*)").unwrap();
    let mut items = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("shared/aws/src")).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = read(&path);
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let (mut current, mut owner, mut body) = (None::<String>, None::<String>, String::new());
        let mut in_impl: Option<String> = None;
        for line in text.lines() {
            if let Some(c) = impl_line.captures(line) {
                in_impl = Some(c[2].to_owned());
            } else if line.starts_with('}') && !line.starts_with("})") {
                in_impl = None;
            }
            if let Some(c) = fn_line.captures(line) {
                if let Some(name) = current.take() {
                    items.insert(name, (owner.take(), std::mem::take(&mut body)));
                }
                let fn_name = c[4].to_owned();
                current = Some(match &in_impl {
                    Some(t) => format!("{t}::{fn_name}"),
                    None => format!("{module}::{fn_name}"),
                });
                owner = in_impl.clone();
            }
            body.push_str(line);
            body.push('\n');
        }
        if let Some(name) = current {
            items.insert(name, (owner, body));
        }
    }
    items
}

/// IAM actions each function's code needs, by function directory name.
fn actions_from_code() -> BTreeMap<String, BTreeSet<String>> {
    let scanner = Scanner::new();
    let items = adapter_items();
    let free: BTreeMap<String, String> = items
        .keys()
        .filter(|k| !k.chars().next().unwrap().is_ascii_uppercase())
        .map(|k| (k.rsplit("::").next().unwrap().to_owned(), k.clone()))
        .collect();
    let reach: BTreeMap<&String, Reach> = items
        .iter()
        .map(|(name, (owner, body))| (name, scanner.reach(body, owner.as_deref(), &free)))
        .collect();
    let actions_of = |op: &str| {
        OPERATIONS.iter().find(|(o, _)| *o == op).map(|(_, a)| a.iter().map(|a| (*a).to_owned())).unwrap()
    };

    let mut out = BTreeMap::new();
    for function in shipgate_tests::FUNCTIONS {
        let dir = root().join("functions").join(function).join("src");
        // Every module of the function's crate.
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        files.sort();
        let code: String = files.iter().map(|f| read(f)).collect();
        let direct = scanner.reach(&code, None, &free);
        let mut actions: BTreeSet<String> = direct.operations.iter().flat_map(|o| actions_of(o)).collect();
        let mut pending: Vec<String> = direct.calls.into_iter().collect();
        let mut seen = BTreeSet::new();
        while let Some(item) = pending.pop() {
            if !seen.insert(item.clone()) || NOT_THE_ROLE.contains(&item.as_str()) {
                continue;
            }
            let Some(r) = reach.get(&item) else { continue };
            actions.extend(r.operations.iter().flat_map(|o| actions_of(o)));
            if item == "Bucket::get_version" {
                actions.insert("s3:GetObjectVersion".into());
            }
            pending.extend(r.calls.iter().cloned());
        }
        out.insert(function.to_owned(), actions);
    }
    out
}

fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
        _ => None,
    }
}

fn strings(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => node.scalar_text().into_iter().collect(),
    }
}

/// The statements of a `Policies` list: SAM's (`- Statement: [...]`) or an
/// IAM role's (`- PolicyName: ..., PolicyDocument: {Statement: [...]}`).
fn statements_of(policies: &Node) -> Vec<&Node> {
    let Value::Seq(policies) = &policies.value else { return vec![] };
    policies
        .iter()
        .filter_map(|p| {
            get(p, "Statement").or_else(|| get(p, "PolicyDocument").and_then(|d| get(d, "Statement")))
        })
        .flat_map(|s| match &s.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![],
        })
        .collect()
}

/// Each function's role statements: in its `Policies`, or in the role the
/// template writes out for it (`Role: !GetAtt XRole.Arn`).
fn role_statements(template: &Node) -> BTreeMap<String, Vec<&Node>> {
    let Value::Map(resources) = &get(template, "Resources").unwrap().value else { panic!("no Resources") };
    let mut out = BTreeMap::new();
    for (_, resource) in resources {
        if get(resource, "Type").and_then(Node::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let properties = get(resource, "Properties").unwrap();
        let code_uri = get(properties, "CodeUri").and_then(Node::as_str).unwrap();
        let function = code_uri.trim_end_matches('/').rsplit('/').next().unwrap().to_owned();
        let mut statements: Vec<&Node> = get(properties, "Policies").map(statements_of).unwrap_or_default();
        if let Some(role) = get(properties, "Role").and_then(Node::as_str) {
            let role = resources
                .iter()
                .find(|(k, _)| k.as_str() == role.strip_suffix(".Arn"))
                .map(|(_, r)| r)
                .unwrap_or_else(|| panic!("{function}'s role {role} is not in the template"));
            let policies = get(role, "Properties").and_then(|p| get(p, "Policies"));
            statements.extend(policies.map(statements_of).unwrap_or_default());
        }
        out.insert(function, statements);
    }
    out
}

/// Actions Lambda itself uses with a function's role, on its behalf: the
/// key for encrypted resources, and the dead-letter queue's SendMessage (SAM
/// adds that to roles it generates; a written-out role states it).
fn lambdas_own(action: &str) -> bool {
    action.starts_with("kms:") || action == "sqs:SendMessage"
}

/// The Allow actions of each function's role in the template, less Lambda's own.
fn actions_in_template() -> BTreeMap<String, BTreeSet<String>> {
    let template = yaml::parse(&read(&root().join("infra/template.yaml"))).unwrap();
    role_statements(&template)
        .into_iter()
        .map(|(function, statements)| {
            let mut actions = BTreeSet::new();
            for statement in statements {
                assert_eq!(get(statement, "Effect").and_then(Node::as_str), Some("Allow"));
                actions.extend(
                    strings(get(statement, "Action").unwrap()).into_iter().filter(|a| !lambdas_own(a)),
                );
            }
            (function, actions)
        })
        .collect()
}

#[test]
fn each_role_grants_exactly_the_actions_its_code_calls() {
    let code = actions_from_code();
    let template = actions_in_template();
    assert_eq!(template.keys().collect::<Vec<_>>(), code.keys().collect::<Vec<_>>(), "one role per function");
    for (function, needed) in &code {
        let granted = &template[function];
        let missing: Vec<_> = needed.difference(granted).collect();
        let unused: Vec<_> = granted.difference(needed).collect();
        assert!(
            missing.is_empty() && unused.is_empty(),
            "{function}: code calls {missing:?} without permission; role grants {unused:?} no code calls"
        );
    }
}

#[test]
fn the_scanner_sees_calls_through_adapters() {
    let code = actions_from_code();
    // release-gate reaches S3 only through Bucket and load_policy, ECR only through adapters.
    assert!(code["release-gate"].contains("ecr:DescribeImages"));
    assert!(code["release-gate"].contains("codepipeline:GetJobDetails"), "a direct client call");
    assert!(code["policy-validator"].contains("s3:GetObjectVersion"));
    assert!(!code["source-trigger"].contains("s3:PutObject"), "source-trigger only reads");
}

/// The resource types AWS's Service Authorization Reference lists for each
/// action (`tests/emulator/iam_reference.py`, the data the emulator enforces).
fn resource_types(actions: &BTreeSet<String>) -> BTreeMap<String, BTreeMap<String, bool>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        action: String,
        resource_types: BTreeMap<String, bool>,
    }
    let out = std::process::Command::new(shipgate_tests::python())
        .arg(root().join("tests/emulator/iam_reference.py"))
        .args(actions)
        .output()
        .expect("the emulator's Python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Entry>(line).unwrap())
        .map(|e| (e.action, e.resource_types))
        .collect()
}

#[test]
fn star_resources_only_where_aws_allows_nothing_narrower() {
    let text = read(&root().join("infra/template.yaml"));
    let template = yaml::parse(&text).unwrap();
    let Value::Map(resources) = &get(&template, "Resources").unwrap().value else { panic!() };
    let mut starred = BTreeMap::new();
    for (name, resource) in resources {
        let Some(policies) = get(resource, "Properties").and_then(|p| get(p, "Policies")) else { continue };
        for statement in statements_of(policies) {
            if get(statement, "Resource").and_then(Node::as_str) == Some("*") {
                for action in strings(get(statement, "Action").unwrap()) {
                    starred.insert(action, name.as_str().unwrap().to_owned());
                }
            }
        }
    }
    let reference = resource_types(&starred.keys().cloned().collect());
    for (action, resource) in &starred {
        assert!(
            reference[action].is_empty(),
            "{resource}: {action} on * but AWS authorises it against {:?}",
            reference[action].keys().collect::<Vec<_>>()
        );
    }
    assert!(starred.contains_key("codedeploy:PutLifecycleEventHookExecutionStatus"), "read the template");
}

#[test]
fn the_function_list_is_the_functions_folder() {
    let mut folders: Vec<String> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut listed: Vec<String> = shipgate_tests::FUNCTIONS.iter().map(|f| (*f).to_owned()).collect();
    listed.sort();
    assert_eq!(listed, folders, "shipgate_tests::FUNCTIONS must name every folder under functions/");
}

/// scan-gate hears only scans and findings of the ECR repositories Shipgate
/// covers: Inspector sends `Inspector2 Scan` and `Inspector2 Finding` for
/// EC2 instances, Lambda functions and machine images too, with no
/// repository. (Its schedule and Shipgate's own events name no image.)
#[test]
fn scan_rules_match_only_ecr_images_of_covered_repositories() {
    let template = yaml::parse(&read(&root().join("infra/template.yaml"))).unwrap();
    let function = get(get(&template, "Resources").unwrap(), "ScanGateFunction").unwrap();
    let Value::Map(events) = &get(get(function, "Properties").unwrap(), "Events").unwrap().value else {
        panic!("ScanGateFunction has no Events")
    };
    let mut aws_rules = 0;
    for (name, event) in events {
        let Some(pattern) = get(get(event, "Properties").unwrap(), "Pattern") else { continue };
        let source = get(pattern, "source").map(|s| format!("{:?}", s.value)).unwrap_or_default();
        if !source.contains("aws.") {
            continue;
        }
        aws_rules += 1;
        let detail = get(pattern, "detail");
        let repository = detail.and_then(|d| get(d, "repository-name")).or_else(|| {
            detail
                .and_then(|d| get(d, "resources"))
                .and_then(|r| get(r, "details"))
                .and_then(|d| get(d, "awsEcrContainerImage"))
                .and_then(|i| get(i, "repositoryName"))
        });
        assert!(
            repository.is_some(),
            "{}: the rule must match the image's repository",
            name.as_str().unwrap()
        );
    }
    assert_eq!(aws_rules, 3, "basic scans, enhanced scans and findings");
}

/// The notifier takes over a claim older than `notifier::STALE_CLAIM`: that
/// must be longer than the function's timeout, or a claim of an invocation
/// still running could be taken over and the message sent twice.
#[test]
fn a_stale_claim_outlives_the_notifiers_timeout() {
    let template = yaml::parse(&read(&root().join("infra/template.yaml"))).unwrap();
    let seconds = |node: Option<&Node>| node.and_then(Node::scalar_text).and_then(|t| t.parse::<i64>().ok());
    let global =
        seconds(get(&template, "Globals").and_then(|g| get(g, "Function")).and_then(|f| get(f, "Timeout")));
    let own = get(&template, "Resources")
        .and_then(|r| get(r, "NotifierFunction"))
        .and_then(|f| get(f, "Properties"))
        .and_then(|p| seconds(get(p, "Timeout")));
    let timeout = own.or(global).expect("the notifier has a timeout");
    assert!(
        notifier::STALE_CLAIM > chrono::Duration::seconds(timeout),
        "STALE_CLAIM {:?} must exceed the notifier's Timeout of {timeout} s",
        notifier::STALE_CLAIM
    );
}
