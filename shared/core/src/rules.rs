//! Task-definition and image rules (`docs/policy.md`). Rule ids are part of the
//! contract: `privileged`, `readonly_root_filesystem`, `non_root_user`,
//! `host_namespaces`, `capabilities`, `forbidden_env`,
//! `secret_in_environment`, `log_configuration`, `image_registry`,
//! `image_digest`, and `image_platform` where an image's manifest is known.

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, ImageDigest};
use crate::glob::Glob;
use crate::image::parse_image;
use crate::manifest::{Manifest, Platform};
use crate::policy::{Allowance, Policy, Requirement, same_capability};
use crate::taskdef::{ContainerDefinition, TaskDefinition};
use crate::user::RunAs;
use crate::yaml_check::compile_regex;

/// Names the violations of task-level settings, which concern every container.
pub const TASK_LEVEL: &str = "*";

rule_ids! {
    /// The task-definition and image rules: the one list of their ids, which
    /// are part of the contract (`docs/policy.md`).
    pub enum TaskRule {
        Privileged = "privileged",
        ReadonlyRootFilesystem = "readonly_root_filesystem",
        NonRootUser = "non_root_user",
        HostNamespaces = "host_namespaces",
        Capabilities = "capabilities",
        ForbiddenEnv = "forbidden_env",
        SecretInEnvironment = "secret_in_environment",
        LogConfiguration = "log_configuration",
        ImageRegistry = "image_registry",
        ImageDigest = "image_digest",
        ImagePlatform = "image_platform",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: TaskRule,
    pub container: String,
    pub message: String,
}

fn violation(rule: TaskRule, container: &str, message: String) -> Violation {
    Violation { rule, container: container.to_owned(), message }
}

/// The `image_platform` rule for a container whose image manifest is known
/// (`digest` is the image's): every digest the task may run on its
/// `runtimePlatform` (`Manifest::resolve`: an index's children any host of
/// that platform pulls, or the image itself), or the violation naming the
/// platforms the image does have.
pub fn image_platform(
    td: &TaskDefinition,
    container: &str,
    image: &str,
    digest: &Digest,
    manifest: &Manifest,
) -> Result<Vec<ImageDigest>, Violation> {
    let wanted = Platform::of_task(td);
    manifest.resolve(digest, &wanted).map_err(|has| {
        let has: Vec<String> = has.iter().map(ToString::to_string).collect();
        let message = match manifest {
            Manifest::Index(_) if has.is_empty() => format!(
                "image {image} is an image index with no image for any platform; the task runs on {} ({wanted})",
                wanted.ecs_name()
            ),
            Manifest::Index(_) => format!(
                "image {image} is an image index with no image for the task's runtimePlatform {} ({wanted}); it has {}",
                wanted.ecs_name(),
                has.join(", ")
            ),
            Manifest::Image { .. } => format!(
                "image {image} is built for {}, but the task's runtimePlatform is {} ({wanted})",
                has.join(", "),
                wanted.ecs_name()
            ),
        };
        violation(TaskRule::ImagePlatform, container, message)
    })
}

/// Every violation of the policy's task-definition and image rules, task-level
/// settings first, then each container in order.
pub fn check_task_definition(policy: &Policy, td: &TaskDefinition) -> Vec<Violation> {
    let t = &policy.task_definition;
    let mut out = Vec::new();
    if t.host_namespaces == Allowance::Forbid {
        for (field, value, what) in [
            ("pidMode", &td.pid_mode, "PID"),
            ("ipcMode", &td.ipc_mode, "IPC"),
            ("networkMode", &td.network_mode, "network"),
        ] {
            if value.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("host")) {
                let message = format!("{field} is host: the task shares the host's {what} namespace");
                out.push(violation(TaskRule::HostNamespaces, TASK_LEVEL, message));
            }
        }
    }
    let secret_patterns: Vec<regex::Regex> =
        t.secret_env_patterns.iter().filter_map(|p| compile_regex(p).ok()).collect();
    for c in &td.container_definitions {
        check_container(policy, c, &secret_patterns, &mut out);
    }
    out
}

