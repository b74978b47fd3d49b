//! Objects in S3, with the conditional writes that keep concurrent Lambdas
//! from losing each other's updates.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use shipgate_core::limits::{RECORD_BYTES, too_large};

use crate::error::{AwsError, aws_err};

const SERVICE: &str = "S3";

/// The code of the [`AwsError`] for an object over its size limit
/// (Shipgate's, not AWS's).
pub const TOO_LARGE: &str = "ShipgateObjectTooLarge";

/// The body of a GetObject answer, refused by its `Content-Length` before
/// any of it is read, and never read past `limit` bytes from the stream.
pub(crate) async fn bounded_body(
    key: &str,
    output: GetObjectOutput,
    limit: u64,
) -> Result<Vec<u8>, AwsError> {
    let refuse = |size: u64| AwsError {
        code: Some(TOO_LARGE.into()),
        ..AwsError::new(SERVICE, "GetObject", format!("{key}: {}", too_large(size, limit)))
    };
    let declared = output.content_length().and_then(|n| u64::try_from(n).ok());
    if let Some(size) = declared.filter(|size| *size > limit) {
        return Err(refuse(size));
    }
    let mut body = output.body;
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| AwsError::new(SERVICE, "GetObject", format!("reading body of {key}: {e}")))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            return Err(refuse(bytes.len() as u64));
        }
    }
    Ok(bytes)
}

/// An object's bytes and the identifiers a conditional write needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only when no object exists at the key (`If-None-Match: *`).
    IfAbsent,
    /// Only when the current object has this ETag (`If-Match`).
    IfMatch(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    Written {
        etag: Option<String>,
    },
    /// Someone else wrote first; the caller re-reads and decides again.
    ConditionFailed,
}

/// What [`Bucket::update_json`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Updated<T> {
    Written(T),
    /// The decision kept what is stored (shown, if anything is).
    Unchanged(Option<T>),
}

/// How often a compare-and-swap tries before it gives up (and the
/// invocation fails, for Lambda to retry): with [`cas_backoff`], about 5 s
/// of waiting at most.
const MAX_CAS_ATTEMPTS: usize = 12;

/// The pause before attempt `attempt` (from 1) of a compare-and-swap that
/// lost a race: exponential from 20 ms, capped at 640 ms, with full jitter,
/// so writers that collided do not collide again in lockstep (the storm of
/// flips that one CVE causes lands on a handful of objects).
fn cas_backoff(attempt: usize) -> std::time::Duration {
    let ceiling = 10u64 << attempt.min(6);
    // Jitter from the clock's nanoseconds and the task: no random source needed.
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mixed = u64::from(nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    std::time::Duration::from_millis(mixed % (ceiling + 1))
}

/// One bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
}

