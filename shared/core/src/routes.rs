//! `routes.yaml`: which pushes start which pipelines.
//!
//! ```yaml
//! version: 1
//! routes:
//!   - repository: "acme/payments-*"   # glob on the repository (GitHub owner/name, or CodeCommit name)
//!     branches: [main, "release/*"]   # globs on the branch
//!     paths: ["src/**", "Cargo.*"]    # optional: at least one changed path must match
//!     pipeline: payments              # the pipeline to start
//!     source_action: Source           # optional: the source action whose revision is set
//! ```
//!
//! Every route that matches a push starts its pipeline (a monorepo may feed
//! several). Validation reports every error with `line:col`, as for policies.

use crate::glob::Glob;
use crate::yaml::{self, Value};
use crate::yaml_check::{Cx, Field, Invalid, start_mark};

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub repository: Glob,
    pub branches: Vec<Glob>,
    pub paths: Vec<Glob>,
    pub pipeline: String,
    pub source_action: String,
}

/// A push, as both GitHub and CodeCommit describe one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repository: String,
    pub branch: String,
    pub commit: String,
    pub pusher: Option<String>,
    /// Changed paths, when the source says (GitHub does; CodeCommit events do not).
    pub changed_paths: Option<Vec<String>>,
}

/// A route as read so far: each key sets its own slot.
struct RouteDraft {
    repository: Option<Vec<String>>,
    branches: Option<Vec<String>>,
    paths: Vec<String>,
    pipeline: Option<String>,
    source_action: String,
}

const ROUTE: &[Field<RouteDraft>] = &[
    Field {
        key: "repository",
        // One glob, checked as a one-item list so its errors read like the others.
        set: |cx, r, v, path| {
            r.repository = cx.globs(&yaml::Node { value: Value::Seq(vec![v.clone()]), mark: v.mark }, path);
        },
    },
    Field { key: "branches", set: |cx, r, v, path| r.branches = cx.globs(v, path) },
    Field { key: "paths", set: |cx, r, v, path| r.paths = cx.globs(v, path).unwrap_or_default() },
    Field { key: "pipeline", set: |cx, r, v, path| r.pipeline = cx.string(v, path) },
    Field {
        key: "source_action",
        set: |cx, r, v, path| {
            if let Some(action) = cx.string(v, path) {
                r.source_action = action;
            }
        },
    },
];

pub fn parse_routes(text: &str) -> Result<Vec<Route>, Invalid> {
    let (mut cx, root) = Cx::read(text)?;
    let mut routes = Vec::new();
    let mut version_seen = false;
    for (key, _, value) in cx.mapping(&root, "", &["version", "routes"]) {
        if key == "version" {
            version_seen = true;
            if value.value != Value::Int(1) {
                let got = value.scalar_text().unwrap_or_else(|| value.kind().to_owned());
                cx.error(value.mark, "version", format!("must be 1, got {got}"));
            }
            continue;
        }
        let Some(items) = cx.sequence(value, "routes") else { continue };
        for (i, item) in items.iter().enumerate() {
            let path = format!("routes[{i}]");
            let mut draft = RouteDraft {
                repository: None,
                branches: None,
                paths: Vec::new(),
                pipeline: None,
                source_action: "Source".to_owned(),
            };
            cx.fields(item, &path, ROUTE, &mut draft);
            if !matches!(item.value, Value::Map(_)) {
                continue;
            }
            let RouteDraft { repository, branches, paths, pipeline, source_action } = draft;
            let mut complete = true;
            for (name, present) in [
                ("repository", repository.is_some()),
                ("branches", branches.is_some()),
                ("pipeline", pipeline.is_some()),
            ] {
                if !present {
                    cx.error(
                        start_mark(item),
                        &format!("{path}.{name}"),
                        "required key is missing or invalid".into(),
                    );
                    complete = false;
                }
            }
            if branches.as_ref().is_some_and(Vec::is_empty) {
                cx.error(
                    start_mark(item),
                    &format!("{path}.branches"),
                    "must list at least one branch glob".into(),
                );
                complete = false;
            }
            if complete {
                let compile =
                    |globs: Vec<String>| globs.iter().filter_map(|g| Glob::new(g).ok()).collect::<Vec<_>>();
                routes.push(Route {
                    repository: compile(repository.unwrap_or_default()).remove(0),
                    branches: compile(branches.unwrap_or_default()),
                    paths: compile(paths),
                    pipeline: pipeline.unwrap_or_default(),
                    source_action,
                });
            }
        }
    }
    if !version_seen {
        cx.error(start_mark(&root), "version", "required key is missing (version: 1)".into());
    }
    let invalid = cx.into_invalid();
    if invalid.errors.is_empty() { Ok(routes) } else { Err(invalid) }
}

