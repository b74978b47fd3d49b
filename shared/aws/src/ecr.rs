//! Reading from ECR: an image's scan findings (every page of them), its
//! digest, and its manifest.

use aws_sdk_ecr::types::{EnhancedImageScanFinding, ImageFailureCode, ImageIdentifier, ImageScanFinding};
use shipgate_core::findings::{
    Attribute, BasicFinding, EnhancedFinding, ImageId, ImageScanFindings, PackageVulnerabilityDetails,
    ScanReport, ScanStatus, VulnerablePackage,
};

use shipgate_core::digest::{Digest, ImageDigest};
use shipgate_core::limits::{FINDINGS_PAGES, IMAGE_CONFIG_BYTES, MANIFEST_BYTES};
use shipgate_core::manifest::{ACCEPTED_MEDIA_TYPES, Manifest, config_platform};

use crate::error::{AwsError, aws_err};

/// ECR's largest page.
pub const PAGE_SIZE: i32 = 1000;

/// What ECR says about an image's scan.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanLookup {
    Found(Box<ScanReport>),
    /// No scan exists for the image (yet): `ScanNotFoundException`.
    NotFound,
}

/// Amazon ECR: scans, tags and manifests.
#[derive(Debug, Clone)]
pub struct Ecr {
    client: aws_sdk_ecr::Client,
}