fn check_container(
    policy: &Policy,
    c: &ContainerDefinition,
    secret_patterns: &[regex::Regex],
    out: &mut Vec<Violation>,
) {
    let t = &policy.task_definition;
    let name = c.name.as_str();
    if t.privileged == Allowance::Forbid && c.privileged == Some(true) {
        out.push(violation(TaskRule::Privileged, name, "runs privileged (privileged: true)".into()));
    }
    if t.readonly_root_filesystem == Requirement::Require && c.readonly_root_filesystem != Some(true) {
        out.push(violation(
            TaskRule::ReadonlyRootFilesystem,
            name,
            "root filesystem is writable; set readonlyRootFilesystem: true".into(),
        ));
    }
    if t.non_root_user == Requirement::Require {
        // Spaces around a number: runc would read a name the image is
        // unlikely to have; judged as the number, so root is never missed.
        let user = c.user.as_deref().map(str::trim).unwrap_or("");
        let message = match RunAs::parse(user) {
            RunAs::Unset => Some("user is not set, so it runs as root; set a non-root user".to_owned()),
            RunAs::Refused => Some(format!(
                "user {user:?} is outside the uids and gids the runtime accepts (0-2147483647): runc refuses \
                 it, and containerd would wrap it (4294967296 is uid 0)"
            )),
            run_as if run_as.is_root() => Some(format!("runs as root (user {user:?})")),
            _ => None,
        };
        if let Some(message) = message {
            out.push(violation(TaskRule::NonRootUser, name, message));
        }
    }
    let added = c
        .linux_parameters
        .as_ref()
        .and_then(|l| l.capabilities.as_ref())
        .map(|caps| &caps.add[..])
        .unwrap_or(&[]);
    let extra: Vec<&str> = added
        .iter()
        .filter(|cap| !t.allowed_capabilities.iter().any(|allowed| same_capability(allowed, cap)))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        out.push(violation(
            TaskRule::Capabilities,
            name,
            format!("adds capabilities not allowed: {}", extra.join(", ")),
        ));
    }
    let env_names = c.environment.iter().map(|e| (e.name.as_str(), "environment"));
    let secret_names = c.secrets.iter().map(|s| (s.name.as_str(), "secrets"));
    for (var, source) in env_names.chain(secret_names) {
        if t.forbid_env_names.iter().any(|f| f == var) {
            out.push(violation(
                TaskRule::ForbiddenEnv,
                name,
                format!("sets forbidden variable {var} (in {source})"),
            ));
        }
    }
    for e in &c.environment {
        if secret_patterns.iter().any(|p| p.is_match(&e.name)) {
            out.push(violation(
                TaskRule::SecretInEnvironment,
                name,
                format!("{} looks like a secret in plain environment; move it to secrets", e.name),
            ));
        }
    }
    if policy.task_definition.require_log_configuration
        && c.log_configuration.as_ref().is_none_or(|l| l.log_driver.trim().is_empty())
    {
        out.push(violation(TaskRule::LogConfiguration, name, "has no logConfiguration".into()));
    }
    out.extend(check_image(policy, name, &c.image));
}

