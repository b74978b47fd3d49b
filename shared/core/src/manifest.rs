//! Image manifests as ECR's `BatchGetImage` returns them, and the platform a
//! task runs on: which manifest of an image index (OCI index or Docker
//! manifest list) ECS pulls for a task definition's `runtimePlatform`.
//!
//! ECR scans each platform's image manifest, never the index, so a gate
//! judging an index judges the child ECS will run. The media types and the
//! index's `manifests[].platform` fields are those of the OCI image spec
//! (image-index.md) and Docker's manifest list v2.2; ECS's `cpuArchitecture`
//! `X86_64`/`ARM64` are Go's `amd64`/`arm64` there.

use std::fmt;

use serde::Deserialize;

use crate::digest::{Digest, ImageDigest};
use crate::platforms::{self, Only};
use crate::taskdef::TaskDefinition;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What to ask `BatchGetImage` for: every media type Shipgate reads, so ECR
/// returns an index as it was pushed rather than converting it.
pub const ACCEPTED_MEDIA_TYPES: [&str; 4] = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// An OS and CPU architecture, in the OCI spelling (`linux/arm64`), with
/// the index's `os.features` where it lists any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub os_features: Vec<String>,
}

impl Platform {
    /// `os/architecture[/variant]`, as `docker --platform` and containerd
    /// spell it (`linux/arm64`, `linux/amd64/v3`).
    pub fn parse(spec: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = spec.trim().split('/').collect();
        let valid = |part: &&str| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid) {
            return Err(format!(
                "platform {spec:?} is not os/architecture[/variant] (linux/arm64, linux/amd64/v3)"
            ));
        }
        Ok(Platform {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
            os_features: Vec::new(),
        })
    }

    /// The platform a task definition runs on: its `runtimePlatform`, or
    /// X86_64/LINUX when unset.
    pub fn of_task(td: &TaskDefinition) -> Platform {
        let runtime = td.runtime_platform.as_ref();
        let cpu = runtime.and_then(|r| r.cpu_architecture.as_deref()).unwrap_or("X86_64").trim();
        let family = runtime.and_then(|r| r.operating_system_family.as_deref()).unwrap_or("LINUX").trim();
        // ECS's X86_64 is Go's amd64; ARM64 is arm64 once lower-cased.
        let architecture =
            if cpu.eq_ignore_ascii_case("X86_64") { "amd64".to_owned() } else { cpu.to_ascii_lowercase() };
        let os = if family.to_ascii_uppercase().starts_with("WINDOWS") { "windows" } else { "linux" };
        Platform { os: os.to_owned(), architecture, variant: None, os_features: Vec::new() }
    }

    /// How the task definition spells it, for messages: `ARM64/LINUX`.
    pub fn ecs_name(&self) -> String {
        let cpu = match self.architecture.as_str() {
            "amd64" => "X86_64".to_owned(),
            other => other.to_ascii_uppercase(),
        };
        format!("{cpu}/{}", self.os.to_ascii_uppercase())
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// One image manifest named by an index, with the platform the index
/// gives it (an index may give none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: ImageDigest,
    pub platform: Option<Platform>,
}

/// What one host pulls: the image, and the platform its index gives it
/// (or its config says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick<'a> {
    pub host: Platform,
    pub pulls: Option<(ImageDigest, Option<&'a Platform>)>,
}

/// What a manifest is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image index: one image manifest per platform (attestations and
    /// other non-image entries left out).
    Index(Vec<Child>),
    /// One image; its platform lives in its config blob, which the manifest
    /// only names (`config`), so it is known only once the caller read it.
    Image { config: Option<Digest>, platform: Option<Platform> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawChild>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(default)]
    digest: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawChild {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default, rename = "os.features")]
    os_features: Vec<String>,
}

impl From<RawPlatform> for Platform {
    fn from(p: RawPlatform) -> Self {
        Platform { os: p.os, architecture: p.architecture, variant: p.variant, os_features: p.os_features }
    }
}

