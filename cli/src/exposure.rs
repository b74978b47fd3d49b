//! `shipgate exposure`: which running services run images that fail today's
//! policy, by owner and environment, read from the config bucket (the
//! records deploy-hooks and scan-gate keep) with the caller's own AWS
//! credentials and configuration (`AWS_PROFILE`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL` for the local emulator).

use std::collections::BTreeMap;

use serde::Serialize;
use shipgate_core::exposure::{Accepted, ExposureStatus, RunningService, UNOWNED};

/// One running image, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub owner: String,
    pub environment: String,
    pub service: String,
    pub container: String,
    pub image: String,
    pub repository: String,
    pub digest: shipgate_core::digest::ImageDigest,
    pub status: ExposureStatus,
    /// When the status began (`None`: since the deployment).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub judged_at: Option<chrono::DateTime<chrono::Utc>>,
    pub deployed_at: chrono::DateTime<chrono::Utc>,
    pub blocking: Vec<String>,
    pub accepted: Vec<Accepted>,
}

/// The rows of `records`: failing images only, unless `all`; by owner,
/// environment and service.
pub fn rows(records: &[RunningService], all: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = records
        .iter()
        .flat_map(|r| {
            r.images.iter().map(move |i| Row {
                owner: i.exposure.owner.clone().unwrap_or_else(|| UNOWNED.to_owned()),
                environment: r.environment.clone().unwrap_or_else(|| "_base".to_owned()),
                service: r.service.clone(),
                container: i.container.clone(),
                image: i.image.clone(),
                repository: i.repository.clone(),
                digest: i.digest.clone(),
                status: i.exposure.status,
                since: i.exposure.since,
                judged_at: i.exposure.judged_at,
                deployed_at: r.deployed_at,
                blocking: i.exposure.blocking.clone(),
                accepted: i.exposure.accepted.clone(),
            })
        })
        .filter(|row| all || row.status == ExposureStatus::Failing)
        .collect();
    rows.sort_by(|a, b| {
        (&a.owner, &a.environment, &a.service, &a.container).cmp(&(
            &b.owner,
            &b.environment,
            &b.service,
            &b.container,
        ))
    });
    rows
}

/// The rows for people: owner, then environment, then one line per image
/// and its reasons.
pub fn text(rows: &[Row], services: usize) -> String {
    let failing = rows.iter().filter(|r| r.status == ExposureStatus::Failing).count();
    let mut out = String::new();
    let mut by_owner: BTreeMap<&str, BTreeMap<&str, Vec<&Row>>> = BTreeMap::new();
    for row in rows {
        by_owner.entry(&row.owner).or_default().entry(&row.environment).or_default().push(row);
    }
    for (owner, environments) in by_owner {
        out.push_str(&format!("{owner}\n"));
        for (environment, rows) in environments {
            out.push_str(&format!("  {environment}\n"));
            for row in rows {
                let digest = row.digest.short();
                let when = row.since.map_or_else(
                    || format!("since its deployment {}", row.deployed_at.format("%Y-%m-%d %H:%M UTC")),
                    |t| format!("since {}", t.format("%Y-%m-%d %H:%M UTC")),
                );
                let status = match row.status {
                    ExposureStatus::Failing => "EXPOSED",
                    ExposureStatus::Passing => "passing",
                };
                out.push_str(&format!(
                    "    {status:<7} {} ({}) runs {}@{digest}, {when}\n",
                    row.service, row.container, row.repository
                ));
                for reason in &row.blocking {
                    out.push_str(&format!("              - {reason}\n"));
                }
                for a in &row.accepted {
                    let package = a.package.as_deref().map(|p| format!(" in {p}")).unwrap_or_default();
                    out.push_str(&format!(
                        "              - accepted: {}{package} until {}\n",
                        a.id, a.expires
                    ));
                }
            }
        }
    }
    out.push_str(&format!(
        "{failing} running image(s) fail today's policy, across {services} recorded service(s).\n"
    ));
    out
}

/// Every running record in `bucket`.
pub async fn running(bucket: &shipgate_aws::s3::Bucket) -> Result<Vec<RunningService>, String> {
    let keys = shipgate_aws::exposure::running_keys(bucket).await.map_err(|e| e.to_string())?;
    let mut records = Vec::with_capacity(keys.len());
    for key in keys {
        match bucket.get_json::<RunningService>(&key).await.map_err(|e| e.to_string())? {
            Some(record) => records.push(record),
            None => eprintln!("shipgate: {key}: not a running record; skipped"),
        }
    }
    Ok(records)
}
