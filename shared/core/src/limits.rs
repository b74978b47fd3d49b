//! How much Shipgate reads of anything it did not write, in one place.
//!
//! Every object read from S3 is refused by its size before its body is read
//! (the S3 event's `object.size` where there is one, else the `Content-Length`
//! GetObject answers with, and never more than the limit from the stream), so
//! a 1 GB upload is a clear rejection, not an out-of-memory crash.

/// `appsec.yaml` and `routes.yaml`: the YAML reader refuses anything larger.
pub const YAML_BYTES: u64 = 1024 * 1024;

/// Shipgate's own JSON records in the config bucket: last-known-good
/// policies, verdicts, decisions, provenance, markers. A last-known-good
/// holds a whole policy, so this is a few times [`YAML_BYTES`].
pub const RECORD_BYTES: u64 = 8 * 1024 * 1024;

/// A CodePipeline input artifact (the build output zip).
pub const ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;

/// One file inside the artifact (`imageDetail.json`, `taskdef.json`), unzipped.
pub const ARTIFACT_FILE_BYTES: u64 = 1024 * 1024;

/// Pages of scan findings read for one image (ECR pages hold up to 1,000
/// findings; Inspector's up to 100), so a misbehaving paginator cannot loop forever.
pub const FINDINGS_PAGES: usize = 1000;

/// The largest image manifest read: ECR accepts manifests up to 4 MiB
/// (ECR's service quotas, "Image manifest size").
pub const MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// The largest image config blob read (for its platform): configs are a few
/// kilobytes; this bounds a hostile one.
pub const IMAGE_CONFIG_BYTES: usize = 1024 * 1024;

/// The message for an input over its limit, the same wherever it is refused.
pub fn too_large(size: u64, limit: u64) -> String {
    format!("file too large: {size} bytes, at most {limit}")
}
