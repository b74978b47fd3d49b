//! Which child of an image index a host runs, as containerd decides it.
//!
//! ECS pulls with containerd (Fargate) or with Docker, which uses the same
//! `github.com/containerd/platforms` package. This module follows that
//! package at commit 09756f5 (`platforms.go` `Normalize` and
//! `matcher.Match`, `database.go` `normalizeArch`, `compare.go`
//! `platformVector`, `Only` and `orderedPlatformComparer.Less`; the image
//! pull keeps the children `Match` accepts and takes the first after a
//! stable sort by `Less`, which ranks a child by the first entry of the
//! host's vector it matches):
//!
//! - a platform is normalised first: `x86_64` is `amd64` and its `v1` no
//!   variant; `aarch64` is `arm64`, and its `v8`/`8`/`v8.0` no variant;
//!   `armhf` is `arm/v7`; `arm` without a variant is `arm/v7`;
//! - a child matches a host platform when OS, architecture and variant are
//!   equal after normalising, and its `os.features` are among the host's
//!   (a Linux host has none);
//! - a host matches, best first, itself, then for `amd64/vN` each lower
//!   level down to v1, then `386`; for `arm64/v8.x` each lower v8 level, for
//!   `arm64/v9.x` each lower v9 level then v8 up to x+5, then `arm/v8`
//!   down to `arm/v5`; an arm64 variant the table does not know matches
//!   nothing at all.
//!
//! Windows OS versions are not compared (ECS's Windows platforms are
//! judged by OS and architecture only).

use crate::manifest::Platform;

/// containerd's `Normalize`: lower-cased names, an architecture's aliases
/// folded, and the variant that is its architecture's default removed.
pub fn normalize(p: &Platform) -> Platform {
    let os = match p.os.to_ascii_lowercase().as_str() {
        "" => "linux".to_owned(),
        "macos" => "darwin".to_owned(),
        os => os.to_owned(),
    };
    let (architecture, variant) = normalize_arch(&p.architecture, p.variant.as_deref().unwrap_or(""));
    let mut os_features = p.os_features.clone();
    os_features.sort();
    os_features.dedup();
    Platform { os, architecture, variant: (!variant.is_empty()).then_some(variant), os_features }
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (arch, variant) = (arch.to_ascii_lowercase(), variant.to_ascii_lowercase());
    match arch.as_str() {
        "i386" => ("386".into(), String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            ("amd64".into(), if variant == "v1" { String::new() } else { variant })
        }
        "aarch64" | "arm64" => {
            let variant = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), "v7".into()),
        "armel" => ("arm".into(), "v6".into()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        _ => (arch, variant),
    }
}

/// The arm64 variants containerd knows, as (major, highest minor) pairs
/// the variant matches down from (`arm64variantToVersion`).
fn arm64_versions(variant: &str) -> Option<&'static [(u32, u32)]> {
    Some(match variant {
        "v8" | "v8.0" => &[(8, 0)],
        "v8.1" => &[(8, 1)],
        "v8.2" => &[(8, 2)],
        "v8.3" => &[(8, 3)],
        "v8.4" => &[(8, 4)],
        "v8.5" => &[(8, 5)],
        "v8.6" => &[(8, 6)],
        "v8.7" => &[(8, 7)],
        "v8.8" => &[(8, 8)],
        "v8.9" => &[(8, 9)],
        "v9" | "v9.0" => &[(9, 0), (8, 5)],
        "v9.1" => &[(9, 1), (8, 6)],
        "v9.2" => &[(9, 2), (8, 7)],
        "v9.3" => &[(9, 3), (8, 8)],
        "v9.4" => &[(9, 4), (8, 9)],
        "v9.5" => &[(9, 5), (8, 9)],
        "v9.6" => &[(9, 6), (8, 9)],
        "v9.7" => &[(9, 7), (8, 9)],
        _ => return None,
    })
}