/// Why a push started nothing, or which routes it matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Matched<'a> {
    Routes(Vec<&'a Route>),
    None(String),
}

/// The routes a push matches. A route with `paths` needs at least one
/// changed path to match; when the source gives no paths (CodeCommit), the
/// route matches, since starting a pipeline once too often is safer than
/// never.
pub fn match_routes<'a>(routes: &'a [Route], push: &Push) -> Matched<'a> {
    let mut by_repo_and_branch = routes
        .iter()
        .filter(|r| {
            r.repository.is_match(&push.repository) && r.branches.iter().any(|b| b.is_match(&push.branch))
        })
        .peekable();
    if by_repo_and_branch.peek().is_none() {
        return Matched::None(format!("no route for {} branch {}", push.repository, push.branch));
    }
    let matched: Vec<&Route> = by_repo_and_branch
        .filter(|r| match (&push.changed_paths, r.paths.is_empty()) {
            (_, true) | (None, false) => true,
            (Some(paths), false) => paths.iter().any(|p| r.paths.iter().any(|g| g.is_match(p))),
        })
        .collect();
    if matched.is_empty() {
        return Matched::None(format!(
            "no changed path of {} branch {} matches the routes' paths",
            push.repository, push.branch
        ));
    }
    Matched::Routes(matched)
}

/// The `clientRequestToken` for starting `pipeline` at `commit`: the same
/// push delivered twice starts one execution.
pub fn request_token(pipeline: &str, commit: &str) -> String {
    crate::lkg::sha256_hex(format!("{pipeline}\n{commit}").as_bytes())[..64].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "version: 1\nroutes:\n  - repository: \"acme/payments-*\"\n    branches: [main, \"release/*\"]\n    paths: [\"src/**\", \"Cargo.*\"]\n    pipeline: payments\n  - repository: payments-api\n    branches: [main]\n    pipeline: payments-cc\n";

    fn push(repository: &str, branch: &str, paths: Option<&[&str]>) -> Push {
        Push {
            repository: repository.into(),
            branch: branch.into(),
            commit: "c".into(),
            pusher: None,
            changed_paths: paths.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    #[test]
    fn routes_parse_with_defaults() {
        let routes = parse_routes(ROUTES).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].source_action, "Source");
        assert_eq!(routes[1].pipeline, "payments-cc");
    }

    #[test]
    fn errors_carry_line_and_column() {
        let errors: Vec<String> =
            parse_routes("version: 1\nroutes:\n  - repository: x\n    branch: [main]\n")
                .unwrap_err()
                .errors
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(
            errors,
            [
                "3:5: routes[0].branches: required key is missing or invalid",
                "3:5: routes[0].pipeline: required key is missing or invalid",
                "4:5: routes[0].branch: unknown key (did you mean 'branches'?)",
            ]
        );
    }

    #[test]
    fn pushes_match_by_repository_branch_and_paths() {
        let routes = parse_routes(ROUTES).unwrap();
        let pipelines = |p: &Push| match match_routes(&routes, p) {
            Matched::Routes(r) => r.iter().map(|r| r.pipeline.clone()).collect::<Vec<_>>(),
            Matched::None(_) => vec![],
        };
        assert_eq!(pipelines(&push("acme/payments-api", "main", Some(&["src/lib.rs"]))), ["payments"]);
        assert_eq!(pipelines(&push("acme/payments-api", "release/1.4", Some(&["Cargo.toml"]))), ["payments"]);
        assert!(pipelines(&push("acme/payments-api", "main", Some(&["docs/README.md"]))).is_empty());
        assert!(pipelines(&push("acme/payments-api", "feature/x", Some(&["src/a.rs"]))).is_empty());
        assert_eq!(
            pipelines(&push("acme/payments-api", "main", None)),
            ["payments"],
            "no paths known: start"
        );
        assert_eq!(pipelines(&push("payments-api", "main", None)), ["payments-cc"]);
    }

    #[test]
    fn request_token_is_stable_per_pipeline_and_commit() {
        assert_eq!(request_token("p", "c1"), request_token("p", "c1"));
        assert_ne!(request_token("p", "c1"), request_token("p", "c2"));
        assert_ne!(request_token("p", "c1"), request_token("q", "c1"));
        assert!(request_token("p", "c").chars().all(|c| c.is_ascii_hexdigit()));
    }
}