/// The image rules for one container's image.
pub fn check_image(policy: &Policy, container: &str, image: &str) -> Vec<Violation> {
    let i = &policy.images;
    let mut out = Vec::new();
    let reference = parse_image(image);
    let lists = std::iter::once(&i.allowed_registries).chain(i.also_allowed_registries.iter());
    for list in lists.filter(|l| !l.is_empty()) {
        let host_without_port = reference.registry.split(':').next().unwrap_or(reference.registry);
        let allowed = list
            .iter()
            .filter_map(|g| Glob::new(g).ok())
            .any(|g| g.is_match(reference.registry) || g.is_match(host_without_port));
        if !allowed {
            out.push(violation(
                TaskRule::ImageRegistry,
                container,
                format!(
                    "image {image} comes from registry {}, not one of: {}",
                    reference.registry,
                    list.join(", ")
                ),
            ));
            break;
        }
    }
    if i.require_digest && reference.digest.is_none_or(|d| Digest::parse(d).is_err()) {
        out.push(violation(
            TaskRule::ImageDigest,
            container,
            format!("image {image} is not pinned by digest (@sha256:<64 hex>)"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

    fn td(json: &str) -> TaskDefinition {
        TaskDefinition::from_json(json).unwrap()
    }

    fn rules(v: &[Violation]) -> Vec<&str> {
        v.iter().map(|v| v.rule.as_str()).collect()
    }

    #[test]
    fn image_platform_names_what_the_index_has() {
        let arm = td(
            r#"{"runtimePlatform":{"cpuArchitecture":"ARM64"},"containerDefinitions":[{"name":"app","image":"x"}]}"#,
        );
        let index = Digest::parse(&format!("sha256:{}", "1".repeat(64))).unwrap();
        let amd_only = Manifest::Index(vec![crate::manifest::Child {
            digest: ImageDigest::scanned(Digest::parse(DIGEST).unwrap()),
            platform: Some(Platform::parse("linux/amd64").unwrap()),
        }]);
        let v = image_platform(&arm, "app", "web@sha256:1", &index, &amd_only).unwrap_err();
        assert_eq!((v.rule.as_str(), v.container.as_str()), ("image_platform", "app"));
        assert_eq!(
            v.message,
            "image web@sha256:1 is an image index with no image for the task's runtimePlatform ARM64/LINUX (linux/arm64); it has linux/amd64"
        );
        let x86 = td(r#"{"containerDefinitions":[{"name":"app","image":"x"}]}"#);
        assert_eq!(
            image_platform(&x86, "app", "web", &index, &amd_only)
                .map(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>()),
            Ok(vec![DIGEST.to_owned()])
        );
        let empty = image_platform(&x86, "app", "web", &index, &Manifest::Index(vec![])).unwrap_err();
        assert!(empty.message.contains("no image for any platform"), "{}", empty.message);
        let built_for_amd = Manifest::Image { config: None, platform: Some(Platform::of_task(&x86)) };
        let single = image_platform(&arm, "app", "web", &index, &built_for_amd).unwrap_err();
        assert_eq!(
            single.message,
            "image web is built for linux/amd64, but the task's runtimePlatform is ARM64/LINUX (linux/arm64)"
        );
    }

    #[test]
    fn a_registry_with_a_port_is_allowed_by_its_host_or_by_host_and_port() {
        let mut policy = Policy::default();
        let image = format!("registry.example.com:5000/web@{DIGEST}");
        for allowed in ["registry.example.com", "registry.example.com:5000"] {
            policy.images.allowed_registries = vec![allowed.into()];
            assert_eq!(rules(&check_image(&policy, "app", &image)), Vec::<&str>::new(), "{allowed}");
        }
        policy.images.allowed_registries = vec!["registry.example.com:6000".into()];
        assert_eq!(rules(&check_image(&policy, "app", &image)), ["image_registry"]);
    }

    #[test]
    fn compliant_task_definition_has_no_violations() {
        let json = format!(
            r#"{{"containerDefinitions":[{{"name":"app","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}",
            "user":"10001","readonlyRootFilesystem":true,"logConfiguration":{{"logDriver":"awslogs"}},
            "secrets":[{{"name":"DB_PASSWORD","valueFrom":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}}]}}]}}"#
        );
        assert_eq!(check_task_definition(&Policy::default(), &td(&json)), []);
    }

    #[test]
    fn every_rule_fires_with_its_id() {
        let json = r#"{"networkMode":"host","containerDefinitions":[{"name":"app","image":"nginx:latest","privileged":true,
            "user":"0:0","linuxParameters":{"capabilities":{"add":["SYS_ADMIN"]}},
            "environment":[{"name":"AWS_SECRET_ACCESS_KEY","value":"x"},{"name":"API_KEY","value":"y"}]}]}"#;
        let v = check_task_definition(&Policy::default(), &td(json));
        assert_eq!(
            rules(&v),
            [
                "host_namespaces",
                "privileged",
                "readonly_root_filesystem",
                "non_root_user",
                "capabilities",
                "forbidden_env",
                "secret_in_environment",
                "secret_in_environment",
                "log_configuration",
                "image_registry",
                "image_digest"
            ]
        );
        assert_eq!(v[0].container, TASK_LEVEL);
        assert!(v.iter().skip(1).all(|v| v.container == "app"));
        assert!(
            v.iter().all(|v| !v.message.contains("\"x\"") && !v.message.contains("\"y\"")),
            "no values in messages"
        );
    }

    #[test]
    fn root_users_are_recognised() {
        for user in [
            None,
            Some("root"),
            Some("0"),
            Some("0:0"),
            Some("0:1000"),
            Some("root:wheel"),
            Some("00"),
            Some("+0"),
            Some("0 "),
            Some(" 000:0"),
            // strconv.Atoi reads a sign: uid 0 (moby/sys user, runc).
            Some("-0"),
            Some("-00"),
            Some("-0:0"),
            // Out of runc's range; containerd's uint32 cast makes it 0.
            Some("4294967296"),
        ] {
            let mut c = ContainerDefinition { name: "a".into(), image: "x".into(), ..Default::default() };
            c.user = user.map(str::to_owned);
            let v = check_task_definition(
                &Policy::default(),
                &TaskDefinition { container_definitions: vec![c], ..Default::default() },
            );
            assert!(rules(&v).contains(&"non_root_user"), "{user:?}");
        }
        for user in ["1000", "1000:0", "app", "10001:10001", "010", "+100"] {
            let c = ContainerDefinition {
                name: "a".into(),
                image: "x".into(),
                user: Some(user.into()),
                ..Default::default()
            };
            let v = check_task_definition(
                &Policy::default(),
                &TaskDefinition { container_definitions: vec![c], ..Default::default() },
            );
            assert!(!rules(&v).contains(&"non_root_user"), "{user}");
        }
    }

    #[test]
    fn allowed_capabilities_ignore_case_and_prefix() {
        let mut p = Policy::default();
        p.task_definition.allowed_capabilities = vec!["net_bind_service".into()];
        let json = r#"{"containerDefinitions":[{"name":"a","image":"x","linuxParameters":{"capabilities":{"add":["CAP_NET_BIND_SERVICE"]}}}]}"#;
        assert!(!rules(&check_task_definition(&p, &td(json))).contains(&"capabilities"));
    }
}
