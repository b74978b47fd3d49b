//! EPSS scores for an ECR image's findings, from Amazon Inspector.
//!
//! ECR's `DescribeImageScanFindings` gives an enhanced finding its
//! `exploitAvailable` but no EPSS score; Inspector's `ListFindings` gives
//! `epss.score` (API reference, `Finding` and `EpssDetails`). A policy with
//! `scan.fail_on.epss_at_least` set reads them here and the scores are set on
//! the report's findings, so the engine judges one report.

use std::collections::HashMap;

use aws_sdk_inspector2::types::{FilterCriteria, StringComparison, StringFilter};
use chrono::{DateTime, Utc};
use shipgate_core::digest::ImageDigest;
use shipgate_core::findings::{Epss, ScanReport};
use shipgate_core::limits::FINDINGS_PAGES;
use shipgate_core::policy::Policy;
use shipgate_core::scan::{ScanVerdict, Verdict, evaluate_scan};

use crate::ecr::ScanLookup;

use crate::error::{AwsError, aws_err};

/// Inspector's largest page.
const PAGE_SIZE: i32 = 100;

/// The EPSS score of each vulnerability (lower-cased id) of the image's
/// active findings, where Inspector has one.
pub async fn epss_scores(
    client: &aws_sdk_inspector2::Client,
    repository: &str,
    digest: &ImageDigest,
) -> Result<HashMap<String, f64>, AwsError> {
    const OP: &str = "ListFindings";
    let equals = |value: &str| {
        StringFilter::builder()
            .comparison(StringComparison::Equals)
            .value(value)
            .build()
            .map_err(|e| AwsError::new("Inspector2", OP, e.to_string()))
    };
    let criteria = FilterCriteria::builder()
        .ecr_image_repository_name(equals(repository)?)
        .ecr_image_hash(equals(digest.as_str())?)
        .finding_status(equals("ACTIVE")?)
        .build();
    let mut scores = HashMap::new();
    let mut next_token: Option<String> = None;
    for _ in 0..FINDINGS_PAGES {
        let page = client
            .list_findings()
            .filter_criteria(criteria.clone())
            .max_results(PAGE_SIZE)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(aws_err("Inspector2", OP))?;
        for finding in page.findings() {
            let id = finding.package_vulnerability_details().map(|d| d.vulnerability_id());
            if let (Some(id), Some(epss)) = (id, finding.epss()) {
                scores.insert(id.to_lowercase(), epss.score());
            }
        }
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            return Ok(scores);
        }
    }
    Err(AwsError::new("Inspector2", OP, format!("more than {FINDINGS_PAGES} pages of findings")))
}

/// Sets the EPSS score of each enhanced finding of `report` that Inspector
/// scores; a report without enhanced findings costs no call.
pub async fn add_epss(
    client: &aws_sdk_inspector2::Client,
    repository: &str,
    digest: &ImageDigest,
    report: &mut ScanReport,
) -> Result<(), AwsError> {
    let Some(findings) = report.image_scan_findings.as_mut().filter(|f| !f.enhanced_findings.is_empty())
    else {
        return Ok(());
    };
    let scores = epss_scores(client, repository, digest).await?;
    for finding in &mut findings.enhanced_findings {
        let id = finding
            .package_vulnerability_details
            .as_ref()
            .map(|d| d.vulnerability_id.as_str().to_lowercase());
        if let Some(score) = id.and_then(|id| scores.get(&id)) {
            finding.epss = Some(Epss { score: *score });
        }
    }
    Ok(())
}

/// One image judged now under `policy`, from its current findings in ECR
/// with Inspector's EPSS scores when the policy reads them: a stored
/// verdict could honour an exception that has since expired, or miss a
/// finding reported since. A scan ECR has not recorded is pending. The one
/// judgement release-gate makes of each image and deploy-hooks makes again
/// at deployment time.
pub async fn judge_now(
    ecr: &crate::ecr::Ecr,
    inspector: &crate::clients::OnFirstUse<aws_sdk_inspector2::Client>,
    policy: &Policy,
    registry_id: Option<&str>,
    repository: &str,
    image: &ImageDigest,
    now: DateTime<Utc>,
) -> Result<ScanVerdict, AwsError> {
    Ok(match ecr.describe_scan(registry_id, repository, image).await? {
        ScanLookup::Found(mut report) => {
            if policy.scan.fail_on.reads_epss() {
                add_epss(inspector.get(), repository, image, &mut report).await?;
            }
            evaluate_scan(policy, repository, &report, now)
        }
        ScanLookup::NotFound => ScanVerdict::empty(Verdict::Pending, ""),
    })
}
