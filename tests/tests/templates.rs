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

#[test]
fn the_bootstrap_container_answers_the_target_groups_health_check() {
    let t = pipeline();
    let container = items(at(&t, &["Resources", "TaskDefinition", "Properties", "ContainerDefinitions"]))[0];
    let command = text(at(container, &["Command"]));
    let root =
        command.split("-h ").nth(1).and_then(|r| r.split_whitespace().next()).expect("httpd -h <root>");
    for (id, group) in resources(&t, "AWS::ElasticLoadBalancingV2::TargetGroup") {
        let path = text(at(group, &["Properties", "HealthCheckPath"]));
        assert!(
            command.contains(&format!("> {root}{path}")),
            "{id} checks {path}; the container runs {command}"
        );
    }
    // The root file system is read-only: the file is written to a volume.
    let mounts = text(at(container, &["MountPoints"]));
    assert!(mounts.contains(&format!("ContainerPath {root}")), "{mounts}");
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
    let tag = spec.lines().find(|l| l.contains("TAG=")).unwrap();
    assert!(tag.contains("CODEBUILD_BUILD_NUMBER"), "{tag}");
    assert!(spec.contains("imageDigest"), "the digest is what is deployed");
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
