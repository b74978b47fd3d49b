//! The templates, read as data, against what AWS documents: each test holds
//! one fix a real deployment needs (issue "The fleet and the example
//! pipeline deploy and work on AWS as written") and fails if it is undone.
//! (There is no AWS account here; `make lint-infra` runs cfn-lint, checkov and
//! `sam validate --lint` on both templates besides.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shipgate_core::yaml::{self, Node, Value};

fn template(path: &str) -> Node {
    let text = std::fs::read_to_string(shipgate_tests::workspace_root().join(path)).unwrap();
    yaml::parse(&text).unwrap()
}

fn fleet() -> Node {
    template("infra/template.yaml")
}

fn pipeline() -> Node {
    template("infra/pipeline/template.yaml")
}

fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.value {
        Value::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
        _ => None,
    }
}

fn at<'a>(node: &'a Node, path: &[&str]) -> &'a Node {
    path.iter().fold(node, |n, key| get(n, key).unwrap_or_else(|| panic!("no {key} in {path:?}")))
}

/// Every scalar under `node`, joined: intrinsic functions' tags are dropped
/// by the reader, so `!Ref X` reads as `X`.
fn text(node: &Node) -> String {
    match &node.value {
        Value::Seq(items) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        Value::Map(entries) => {
            entries.iter().map(|(k, v)| format!("{} {}", text(k), text(v))).collect::<Vec<_>>().join(" ")
        }
        _ => node.scalar_text().unwrap_or_default(),
    }
}

fn items(node: &Node) -> Vec<&Node> {
    match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    }
}

/// (logical id, resource) of every resource of `kind`.
fn resources<'a>(template: &'a Node, kind: &str) -> Vec<(String, &'a Node)> {
    let Value::Map(entries) = &at(template, &["Resources"]).value else { panic!("no Resources") };
    entries
        .iter()
        .filter(|(_, r)| get(r, "Type").and_then(Node::as_str) == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r))
        .collect()
}

fn resource<'a>(template: &'a Node, id: &str) -> &'a Node {
    at(template, &["Resources", id])
}

#[test]
fn the_test_listener_is_https_and_open_only_to_the_nat_gateways() {
    let t = pipeline();
    let listener = at(&t, &["Resources", "TestListener", "Properties"]);
    assert_eq!(get(listener, "Protocol").and_then(Node::as_str), Some("HTTPS"));
    assert!(get(listener, "Certificates").is_some());
    let mut rules: Vec<&Node> = resources(&t, "AWS::EC2::SecurityGroupIngress")
        .into_iter()
        .map(|(_, r)| at(r, &["Properties"]))
        .filter(|p| get(p, "FromPort").and_then(Node::scalar_text).as_deref() == Some("8443"))
        .collect();
    for (_, group) in resources(&t, "AWS::EC2::SecurityGroup") {
        if let Some(inline) = get(at(group, &["Properties"]), "SecurityGroupIngress") {
            rules.extend(
                items(inline)
                    .into_iter()
                    .filter(|r| get(r, "FromPort").and_then(Node::scalar_text).as_deref() == Some("8443")),
            );
        }
    }
    assert!(!rules.is_empty());
    for rule in rules {
        let source = text(get(rule, "CidrIp").expect("a CIDR source: the load balancer is internet-facing"));
        assert!(source.contains("NatGatewayCidrs") && !source.contains("0.0.0.0/0"), "{source}");
        assert!(
            get(rule, "SourceSecurityGroupId").is_none(),
            "a group reference matches private addresses only"
        );
    }
    let url = text(at(&t, &["Outputs", "TestListenerUrl", "Value"]));
    assert!(url.starts_with("https://") && url.contains("TestListenerHostName"), "{url}");
}

