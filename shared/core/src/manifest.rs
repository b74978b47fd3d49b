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
use crate::taskdef::TaskDefinition;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What to ask `BatchGetImage` for: every media type Shipgate reads, so ECR
/// returns an index as it was pushed rather than converting it.
pub const ACCEPTED_MEDIA_TYPES: [&str; 4] = [OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// An OS and CPU architecture, in the OCI spelling (`linux/arm64`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
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
        Platform { os: os.to_owned(), architecture, variant: None }
    }

    /// Whether an image built for `self` runs where `wanted` says. ECS's
    /// `runtimePlatform` names no variant (`arm64` is `arm64/v8`), so a
    /// variant is shown in messages but not compared.
    pub fn runs_on(&self, wanted: &Platform) -> bool {
        self.os == wanted.os && self.architecture == wanted.architecture
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

/// One image manifest named by an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: ImageDigest,
    pub platform: Platform,
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
                image && c.platform.as_ref().is_some_and(|p| p.os != "unknown" && p.architecture != "unknown")
            })
            .filter_map(|c| Some((c.digest, c.platform?)))
            .map(|(digest, p)| {
                let digest = ImageDigest::from_manifest(
                    Digest::parse(&digest)
                        .map_err(|e| format!("the image index's manifests[].digest: {e}"))?,
                );
                Ok(Child {
                    digest,
                    platform: Platform { os: p.os, architecture: p.architecture, variant: p.variant },
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Manifest::Index(children))
    }

    /// The image ECS runs for a task on `platform`, this manifest being the
    /// one `named` names: an index's child for the platform, or the image
    /// itself when it is one image that runs there (or whose platform is not
    /// known). `Err` lists what there is.
    pub fn resolve(&self, named: &Digest, platform: &Platform) -> Result<ImageDigest, Vec<Platform>> {
        match self {
            Manifest::Index(children) => children
                .iter()
                .find(|c| c.platform.runs_on(platform))
                .map(|c| c.digest.clone())
                .ok_or_else(|| children.iter().map(|c| c.platform.clone()).collect()),
            Manifest::Image { platform: Some(own), .. } if !own.runs_on(platform) => Err(vec![own.clone()]),
            Manifest::Image { .. } => Ok(ImageDigest::from_manifest(named.clone())),
        }
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
    Ok(Platform { os: raw.os, architecture: raw.architecture, variant: raw.variant })
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
        assert_eq!(index.resolve(&d(INDEX), &Platform::of_task(&task(Some("ARM64")))), Ok(img(ARM)));
        assert_eq!(
            index.resolve(&d(INDEX), &Platform::of_task(&task(None))),
            Ok(img(AMD)),
            "X86_64 by default"
        );
        let windows = Platform { os: "windows".into(), architecture: "amd64".into(), variant: None };
        let others = index.resolve(&d(INDEX), &windows).unwrap_err();
        let names: Vec<String> = others.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64/v8"], "attestations are not platforms");
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
        assert_eq!(m.resolve(&d(INDEX), &Platform::of_task(&task(Some("ARM64")))), Ok(img(ARM)));
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
            Ok(img(AMD)),
            "an image runs where it was built for"
        );
        assert_eq!(m.resolve(&d(AMD), &arm), Ok(img(AMD)), "platform unknown: nothing to judge");
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
