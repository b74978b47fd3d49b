//! One error type for every AWS call, naming the service and operation.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, after the SDK's own retries.
///
/// Its message is one line a person reads in a CodePipeline failure, a
/// decision record or an email: the service, the operation, AWS's error code
/// and message and the request id; for a refusal, also the permission that
/// is likely missing. The SDK's whole error chain (with the raw response) goes
/// to the debug log, not here.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation} failed: {message}")]
pub struct AwsError {
    pub service: &'static str,
    pub operation: &'static str,
    /// The AWS error code (`ThrottlingException`, `NoSuchKey`, ...) when the
    /// service answered; `None` for transport failures and timeouts.
    pub code: Option<String>,
    pub message: String,
    /// Whether retrying later could help: throttling, 5xx, timeouts, transport.
    pub transient: bool,
}

/// Error codes AWS services use when IAM refuses a call.
const ACCESS_DENIED: &[&str] =
    &["AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"];

impl AwsError {
    pub fn new(service: &'static str, operation: &'static str, message: impl Into<String>) -> Self {
        Self { service, operation, code: None, message: message.into(), transient: false }
    }

    /// Converts an SDK error, keeping its code and whether it is worth retrying.
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        tracing::debug!(service, operation, error = %DisplayErrorContext(&err), "AWS call failed");
        let mut code = err.code().map(str::to_owned);
        let (transient, message) = match &err {
            SdkError::TimeoutError(_) => (true, "timed out".to_owned()),
            SdkError::DispatchFailure(failure) => {
                let why = if failure.is_timeout() {
                    "timed out".to_owned()
                } else {
                    format!("could not send the request ({})", innermost(&err))
                };
                (true, why)
            }
            SdkError::ResponseError(_) => (true, format!("unreadable response ({})", innermost(&err))),
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let service_code = se.err().code().unwrap_or_default();
                let transient = status >= 500
                    || status == 429
                    || service_code.contains("Throttl")
                    || matches!(
                        service_code,
                        "TooManyRequestsException"
                            | "RequestLimitExceeded"
                            | "ServiceUnavailable"
                            | "InternalFailure"
                            | "InternalServerError"
                            | "ServerException"
                    );
                let shown =
                    if service_code.is_empty() { format!("HTTP {status}") } else { service_code.to_owned() };
                let mut line = shown.clone();
                if let Some(text) = se.err().message().filter(|m| !m.is_empty()) {
                    line.push_str(&format!(": {}", one_line(text)));
                }
                let headers = se.raw().headers();
                if let Some(id) = headers.get("x-amzn-requestid").or_else(|| headers.get("x-amz-request-id"))
                {
                    line.push_str(&format!(" (request id {id})"));
                }
                if ACCESS_DENIED.contains(&shown.as_str()) || status == 403 {
                    line.push_str(&format!("; {}", likely_missing(service, operation)));
                    // A 403 with no code (a HEAD has no body) is a refusal too.
                    code.get_or_insert_with(|| "AccessDenied".to_owned());
                }
                (transient, line)
            }
            _ => (false, one_line(&DisplayErrorContext(&err).to_string())),
        };
        Self { service, operation, code, message, transient }
    }

    /// True when the service answered with this error code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// True when IAM refused the call.
    pub fn is_access_denied(&self) -> bool {
        self.code.as_deref().is_some_and(|c| ACCESS_DENIED.contains(&c))
    }
}

/// The permission a refused call most likely lacks, said as a person would.
fn likely_missing(service: &str, operation: &str) -> String {
    let prefix = match service {
        "EventBridge" => "events",
        other => &other.to_ascii_lowercase(),
    };
    let action = format!("{prefix}:{operation}");
    match (service, operation) {
        // S3 answers 403, not 404, for a missing key the caller may not list.
        ("S3", "GetObject" | "HeadObject") => {
            format!(
                "the role likely lacks {action}, or s3:ListBucket for the key's prefix (when the key is missing)"
            )
        }
        ("ECR", "DescribeImageScanFindings") => {
            format!("the role likely lacks {action}, or inspector2:ListFindings (for enhanced scanning)")
        }
        _ => format!("the role likely lacks {action}"),
    }
}

/// The innermost cause of an error chain: for transport failures, the part
/// that says what happened (`Connection refused`).
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    one_line(&current.to_string())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `result.map_err(aws_err("S3", "GetObject"))`.
pub fn aws_err<E>(
    service: &'static str,
    operation: &'static str,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |err| AwsError::from_sdk(service, operation, err)
}

impl crate::lambda::ErrorType for AwsError {
    fn error_type(&self) -> &'static str {
        "AwsError"
    }
}