impl Manifest {
    /// Reads a manifest as `BatchGetImage` returns it: its media type (ECR's
    /// `imageManifestMediaType`, else the manifest's own `mediaType`) and
    /// body. An index is recognised by either.
    pub fn parse(media_type: Option<&str>, body: &str) -> Result<Manifest, String> {
        let raw: RawManifest =
            serde_json::from_str(body).map_err(|e| format!("the image manifest is not JSON: {e}"))?;
        let media_type = media_type.filter(|m| !m.is_empty()).or(raw.media_type.as_deref()).unwrap_or("");
        let is_index =
            media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST || raw.manifests.is_some();
        if !is_index {
            let config = match raw.config.map(|c| c.digest).filter(|d| !d.is_empty()) {
                Some(d) => {
                    Some(Digest::parse(&d).map_err(|e| format!("the image manifest's config.digest: {e}"))?)
                }
                None => None,
            };
            return Ok(Manifest::Image { config, platform: None });
        }
        let children = raw
            .manifests
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                // buildx's provenance and SBOM attestations sit in the index as
                // `unknown/unknown` manifests: not something a task can run.
                let image = c.media_type.as_deref().is_none_or(|m| m == OCI_MANIFEST || m == DOCKER_MANIFEST);
                image && c.platform.as_ref().is_none_or(|p| p.os != "unknown" && p.architecture != "unknown")
            })
            .map(|c| {
                let digest = ImageDigest::from_manifest(
                    Digest::parse(&c.digest)
                        .map_err(|e| format!("the image index's manifests[].digest: {e}"))?,
                );
                Ok(Child { digest, platform: c.platform.map(Platform::from) })
            })
            .collect::<Result<_, String>>()?;
        Ok(Manifest::Index(children))
    }

    /// What each host a task for `task` may land on (`platforms::hosts`)
    /// pulls, this manifest being the one `named` names: an index's child
    /// as containerd picks it, or the image itself when the host runs it
    /// (or its platform is not known); `None` when the host pulls nothing.
    pub fn picks(&self, named: &Digest, task: &Platform) -> Vec<Pick<'_>> {
        platforms::hosts(task)
            .into_iter()
            .map(|host| {
                let only = Only::new(&host);
                let pulls = match self {
                    Manifest::Index(children) => only
                        .pick(children, |c| c.platform.as_ref())
                        .map(|c| (c.digest.clone(), c.platform.as_ref())),
                    Manifest::Image { platform: Some(own), .. } if only.rank(own).is_none() => None,
                    Manifest::Image { platform, .. } => {
                        Some((ImageDigest::from_manifest(named.clone()), platform.as_ref()))
                    }
                };
                Pick { host, pulls }
            })
            .collect()
    }

    /// Every image a task for `task` may run: what `picks` finds, each
    /// image once, in the index's order. Never empty; `Err` lists the
    /// platforms the manifest has.
    pub fn resolve(&self, named: &Digest, task: &Platform) -> Result<Vec<ImageDigest>, Vec<Platform>> {
        let picked: Vec<ImageDigest> =
            self.picks(named, task).into_iter().filter_map(|p| p.pulls).map(|p| p.0).collect();
        let runs: Vec<ImageDigest> = match self {
            Manifest::Index(children) => {
                let mut runs: Vec<ImageDigest> = Vec::new();
                for c in children.iter().filter(|c| picked.contains(&c.digest)) {
                    if !runs.contains(&c.digest) {
                        runs.push(c.digest.clone());
                    }
                }
                runs
            }
            Manifest::Image { .. } => picked.into_iter().take(1).collect(),
        };
        if runs.is_empty() {
            return Err(match self {
                Manifest::Index(children) => children.iter().filter_map(|c| c.platform.clone()).collect(),
                Manifest::Image { platform, .. } => platform.iter().cloned().collect(),
            });
        }
        Ok(runs)
    }

    pub fn is_index(&self) -> bool {
        matches!(self, Manifest::Index(_))
    }

    /// The digest of a single image's config blob, where its platform is.
    pub fn config_digest(&self) -> Option<&Digest> {
        match self {
            Manifest::Image { config, .. } => config.as_ref(),
            Manifest::Index(_) => None,
        }
    }
}