/// The bootstrap task as Fargate runs it: each task volume a directory owned
/// by root with mode 0755 ("By default, the volume is owned by root with 0755
/// permissions", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html),
/// each container's command run as its `User`, in `DependsOn` order, with
/// its mount points mapped to those directories. The app container's
/// `httpd -h <root>` must then find every target group's health path
/// readable as its user. (Needs root, to own the volume and switch users;
/// elsewhere it says so and checks nothing.)
#[test]
fn the_bootstrap_task_becomes_healthy_as_fargate_runs_it() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    use std::os::unix::process::CommandExt;
    // /proc/self is owned by the process's effective user.
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("not root: cannot own a volume as Fargate does or run as the task's users; not checked");
        return;
    }
    let t = pipeline();
    let task = at(resource(&t, "TaskDefinition"), &["Properties"]);
    let scratch = std::env::temp_dir().join(format!("shipgate-bootstrap-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut volumes = std::collections::BTreeMap::new();
    for volume in items(at(task, &["Volumes"])) {
        let name = text(at(volume, &["Name"]));
        let dir = scratch.join(&name);
        std::fs::create_dir(&dir).unwrap();
        chown(&dir, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        volumes.insert(name, dir);
    }
    let containers = items(at(task, &["ContainerDefinitions"]));
    let mount = |container: &Node, word: &str| -> String {
        let mut word = word.to_owned();
        for point in get(container, "MountPoints").map(items).unwrap_or_default() {
            let path = text(at(point, &["ContainerPath"]));
            let dir = &volumes[&text(at(point, &["SourceVolume"]))];
            word = word.replace(&path, &dir.display().to_string());
        }
        word
    };
    let user = |container: &Node| -> u32 {
        get(container, "User").map_or(0, |u| text(u).split(':').next().unwrap().parse().unwrap())
    };
    // The containers the app waits on to COMPLETE run first, to the end.
    let app = containers.iter().find(|c| text(at(c, &["Name"])) == "app").expect("an app container");
    for dependency in get(app, "DependsOn").map(items).unwrap_or_default() {
        assert_eq!(text(at(dependency, &["Condition"])), "COMPLETE");
        let name = text(at(dependency, &["ContainerName"]));
        let init = containers.iter().find(|c| text(at(c, &["Name"])) == name).unwrap();
        let command: Vec<String> =
            items(at(init, &["Command"])).iter().map(|w| mount(init, &text(w))).collect();
        let out = std::process::Command::new(&command[0])
            .args(&command[1..])
            .uid(user(init))
            .gid(user(init))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name} as user {}: {}",
            user(init),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The app container serves `-h <root>` as its user: it writes nothing.
    let command: Vec<String> = items(at(app, &["Command"])).into_iter().map(text).collect();
    assert_eq!(command[0], "httpd", "the app container only serves: {command:?}");
    let root = command.iter().skip_while(|w| *w != "-h").nth(1).expect("httpd -h <root>");
    assert_ne!(user(app), 0, "the app container runs as a user of its own");
    for (id, group) in resources(&t, "AWS::ElasticLoadBalancingV2::TargetGroup") {
        let path = text(at(group, &["Properties", "HealthCheckPath"]));
        let file = mount(app, &format!("{root}{path}"));
        let out =
            std::process::Command::new("cat").arg(&file).uid(user(app)).gid(user(app)).output().unwrap();
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "{id} checks {path}: user {} cannot read {file}: {}",
            user(app),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn the_source_action_may_use_a_connection_of_either_prefix() {
    let t = pipeline();
    let role = text(at(&t, &["Resources", "PipelineRole", "Properties", "Policies"]));
    for action in ["codeconnections:UseConnection", "codestar-connections:UseConnection"] {
        assert!(role.contains(action), "{action}");
    }
}

#[test]
fn every_build_pushes_a_tag_of_its_own_to_the_immutable_repository() {
    let t = pipeline();
    assert_eq!(text(at(&t, &["Resources", "Repository", "Properties", "ImageTagMutability"])), "IMMUTABLE");
    let spec = text(at(&t, &["Resources", "BuildProject", "Properties", "Source", "BuildSpec"]));
    let line = spec.lines().find(|l| l.contains("TAG=")).unwrap();
    let assignment = line.trim().trim_start_matches("- ");
    // The tag grammar of the OCI distribution spec (tags/list, "<reference>"):
    // https://github.com/opencontainers/distribution-spec/blob/main/spec.md
    let grammar = regex::Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap();
    // As CodeBuild runs it (`shell: bash`), with and without a source version.
    for version in [Some("0123456789abcdef0123456789abcdef01234567"), None] {
        let mut bash = std::process::Command::new("bash");
        bash.arg("-c").arg(format!("{assignment}; printf %s \"$TAG\"")).env("CODEBUILD_BUILD_NUMBER", "42");
        bash.env_remove("CODEBUILD_RESOLVED_SOURCE_VERSION");
        if let Some(v) = version {
            bash.env("CODEBUILD_RESOLVED_SOURCE_VERSION", v);
        }
        let tag = String::from_utf8(bash.output().unwrap().stdout).unwrap();
        assert!(grammar.is_match(&tag), "source version {version:?} gives tag {tag:?}");
        assert!(tag.contains("42"), "each build its own tag: {tag:?}");
    }
    assert!(spec.contains("imageDigest"), "the digest is what is deployed");
}

/// The schedules say what they send (Scheduler's default payload is not a
/// documented contract), it decodes as the function's own event, and
/// CloudFormation names each schedule (SAM's `OmitName`), so a second stack
/// in the Region does not clash with the first.
#[test]
fn each_schedule_sends_an_input_its_function_decodes_under_a_name_of_its_own() {
    let t = fleet();
    let mut schedules = 0;
    for (id, function) in resources(&t, "AWS::Serverless::Function") {
        let Some(events) = get(at(function, &["Properties"]), "Events") else { continue };
        let Value::Map(events) = &events.value else { continue };
        for (name, event) in events {
            if get(event, "Type").and_then(Node::as_str) != Some("ScheduleV2") {
                continue;
            }
            schedules += 1;
            let properties = at(event, &["Properties"]);
            let name = name.as_str().unwrap();
            assert_eq!(get(properties, "OmitName").map(text).as_deref(), Some("true"), "{id}.{name}");
            let input = get(properties, "Input").unwrap_or_else(|| panic!("{id}.{name} has no Input"));
            // What CloudFormation and Scheduler put in place of the variables.
            let payload = text(input)
                .replace("${AWS::AccountId}", "123456789012")
                .replace("${AWS::Region}", "us-east-1")
                .replace("<aws.scheduler.execution-id>", "6f1e0b6c-0000-4000-8000-000000000000")
                .replace("<aws.scheduler.scheduled-time>", "2026-12-08T08:00:00Z")
                .replace(
                    "<aws.scheduler.schedule-arn>",
                    "arn:aws:scheduler:us-east-1:123456789012:schedule/default/s",
                );
            let payload: serde_json::Value =
                serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{id}.{name}: {e}: {payload}"));
            let decoded = match id.as_str() {
                "ScanGateFunction" => scan_gate::ScanGateEvent::decode(payload)
                    .map(|e| matches!(e, scan_gate::ScanGateEvent::Daily)),
                "NotifierFunction" => notifier::NotifierEvent::decode(payload).map(|e| match e {
                    notifier::NotifierEvent::FlushExposure(_) => true,
                    notifier::NotifierEvent::Event { notice, .. } => {
                        matches!(*notice, notifier::Notice::Daily)
                    }
                }),
                other => panic!("a schedule on {other}: say here what it decodes as"),
            };
            assert_eq!(decoded, Ok(true), "{id}.{name}");
        }
    }
    assert_eq!(schedules, 3, "read the template's schedules");
}

/// A first deploy reserves no concurrency: reserving 85 needs an account
/// quota of at least 185 (Lambda keeps 100 unreserved), more than new
/// accounts get. `ReserveConcurrency=true` turns it on.
#[test]
fn a_first_deploy_reserves_no_concurrency() {
    let t = fleet();
    assert_eq!(text(at(&t, &["Parameters", "ReserveConcurrency", "Default"])), "false");
    assert_eq!(text(at(&t, &["Conditions", "Reserve"])), "ReserveConcurrency true");
    for (id, function) in resources(&t, "AWS::Serverless::Function") {
        let reserved = text(at(function, &["Properties", "ReservedConcurrentExecutions"]));
        assert!(reserved.starts_with("Reserve ") && reserved.ends_with("AWS::NoValue"), "{id}: {reserved}");
    }
}

#[test]
fn the_example_task_definition_needs_nothing_the_stacks_do_not_grant() {
    let path = shipgate_tests::workspace_root().join("infra/pipeline/taskdef.json");
    let taskdef: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let execution_role = text(resource(&pipeline(), "TaskExecutionRole"));
    for container in taskdef["containerDefinitions"].as_array().unwrap() {
        if container.get("secrets").is_some() {
            assert!(
                execution_role.contains("secretsmanager:GetSecretValue"),
                "secrets need the execution role"
            );
        }
    }
}

#[test]
fn cloudwatch_logs_may_use_each_key_only_for_log_groups_as_documented() {
    for (t, key) in [(fleet(), "ShipgateKey"), (pipeline(), "PipelineKey")] {
        let statements = at(resource(&t, key), &["Properties", "KeyPolicy", "Statement"]);
        let logs: Vec<&Node> =
            items(statements).into_iter().filter(|s| text(at(s, &["Principal"])).contains("logs.")).collect();
        assert_eq!(logs.len(), 1, "{key}");
        let condition = text(at(logs[0], &["Condition"]));
        assert!(condition.starts_with("ArnLike kms:EncryptionContext:aws:logs:arn"), "{key}: {condition}");
        assert!(!condition.contains("aws:SourceAccount"), "{key}: {condition}");
    }
}

#[test]
fn rollback_watches_both_target_groups_and_a_stopped_deployment() {
    let t = pipeline();
    let group = at(&t, &["Resources", "DeploymentGroup", "Properties"]);
    let events = text(at(group, &["AutoRollbackConfiguration", "Events"]));
    for event in ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"] {
        assert!(events.contains(event), "{event}");
    }
    let watched = text(at(group, &["AlarmConfiguration", "Alarms"]));
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    for (target_group, _) in resources(&t, "AWS::ElasticLoadBalancingV2::TargetGroup") {
        let covering = alarms.iter().find(|(id, alarm)| {
            text(at(alarm, &["Properties", "Dimensions"])).contains(&format!("{target_group}."))
                && watched.contains(id)
        });
        assert!(covering.is_some(), "no rollback alarm watches {target_group}");
    }
}

#[test]
fn the_fleet_alarms_on_its_own_failures_to_the_operations_topic() {
    let t = fleet();
    let alarms = resources(&t, "AWS::CloudWatch::Alarm");
    let on = |metric: &str, dimension: &str| {
        alarms.iter().any(|(_, a)| {
            let p = at(a, &["Properties"]);
            text(at(p, &["MetricName"])) == metric
                && text(at(p, &["Dimensions"])).contains(dimension)
                && text(at(p, &["AlarmActions"])) == "OperationsTopic"
        })
    };
    for (queue, _) in resources(&t, "AWS::SQS::Queue") {
        assert!(on("ApproximateNumberOfMessagesVisible", &queue), "{queue} has no alarm");
    }
    for (function, properties) in resources(&t, "AWS::Serverless::Function") {
        for metric in ["Errors", "Throttles"] {
            assert!(on(metric, &function), "{function} has no {metric} alarm");
        }
        let timeout = get(at(properties, &["Properties"]), "Timeout").and_then(Node::scalar_text);
        if ["ReleaseGateFunction", "DeployHooksFunction"].contains(&function.as_str()) {
            let seconds: i64 = timeout.unwrap().parse().unwrap();
            let near = alarms.iter().any(|(_, a)| {
                let p = at(a, &["Properties"]);
                text(at(p, &["MetricName"])) == "Duration"
                    && text(at(p, &["Dimensions"])).contains(&function)
                    && text(at(p, &["Threshold"])).parse::<i64>().unwrap() < seconds * 1000
            });
            assert!(near, "{function} has no alarm before its {seconds} s deadline");
        }
    }
}

#[test]
fn the_audit_trail_outlives_the_stack() {
    let t = fleet();
    for id in ["ConfigBucket", "ShipgateKey"] {
        for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
            assert_eq!(text(at(resource(&t, id), &[policy])), "Retain", "{id} {policy}");
        }
    }
}

/// SAM attaches `AWSLambdaVPCAccessExecutionRole` to any function with a
/// `VpcConfig`, even an `!If` that resolves to no VPC: a function that may
/// join a VPC has its role written out, with the policy under the same
/// condition, and no function lists it again.
#[test]
fn the_vpc_policy_is_attached_once_and_only_with_a_vpc() {
    let t = fleet();
    for (function, definition) in resources(&t, "AWS::Serverless::Function") {
        let properties = at(definition, &["Properties"]);
        let policies = get(properties, "Policies").map(text).unwrap_or_default();
        assert!(!policies.contains("AWSLambdaVPCAccessExecutionRole"), "{function}");
        let Some(vpc) = get(properties, "VpcConfig") else { continue };
        let condition = items(vpc)[0].scalar_text().unwrap();
        let role = text(get(properties, "Role").expect("a written-out role"));
        let managed =
            text(at(resource(&t, role.trim_end_matches(".Arn")), &["Properties", "ManagedPolicyArns"]));
        assert!(managed.contains(&format!("{condition} arn:")), "{function}: {managed}");
        assert_eq!(managed.matches("AWSLambdaVPCAccessExecutionRole").count(), 1, "{function}: {managed}");
    }
}

/// Every resource that holds data says what happens to it when the stack is
/// deleted or the resource replaced (CloudFormation deletes by default,
/// except a few types it keeps; explicit is the only reading that does not
/// depend on which).
#[test]
fn every_stateful_resource_says_what_deletion_does_to_it() {
    const STATEFUL: [&str; 6] = [
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
        "AWS::SecretsManager::Secret",
        "AWS::ECR::Repository",
    ];
    let mut seen = 0;
    for t in [fleet(), pipeline()] {
        for kind in STATEFUL {
            for (id, resource) in resources(&t, kind) {
                seen += 1;
                for attribute in ["DeletionPolicy", "UpdateReplacePolicy"] {
                    let policy = get(resource, attribute).map(text);
                    assert!(
                        matches!(
                            policy.as_deref(),
                            Some("Retain" | "Delete" | "Snapshot" | "RetainExceptOnCreate")
                        ),
                        "{id} ({kind}) has no explicit {attribute}"
                    );
                }
            }
        }
    }
    assert!(seen >= 16, "read the templates' stateful resources ({seen})");
}