impl Ecr {
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self { client }
    }

    pub fn connect(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(aws_sdk_ecr::Client::new(sdk))
    }

    /// Reads every page of findings for `repository@digest`, basic and enhanced.
    pub async fn describe_scan(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        digest: &ImageDigest,
    ) -> Result<ScanLookup, AwsError> {
        let client = &self.client;
        const OP: &str = "DescribeImageScanFindings";
        let mut pages = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..FINDINGS_PAGES {
            let result = client
                .describe_image_scan_findings()
                .set_registry_id(registry_id.map(str::to_owned))
                .repository_name(repository)
                .image_id(ImageIdentifier::builder().image_digest(digest.as_str()).build())
                .max_results(PAGE_SIZE)
                .set_next_token(next_token.take())
                .send()
                .await;
            let output = match result {
                Ok(output) => output,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_scan_not_found_exception()) => {
                    return Ok(ScanLookup::NotFound);
                }
                Err(err) => return Err(aws_err("ECR", OP)(err)),
            };
            next_token = output.next_token().map(str::to_owned);
            pages.push(ScanReport {
                repository_name: output.repository_name().map(str::to_owned),
                image_id: output.image_id().map(|id| ImageId {
                    image_digest: id.image_digest().map(str::to_owned),
                    image_tag: id.image_tag().map(str::to_owned),
                }),
                image_scan_status: output.image_scan_status().map(|s| ScanStatus {
                    status: s.status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                    description: s.description().map(str::to_owned),
                }),
                image_scan_findings: output.image_scan_findings().map(|f| ImageScanFindings {
                    finding_severity_counts: f
                        .finding_severity_counts()
                        .map(|counts| {
                            counts
                                .iter()
                                .map(|(s, n)| (s.as_str().to_owned(), u64::try_from(*n).unwrap_or(0)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    findings: f.findings().iter().map(basic).collect(),
                    enhanced_findings: f.enhanced_findings().iter().map(enhanced).collect(),
                    image_scan_completed_at: f.image_scan_completed_at().and_then(to_chrono),
                    vulnerability_source_updated_at: f.vulnerability_source_updated_at().and_then(to_chrono),
                }),
            });
            if next_token.is_none() {
                return Ok(ScanLookup::Found(Box::new(ScanReport::merge(pages))));
            }
        }
        Err(AwsError::new("ECR", OP, format!("more than {FINDINGS_PAGES} pages of findings")))
    }

    /// The digest of `repository:tag`, or `None` when ECR has no such image.
    pub async fn resolve_digest(
        &self,
        registry_id: Option<&str>,
        repository: &str,
        tag: &str,
    ) -> Result<Option<Digest>, AwsError> {
        let client = &self.client;
        const OP: &str = "DescribeImages";
        let result = client
            .describe_images()
            .set_registry_id(registry_id.map(str::to_owned))
            .repository_name(repository)
            .image_ids(ImageIdentifier::builder().image_tag(tag).build())
            .send()
            .await;
        match result {
            Ok(out) => match out.image_details().first().and_then(|d| d.image_digest()) {
                Some(digest) => {
                    Digest::parse(digest).map(Some).map_err(|e| AwsError::new("ECR", OP, e.to_string()))
                }
                None => Ok(None),
            },
            Err(e) if e.as_service_error().is_some_and(|e| e.is_image_not_found_exception()) => Ok(None),
            Err(e) => Err(aws_err("ECR", OP)(e)),
        }
    }

    /// The manifest of `repository@digest` as ECR stores it (an image index
    /// stays an index), or `None` when ECR has no such image. A single image's
    /// platform is read from its config blob, through the download URL ECR hands
    /// out for it (what `docker pull` does), with `http`.
    pub async fn get_manifest(
        &self,
        http: &crate::http::Client,
        registry_id: Option<&str>,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<Manifest>, AwsError> {
        let client = &self.client;
        let Some(manifest) = read_manifest(client, registry_id, repository, digest).await? else {
            return Ok(None);
        };
        let Some(config) = manifest.config_digest().cloned() else {
            return Ok(Some(manifest));
        };
        let blob = read_blob(client, http, registry_id, repository, &config).await?;
        let platform = config_platform(&config, &blob).map_err(|e| {
            AwsError::new("ECR", "GetDownloadUrlForLayer", format!("{repository}@{digest}: {e}"))
        })?;
        Ok(Some(Manifest::Image { config: Some(config), platform: Some(platform) }))
    }
}

/// How long the download of one config blob may take.
const BLOB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A blob of `repository` (an image config: small, and checked against its
/// digest by the caller), through the URL `GetDownloadUrlForLayer` gives.
async fn read_blob(
    client: &aws_sdk_ecr::Client,
    http: &crate::http::Client,
    registry_id: Option<&str>,
    repository: &str,
    layer_digest: &Digest,
) -> Result<Vec<u8>, AwsError> {
    const OP: &str = "GetDownloadUrlForLayer";
    let output = client
        .get_download_url_for_layer()
        .set_registry_id(registry_id.map(str::to_owned))
        .repository_name(repository)
        .layer_digest(layer_digest.as_str())
        .send()
        .await
        .map_err(aws_err("ECR", OP))?;
    let failed =
        |reason: String| AwsError::new("ECR", OP, format!("{repository} blob {layer_digest}: {reason}"));
    let url: hyper::Uri = output
        .download_url()
        .ok_or_else(|| failed("no download URL in the answer".into()))?
        .parse()
        .map_err(|e| failed(format!("unusable download URL: {e}")))?;
    let response = tokio::time::timeout(BLOB_TIMEOUT, http.get(url))
        .await
        .map_err(|_| failed(format!("the download took over {}s", BLOB_TIMEOUT.as_secs())))?
        .map_err(|e| failed(format!("download failed: {}", crate::http::causes(&e))))?;
    if !response.status().is_success() {
        return Err(failed(format!("download answered {}", response.status())));
    }
    let limited = http_body_util::Limited::new(response.into_body(), IMAGE_CONFIG_BYTES);
    let body = tokio::time::timeout(BLOB_TIMEOUT, http_body_util::BodyExt::collect(limited))
        .await
        .map_err(|_| failed(format!("the download took over {}s", BLOB_TIMEOUT.as_secs())))?
        .map_err(|e| failed(format!("download failed (limit {IMAGE_CONFIG_BYTES} bytes): {e}")))?;
    Ok(body.to_bytes().to_vec())
}

async fn read_manifest(
    client: &aws_sdk_ecr::Client,
    registry_id: Option<&str>,
    repository: &str,
    digest: &Digest,
) -> Result<Option<Manifest>, AwsError> {
    const OP: &str = "BatchGetImage";
    let output = client
        .batch_get_image()
        .set_registry_id(registry_id.map(str::to_owned))
        .repository_name(repository)
        .image_ids(ImageIdentifier::builder().image_digest(digest.as_str()).build())
        .set_accepted_media_types(Some(ACCEPTED_MEDIA_TYPES.map(str::to_owned).to_vec()))
        .send()
        .await
        .map_err(aws_err("ECR", OP))?;
    let Some(image) = output
        .images()
        .iter()
        .find(|i| i.image_id().and_then(|id| id.image_digest()) == Some(digest.as_str()))
    else {
        // `ImageNotFound` comes back as a failure, not an error; any other
        // failure (say `KmsError`) is an error: the image cannot be judged.
        return match output.failures().first() {
            Some(f) if f.failure_code().is_some_and(|c| *c != ImageFailureCode::ImageNotFound) => {
                Err(AwsError::new(
                    "ECR",
                    OP,
                    format!(
                        "{}: {}",
                        f.failure_code().map(|c| c.as_str()).unwrap_or_default(),
                        f.failure_reason().unwrap_or_default()
                    ),
                ))
            }
            _ => Ok(None),
        };
    };
    let body = image.image_manifest().unwrap_or_default();
    if body.len() > MANIFEST_BYTES {
        return Err(AwsError::new(
            "ECR",
            OP,
            format!("the manifest of {repository}@{digest} is over {MANIFEST_BYTES} bytes"),
        ));
    }
    Manifest::parse(image.image_manifest_media_type(), body)
        .map(Some)
        .map_err(|e| AwsError::new("ECR", OP, format!("{repository}@{digest}: {e}")))
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn basic(f: &ImageScanFinding) -> BasicFinding {
    BasicFinding {
        name: f.name().unwrap_or_default().into(),
        uri: f.uri().map(str::to_owned),
        severity: f.severity().map(|s| s.as_str().into()).unwrap_or_default(),
        attributes: f
            .attributes()
            .iter()
            .map(|a| Attribute { key: a.key().into(), value: a.value().map(Into::into) })
            .collect(),
    }
}

fn enhanced(f: &EnhancedImageScanFinding) -> EnhancedFinding {
    EnhancedFinding {
        severity: f.severity().unwrap_or_default().into(),
        title: f.title().map(str::to_owned),
        status: f.status().map(Into::into),
        fix_available: f.fix_available().map(Into::into),
        package_vulnerability_details: f.package_vulnerability_details().map(|d| {
            PackageVulnerabilityDetails {
                vulnerability_id: d.vulnerability_id().unwrap_or_default().into(),
                vulnerable_packages: d
                    .vulnerable_packages()
                    .iter()
                    .map(|p| VulnerablePackage {
                        name: p.name().unwrap_or_default().into(),
                        version: p.version().map(Into::into),
                        fixed_in_version: p.fixed_in_version().map(Into::into),
                    })
                    .collect(),
                source_url: d.source_url().map(str::to_owned),
            }
        }),
        exploit_available: f.exploit_available().map(Into::into),
        // ECR's findings carry no EPSS score (Inspector's ListFindings does).
        epss: None,
    }
}