impl Bucket {
    pub fn new(client: aws_sdk_s3::Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into() }
    }

    /// The bucket `name`, through a client of its own built from `sdk`
    /// (path-style against a custom endpoint, see [`crate::clients::s3`]).
    pub fn connect(sdk: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::new(crate::clients::s3(sdk), name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object at `key`, or `None` when there is none; an object larger
    /// than `limit` bytes is an error coded [`TOO_LARGE`], and is not read.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Option<Object>, AwsError> {
        self.get_inner(key, None, limit).await
    }

    /// One version of the object at `key`, as [`Bucket::get`].
    pub async fn get_version(
        &self,
        key: &str,
        version_id: &str,
        limit: u64,
    ) -> Result<Option<Object>, AwsError> {
        self.get_inner(key, Some(version_id), limit).await
    }

    async fn get_inner(
        &self,
        key: &str,
        version_id: Option<&str>,
        limit: u64,
    ) -> Result<Option<Object>, AwsError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(aws_err(SERVICE, "GetObject")(err)),
        };
        let etag = output.e_tag().map(str::to_owned);
        let version_id = output.version_id().map(str::to_owned);
        let body = bounded_body(key, output, limit).await?;
        Ok(Some(Object { body, etag, version_id }))
    }

    /// Every key under `prefix`, all pages.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(aws_err(SERVICE, "ListObjectsV2"))?;
            keys.extend(output.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            match output.next_continuation_token() {
                Some(next) if output.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    /// Reads the JSON document at `key`, lets `decide` return its replacement
    /// (or `None` to keep it), and writes that only if nobody wrote in
    /// between (`If-Match` on the ETag, `If-None-Match` when absent); on a
    /// lost race it reads and decides again. A document that does not parse
    /// is handed to `decide` as absent, and replaced.
    pub async fn update_json<T, F>(&self, key: &str, decide: F) -> Result<Updated<T>, AwsError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnMut(Option<&T>) -> Option<T>,
    {
        let stored = self.get(key, RECORD_BYTES).await?;
        self.update_json_from(key, stored, decide).await
    }

    /// [`Bucket::update_json`] starting from `stored`, the object at `key`
    /// as the caller already read it ([`Bucket::get`] with `RECORD_BYTES`),
    /// so that read can run alongside others.
    pub async fn update_json_from<T, F>(
        &self,
        key: &str,
        mut stored: Option<Object>,
        decide: F,
    ) -> Result<Updated<T>, AwsError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnMut(Option<&T>) -> Option<T>,
    {
        self.update_json_at(key, &mut stored, decide).await
    }

    /// [`Bucket::update_json_from`] that leaves `stored` holding what the
    /// update left at `key` (the document it wrote, with the ETag S3 gave
    /// it, or the one it kept), so the next update of the key starts from
    /// there instead of reading it again. That write is still conditional on
    /// the ETag: if anyone wrote in between, it loses, reads and decides again.
    pub async fn update_json_at<T, F>(
        &self,
        key: &str,
        stored: &mut Option<Object>,
        mut decide: F,
    ) -> Result<Updated<T>, AwsError>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: FnMut(Option<&T>) -> Option<T>,
    {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                tracing::debug!(key, attempt, "lost a compare-and-swap race; reading again");
                tokio::time::sleep(cas_backoff(attempt)).await;
                *stored = self.get(key, RECORD_BYTES).await?;
            }
            let current: Option<T> = stored.as_ref().and_then(|o| serde_json::from_slice(&o.body).ok());
            let Some(next) = decide(current.as_ref()) else { return Ok(Updated::Unchanged(current)) };
            let condition = match stored.as_ref().and_then(|o| o.etag.clone()) {
                Some(etag) => Condition::IfMatch(etag),
                None => Condition::IfAbsent,
            };
            let body = serde_json::to_vec_pretty(&next)
                .map_err(|e| AwsError::new(SERVICE, "PutObject", format!("serialising {key}: {e}")))?;
            match self.put(key, body.clone(), "application/json", condition).await? {
                PutOutcome::Written { etag } => {
                    *stored = Some(Object { body, etag, version_id: None });
                    return Ok(Updated::Written(next));
                }
                PutOutcome::ConditionFailed => continue,
            }
        }
        Err(AwsError {
            transient: true,
            ..AwsError::new(
                SERVICE,
                "PutObject",
                format!("{key}: lost {MAX_CAS_ATTEMPTS} races with concurrent writers"),
            )
        })
    }

    /// The JSON document at `key`; `None` when absent or unreadable.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AwsError> {
        Ok(self.get(key, RECORD_BYTES).await?.and_then(|o| serde_json::from_slice(&o.body).ok()))
    }

    /// Writes `value` as JSON at `key`, unconditionally.
    pub async fn put_json<T: serde::Serialize>(&self, key: &str, value: &T) -> Result<(), AwsError> {
        let body = serde_json::to_vec_pretty(value)
            .map_err(|e| AwsError::new(SERVICE, "PutObject", format!("serialising {key}: {e}")))?;
        self.put(key, body, "application/json", Condition::Always).await.map(|_| ())
    }

    /// Writes `body` at `key` when `condition` holds.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: Condition,
    ) -> Result<PutOutcome, AwsError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        request = match condition {
            Condition::Always => request,
            Condition::IfAbsent => request.if_none_match("*"),
            Condition::IfMatch(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(out) => Ok(PutOutcome::Written { etag: out.e_tag().map(str::to_owned) }),
            Err(err) => {
                let err = aws_err(SERVICE, "PutObject")(err);
                // 412 on a failed precondition; 409 when a concurrent
                // conditional write is in flight on the same key.
                if err.is("PreconditionFailed") || err.is("ConditionalRequestConflict") {
                    Ok(PutOutcome::ConditionFailed)
                } else {
                    Err(err)
                }
            }
        }
    }
}