/// Go's `strconv.Atoi(strings.TrimPrefix(variant, "v"))`: an optional sign,
/// then decimal digits, within range (Rust's `i64` parsing reads the same).
fn level(variant: &str) -> Option<i64> {
    variant.strip_prefix('v').unwrap_or(variant).parse().ok()
}

fn with(host: &Platform, architecture: &str, variant: Option<String>) -> Platform {
    Platform {
        os: host.os.clone(),
        architecture: architecture.to_owned(),
        variant,
        os_features: host.os_features.clone(),
    }
}

/// containerd's `platformVector`: the platforms a host runs, best first.
fn vector(host: &Platform) -> Vec<Platform> {
    let variant = host.variant.clone().unwrap_or_default();
    let mut out = vec![host.clone()];
    match host.architecture.as_str() {
        "amd64" => {
            // Each lower level down to v1 (none below v2).
            if let Some(v) = level(&variant) {
                out.extend((1..v).rev().map(|l| with(host, "amd64", Some(format!("v{l}")))));
            }
            out.push(with(host, "386", None));
        }
        "arm" => {
            // Each lower version down to v5 (none below v6).
            if let Some(v) = level(&variant) {
                out.extend((5..v).rev().map(|l| with(host, "arm", Some(format!("v{l}")))));
            }
        }
        "arm64" => {
            let variant = if variant.is_empty() { "v8".to_owned() } else { variant };
            // A variant the table lacks matches nothing (Go's `break` out of
            // the switch, with the vector already emptied).
            let Some(versions) = arm64_versions(&variant) else { return Vec::new() };
            out.clear();
            for &(major, minor) in versions {
                for m in (0..=minor).rev() {
                    let v = if m == 0 { format!("v{major}") } else { format!("v{major}.{m}") };
                    out.push(with(host, "arm64", Some(v)));
                }
            }
            let arm = if variant.starts_with("v8") || variant.starts_with("v9") {
                "v8".to_owned()
            } else {
                variant
            };
            out.extend(vector(&with(host, "arm", Some(arm))));
        }
        _ => {}
    }
    out
}

/// containerd's `matcher.Match` of a normalised `want` against `candidate`.
fn matches(want: &Platform, candidate: &Platform) -> bool {
    let candidate = normalize(candidate);
    want.os == candidate.os
        && want.architecture == candidate.architecture
        && want.variant == candidate.variant
        && candidate.os_features.iter().all(|f| want.os_features.contains(f))
}

/// containerd's `Only(host)`: which platforms a host runs, and how well.
#[derive(Debug, Clone)]
pub struct Only {
    vector: Vec<Platform>,
}

impl Only {
    pub fn new(host: &Platform) -> Self {
        Only { vector: vector(&normalize(host)).iter().map(normalize).collect() }
    }

    /// `None` when the host cannot run `p`; else its rank, 0 being best
    /// (the first entry of the host's vector `p` matches).
    pub fn rank(&self, p: &Platform) -> Option<usize> {
        self.vector.iter().position(|want| matches(want, p))
    }

    /// The one of `candidates` the host pulls: the best ranked, the first
    /// listed among equals (the pull's stable sort). A candidate without a
    /// platform is kept and ranked last, as the pull keeps it.
    pub fn pick<'a, T>(
        &self,
        candidates: &'a [T],
        platform: impl Fn(&'a T) -> Option<&'a Platform>,
    ) -> Option<&'a T> {
        candidates
            .iter()
            .filter_map(|c| match platform(c) {
                None => Some((usize::MAX, c)),
                Some(p) => self.rank(p).map(|r| (r, c)),
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, c)| c)
    }
}