/// The platform an image config blob (`{"architecture", "os", "variant"}`,
/// the OCI image config and Docker's alike) says, once the blob is shown to
/// be the one the manifest names: its SHA-256 must be `digest`.
pub fn config_platform(digest: &Digest, blob: &[u8]) -> Result<Platform, String> {
    let actual = Digest::of(blob);
    if actual != *digest {
        return Err(format!("the image config read is {actual}, not the {digest} its manifest names"));
    }
    let raw: RawPlatform =
        serde_json::from_slice(blob).map_err(|e| format!("the image config {digest} is not JSON: {e}"))?;
    if raw.architecture.is_empty() || raw.os.is_empty() {
        return Err(format!("the image config {digest} names no architecture or os"));
    }
    Ok(raw.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ARM: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const CONFIG: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn d(text: &str) -> Digest {
        Digest::parse(text).unwrap()
    }

    fn img(text: &str) -> ImageDigest {
        ImageDigest::scanned(d(text))
    }

    /// What `docker buildx build --platform linux/amd64,linux/arm64 --push`
    /// puts in ECR: two images and a provenance attestation.
    fn buildx_index() -> String {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": AMD, "size": 1,
                 "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": OCI_MANIFEST, "digest": ARM, "size": 1,
                 "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": "sha256:cc", "size": 1,
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                 "platform": {"architecture": "unknown", "os": "unknown"}}
            ]
        })
        .to_string()
    }

    fn task(cpu: Option<&str>) -> TaskDefinition {
        let runtime =
            cpu.map(|c| serde_json::json!({"cpuArchitecture": c, "operatingSystemFamily": "LINUX"}));
        let mut td = serde_json::json!({"containerDefinitions": [{"name": "app", "image": "x"}]});
        if let Some(r) = runtime {
            td["runtimePlatform"] = r;
        }
        TaskDefinition::from_value(td).unwrap()
    }

    #[test]
    fn an_index_resolves_to_the_child_for_the_tasks_platform() {
        let index = Manifest::parse(Some(OCI_INDEX), &buildx_index()).unwrap();
        assert!(index.is_index());
        assert_eq!(index.resolve(&d(INDEX), &Platform::of_task(&task(Some("ARM64")))), Ok(vec![img(ARM)]));
        assert_eq!(
            index.resolve(&d(INDEX), &Platform::of_task(&task(None))),
            Ok(vec![img(AMD)]),
            "X86_64 by default"
        );
        let windows = Platform::parse("windows/amd64").unwrap();
        let others = index.resolve(&d(INDEX), &windows).unwrap_err();
        let names: Vec<String> = others.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64/v8"], "attestations are not platforms");
    }

    fn index_of(children: &[(&str, Option<&str>)]) -> Manifest {
        let manifests: Vec<serde_json::Value> = children
            .iter()
            .map(|(digest, platform)| {
                let mut child = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": digest, "size": 1});
                if let Some(p) = platform {
                    let p = Platform::parse(p).unwrap();
                    child["platform"] = serde_json::json!({"os": p.os, "architecture": p.architecture});
                    if let Some(v) = p.variant {
                        child["platform"]["variant"] = v.into();
                    }
                }
                child
            })
            .collect();
        let body = serde_json::json!({"mediaType": OCI_INDEX, "manifests": manifests}).to_string();
        Manifest::parse(None, &body).unwrap()
    }

    const THIRD: &str = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";

    #[test]
    fn an_arm64_task_runs_the_v8_child_not_the_first_arm64_one() {
        // The index the review built: a clean v9 child first, the child a
        // Graviton host (arm64/v8 to containerd) pulls second.
        let index = index_of(&[(ARM, Some("linux/arm64/v9")), (AMD, Some("linux/arm64"))]);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(index.resolve(&d(INDEX), &arm), Ok(vec![img(AMD)]));
        let only_v9 = index_of(&[(ARM, Some("linux/arm64/v9"))]);
        assert!(only_v9.resolve(&d(INDEX), &arm).is_err(), "no v8 host runs a v9 image");
    }

    #[test]
    fn an_amd64_task_runs_the_child_of_any_host_level() {
        let index = index_of(&[
            (AMD, Some("linux/amd64")),
            (ARM, Some("linux/amd64/v3")),
            (THIRD, Some("linux/arm64")),
            (CONFIG, Some("linux/amd64/v2")),
        ]);
        let x86 = Platform::of_task(&task(None));
        assert_eq!(
            index.resolve(&d(INDEX), &x86),
            Ok(vec![img(AMD), img(ARM), img(CONFIG)]),
            "v1 hosts run the first, v2 the fourth, v3 and v4 the second"
        );
        let v3 = Platform::parse("linux/amd64/v3").unwrap();
        assert_eq!(index.resolve(&d(INDEX), &v3), Ok(vec![img(ARM)]));
        let legacy = index_of(&[(THIRD, Some("linux/386"))]);
        assert_eq!(legacy.resolve(&d(INDEX), &x86), Ok(vec![img(THIRD)]), "amd64 runs 386");
    }

    #[test]
    fn a_child_without_a_platform_runs_where_no_other_child_does() {
        let index = index_of(&[(AMD, None), (ARM, Some("linux/arm64"))]);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(index.resolve(&d(INDEX), &arm), Ok(vec![img(ARM)]));
        assert_eq!(index.resolve(&d(INDEX), &Platform::of_task(&task(None))), Ok(vec![img(AMD)]));
    }

    #[test]
    fn platforms_parse_as_docker_spells_them() {
        let p = Platform::parse("linux/amd64/v3").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()),
            ("linux", "amd64", Some("v3"))
        );
        assert_eq!(Platform::parse(" linux/arm64 ").unwrap().to_string(), "linux/arm64");
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v3/x", "linux/*", "linux//v8", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_index_without_manifests_is_an_empty_index_not_an_image() {
        for media_type in [OCI_INDEX, DOCKER_MANIFEST_LIST] {
            let m = Manifest::parse(Some(media_type), r#"{"schemaVersion": 2}"#).unwrap();
            assert_eq!(m, Manifest::Index(vec![]), "{media_type}");
        }
        // ECR's empty media type falls back to the manifest's own.
        let from_body = Manifest::parse(Some(""), &buildx_index()).unwrap();
        assert!(from_body.is_index());
        // Half-unknown platforms are no platform a task can run.
        let odd = serde_json::json!({"mediaType": OCI_INDEX, "manifests": [
            {"digest": AMD, "platform": {"architecture": "unknown", "os": "linux"}},
            {"digest": ARM, "platform": {"architecture": "arm64", "os": "unknown"}}]});
        assert_eq!(Manifest::parse(None, &odd.to_string()).unwrap(), Manifest::Index(vec![]));
    }

    #[test]
    fn a_docker_manifest_list_is_an_index_even_without_the_media_type_from_ecr() {
        let list =
            buildx_index().replace(OCI_INDEX, DOCKER_MANIFEST_LIST).replace(OCI_MANIFEST, DOCKER_MANIFEST);
        let m = Manifest::parse(None, &list).unwrap();
        assert_eq!(m.resolve(&d(INDEX), &Platform::of_task(&task(Some("ARM64")))), Ok(vec![img(ARM)]));
    }

    #[test]
    fn a_single_image_is_itself_unless_its_config_says_another_platform() {
        let body = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": CONFIG, "size": 1, "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": []})
        .to_string();
        let m = Manifest::parse(Some(OCI_MANIFEST), &body).unwrap();
        assert!(!m.is_index());
        let arm = Platform::of_task(&task(Some("ARM64")));
        let built_for_arm = Manifest::Image { config: None, platform: Some(arm.clone()) };
        assert_eq!(
            built_for_arm.resolve(&d(AMD), &arm),
            Ok(vec![img(AMD)]),
            "an image runs where it was built for"
        );
        assert_eq!(m.resolve(&d(AMD), &arm), Ok(vec![img(AMD)]), "platform unknown: nothing to judge");
        assert_eq!(m.config_digest(), Some(&d(CONFIG)));
        let amd = Manifest::Image { config: None, platform: Some(Platform::of_task(&task(None))) };
        assert_eq!(amd.resolve(&d(AMD), &arm).unwrap_err()[0].to_string(), "linux/amd64");
    }

    #[test]
    fn a_config_blob_counts_only_when_it_is_the_one_named() {
        let blob = br#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{}}"#;
        let digest = Digest::of(blob);
        assert_eq!(config_platform(&digest, blob).unwrap().to_string(), "linux/arm64/v8");
        let other = br#"{"architecture":"amd64","os":"linux"}"#;
        assert!(config_platform(&digest, other).unwrap_err().contains("not the"));
        for partial in [&br#"{"rootfs":{}}"#[..], br#"{"architecture":"amd64"}"#, br#"{"os":"linux"}"#] {
            let partial_digest = Digest::of(partial);
            assert!(
                config_platform(&partial_digest, partial).is_err(),
                "{}",
                String::from_utf8_lossy(partial)
            );
        }
    }

    #[test]
    fn the_task_platform_reads_ecs_names() {
        assert_eq!(Platform::of_task(&task(Some("ARM64"))).to_string(), "linux/arm64");
        assert_eq!(Platform::of_task(&task(Some(" arm64 "))).ecs_name(), "ARM64/LINUX");
        assert_eq!(Platform::of_task(&task(None)).ecs_name(), "X86_64/LINUX");
        assert!(Manifest::parse(None, "not json").is_err());
    }
}
