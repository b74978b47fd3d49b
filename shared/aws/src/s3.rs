//! Objects in S3, with the conditional writes that keep concurrent Lambdas
//! from losing each other's updates.

use aws_sdk_s3::primitives::ByteStream;

use crate::error::{AwsError, aws_err};

const SERVICE: &str = "S3";

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

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object at `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Object>, AwsError> {
        self.get_inner(key, None).await
    }

    /// One version of the object at `key`.
    pub async fn get_version(&self, key: &str, version_id: &str) -> Result<Option<Object>, AwsError> {
        self.get_inner(key, Some(version_id)).await
    }

    async fn get_inner(&self, key: &str, version_id: Option<&str>) -> Result<Option<Object>, AwsError> {
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
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| AwsError::new(SERVICE, "GetObject", format!("reading body of {key}: {e}")))?
            .to_vec();
        Ok(Some(Object { body, etag, version_id }))
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