/// The hosts a task for `task` (ECS's `runtimePlatform`, which names no
/// variant) may land on, as containerd describes them. An arm64 host is
/// `arm64/v8` (containerd's `cpuVariant` reads `v8` for every arm64 CPU).
/// containerd 09756f5 gives an amd64 host no variant, but runtimes that
/// read the CPU's x86-64 level (v2 to v4) exist, and ECS does not say which
/// host a task gets: every level is a host the task could land on.
pub fn hosts(task: &Platform) -> Vec<Platform> {
    let task = normalize(task);
    match task.architecture.as_str() {
        "amd64" if task.variant.is_none() => [None, Some("v2"), Some("v3"), Some("v4")]
            .map(|v| with(&task, "amd64", v.map(str::to_owned)))
            .to_vec(),
        "arm64" if task.variant.is_none() => vec![with(&task, "arm64", Some("v8".into()))],
        _ => vec![task],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spec: &str) -> Platform {
        Platform::parse(spec).unwrap()
    }

    /// containerd/platforms `compare_test.go` `TestOnly` (commit 09756f5),
    /// the Linux cases and the Windows ones without an OS version.
    #[test]
    fn only_matches_what_containerds_tests_say() {
        let arm_all = ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"];
        let cases: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
            (
                "linux/amd64",
                vec!["linux/amd64", "linux/386"],
                vec!["linux/amd64/v2", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
            ),
            (
                "linux/amd64/v2",
                vec!["linux/amd64", "linux/amd64/v1", "linux/amd64/v2", "linux/386"],
                vec![
                    "linux/amd64/v3",
                    "linux/amd64/v4",
                    "linux/arm/v7",
                    "linux/arm64",
                    "windows/amd64",
                    "windows/arm",
                ],
            ),
            (
                "linux/386",
                vec!["linux/386"],
                vec!["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
            ),
            (
                "windows/amd64",
                vec!["windows/amd64"],
                vec!["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"],
            ),
            (
                "linux/arm/v8",
                arm_all.to_vec(),
                vec!["linux/amd64", "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"],
            ),
            (
                "linux/arm/v7",
                vec!["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7"],
                vec![
                    "linux/amd64",
                    "linux/arm/v4",
                    "linux/arm/v8",
                    "linux/arm64",
                    "windows/amd64",
                    "windows/arm",
                ],
            ),
            (
                "linux/arm/v6",
                vec!["linux/arm/v5", "linux/arm/v6"],
                vec![
                    "linux/amd64",
                    "linux/arm",
                    "linux/arm/v4",
                    "linux/arm/v7",
                    "linux/arm/v8",
                    "linux/arm64",
                    "windows/amd64",
                    "windows/arm",
                ],
            ),
            (
                "linux/arm/v5",
                vec!["linux/arm/v5"],
                vec![
                    "linux/amd64",
                    "linux/arm",
                    "linux/arm/v4",
                    "linux/arm/v6",
                    "linux/arm/v7",
                    "linux/arm64",
                ],
            ),
            (
                "linux/arm/v4",
                vec!["linux/arm/v4"],
                vec!["linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm64"],
            ),
            (
                "linux/arm64/v9.6",
                [
                    &arm_all[..],
                    &[
                        "linux/arm64",
                        "linux/arm64/v8",
                        "linux/arm64/v8.1",
                        "linux/arm64/v8.2",
                        "linux/arm64/v8.3",
                        "linux/arm64/v8.4",
                        "linux/arm64/v8.5",
                        "linux/arm64/v8.6",
                        "linux/arm64/v8.7",
                        "linux/arm64/v8.8",
                        "linux/arm64/v8.9",
                        "linux/arm64/v9",
                        "linux/arm64/v9.0",
                        "linux/arm64/v9.1",
                        "linux/arm64/v9.2",
                        "linux/arm64/v9.3",
                        "linux/arm64/v9.4",
                        "linux/arm64/v9.5",
                        "linux/arm64/v9.6",
                    ],
                ]
                .concat(),
                vec!["linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.10"],
            ),
            (
                "linux/arm64/v9",
                [
                    &arm_all[..],
                    &[
                        "linux/arm64",
                        "linux/arm64/v8",
                        "linux/arm64/v8.1",
                        "linux/arm64/v8.2",
                        "linux/arm64/v8.3",
                        "linux/arm64/v8.4",
                        "linux/arm64/v8.5",
                        "linux/arm64/v9",
                        "linux/arm64/v9.0",
                    ],
                ]
                .concat(),
                vec!["linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.6"],
            ),
            (
                "linux/arm64/v8.1",
                [&arm_all[..], &["linux/arm64", "linux/arm64/v8", "linux/arm64/v8.1"]].concat(),
                vec![
                    "linux/amd64",
                    "linux/arm/v4",
                    "linux/arm/v9",
                    "linux/arm64/v9",
                    "windows/amd64",
                    "windows/arm",
                ],
            ),
            (
                "linux/arm64",
                [&arm_all[..], &["linux/arm64", "linux/arm64/v8"]].concat(),
                vec![
                    "linux/amd64",
                    "linux/arm/v4",
                    "linux/arm/v9",
                    "linux/arm64/v9",
                    "windows/amd64",
                    "windows/arm",
                ],
            ),
        ];
        for (host, yes, no) in cases {
            let only = Only::new(&p(host));
            for m in yes {
                assert!(only.rank(&p(m)).is_some(), "Only({host}).Match({m}) should be true");
            }
            for m in no {
                assert!(only.rank(&p(m)).is_none(), "Only({host}).Match({m}) should be false");
            }
        }
    }

    /// `platforms_test.go` `TestParseSelector`'s normalisations (09756f5).
    #[test]
    fn aliases_normalise_as_containerd_normalises_them() {
        for (spec, normal) in [
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/i386", "linux/386"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64/v8.0", "linux/arm64"),
            ("linux/arm64/9.0", "linux/arm64/v9"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/5", "linux/arm/v5"),
            ("LINUX/AMD64", "linux/amd64"),
            ("macos/arm64", "darwin/arm64"),
        ] {
            assert_eq!(normalize(&p(spec)).to_string(), normal, "{spec}");
        }
    }

    #[test]
    fn a_host_picks_its_best_match_and_the_first_of_equals() {
        let children =
            ["linux/arm64/v9", "linux/arm64", "linux/arm/v7", "linux/amd64/v3", "linux/amd64", "linux/386"];
        let children: Vec<Platform> = children.iter().map(|c| p(c)).collect();
        let pick = |host: &str| Only::new(&p(host)).pick(&children, Some).map(ToString::to_string);
        assert_eq!(pick("linux/arm64/v8").as_deref(), Some("linux/arm64"), "v9 is not v8's");
        assert_eq!(pick("linux/arm64/v9").as_deref(), Some("linux/arm64/v9"));
        assert_eq!(pick("linux/amd64").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/amd64/v2").as_deref(), Some("linux/amd64"));
        assert_eq!(pick("linux/amd64/v4").as_deref(), Some("linux/amd64/v3"));
        assert_eq!(pick("linux/arm/v6"), None);
        let only_32_bit = vec![p("linux/386"), p("linux/arm/v7")];
        assert_eq!(
            Only::new(&p("linux/amd64")).pick(&only_32_bit, Some).map(ToString::to_string).as_deref(),
            Some("linux/386"),
            "an amd64 host runs 386"
        );
        assert_eq!(
            Only::new(&p("linux/arm64/v8")).pick(&only_32_bit, Some).map(ToString::to_string).as_deref(),
            Some("linux/arm/v7"),
            "an arm64 host runs arm/v7"
        );
        let twins = vec![(1, p("linux/amd64")), (2, p("linux/x86_64/v1"))];
        assert_eq!(Only::new(&p("linux/amd64")).pick(&twins, |t| Some(&t.1)).map(|t| t.0), Some(1));
        let featured = vec![Platform { os_features: vec!["sse4".into()], ..p("linux/amd64") }];
        assert_eq!(Only::new(&p("linux/amd64")).pick(&featured, Some), None, "a Linux host has no features");
        let unknown = vec![(1, None), (2, Some(p("linux/arm64")))];
        assert_eq!(Only::new(&p("linux/amd64")).pick(&unknown, |t| t.1.as_ref()).map(|t| t.0), Some(1));
        assert_eq!(Only::new(&p("linux/arm64")).pick(&unknown, |t| t.1.as_ref()).map(|t| t.0), Some(2));
    }

    /// `Only`'s documented arm64 rule (compare.go): "for arm64/v9.x, will
    /// also match arm64/v9.{0..x-1} and arm64/v8.{0..x+5}; for arm64/v8.x,
    /// will also match arm64/v8.{0..x-1}", for every variant of the table.
    #[test]
    fn every_arm64_level_runs_its_documented_range() {
        let v = |major: u32, minor: u32| {
            if minor == 0 {
                p(&format!("linux/arm64/v{major}"))
            } else {
                p(&format!("linux/arm64/v{major}.{minor}"))
            }
        };
        for x in 0..=9 {
            let only = Only::new(&v(8, x));
            assert!((0..=x).all(|m| only.rank(&v(8, m)).is_some()), "v8.{x}");
            assert!(only.rank(&v(8, x + 1)).is_none(), "v8.{x} runs no v8.{}", x + 1);
            assert!(only.rank(&v(9, 0)).is_none(), "v8.{x} runs no v9");
        }
        for x in 0..=7 {
            let only = Only::new(&v(9, x));
            let v8_top = (x + 5).min(9);
            assert!((0..=x).all(|m| only.rank(&v(9, m)).is_some()), "v9.{x}");
            assert!((0..=v8_top).all(|m| only.rank(&v(8, m)).is_some()), "v9.{x} runs v8.0 to v8.{v8_top}");
            assert!(only.rank(&v(9, x + 1)).is_none(), "v9.{x} runs no v9.{}", x + 1);
            assert!(only.rank(&v(8, v8_top + 1)).is_none(), "v9.{x} runs no v8.{}", v8_top + 1);
            assert_eq!(only.rank(&v(9, x)), Some(0), "its own level first");
        }
    }

    #[test]
    fn an_arm64_variant_containerd_does_not_know_runs_nothing() {
        let only = Only::new(&p("linux/arm64/v10"));
        assert!(only.rank(&p("linux/arm64/v10")).is_none());
        assert!(only.rank(&p("linux/arm/v7")).is_none());
        assert!(Only::new(&p("linux/arm/v10")).rank(&p("linux/arm/v5")).is_some());
    }

    #[test]
    fn a_task_lands_on_any_amd64_level_and_on_arm64_v8() {
        let names = |task: &str| hosts(&p(task)).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            names("linux/amd64"),
            ["linux/amd64", "linux/amd64/v2", "linux/amd64/v3", "linux/amd64/v4"]
        );
        assert_eq!(names("linux/arm64"), ["linux/arm64/v8"]);
        assert_eq!(names("linux/amd64/v3"), ["linux/amd64/v3"]);
        assert_eq!(names("linux/arm64/v9"), ["linux/arm64/v9"], "a named level is that host");
        assert_eq!(names("linux/arm/v7"), ["linux/arm/v7"]);
    }

    #[test]
    fn levels_read_as_go_reads_them() {
        assert_eq!(level("v3"), Some(3));
        assert_eq!(level("3"), Some(3));
        assert_eq!(level("v+3"), Some(3));
        assert_eq!(level("v-3"), Some(-3));
        assert_eq!(level("v"), None);
        assert_eq!(level("v 3"), None);
        assert_eq!(level("v3_0"), None);
        assert_eq!(level("v3a"), None);
        assert_eq!(level(""), None);
    }
}
