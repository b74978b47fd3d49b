//! One error type for every AWS call, naming the service and operation.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, after the SDK's own retries.
///
/// The message carries the whole error chain (`DisplayErrorContext`), so
/// "connection refused" or "ThrottlingException" is visible without a debugger.
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

impl AwsError {
    pub fn new(service: &'static str, operation: &'static str, message: impl Into<String>) -> Self {
        Self { service, operation, code: None, message: message.into(), transient: false }
    }

    /// Converts an SDK error, keeping its code and whether it is worth retrying.
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or_default();
                status >= 500
                    || status == 429
                    || code.contains("Throttl")
                    || code == "TooManyRequestsException"
                    || code == "RequestLimitExceeded"
                    || code == "ServiceUnavailable"
                    || code == "InternalFailure"
                    || code == "InternalServerError"
                    || code == "ServerException"
            }
            _ => false,
        };
        let code = err.code().map(str::to_owned);
        let message = DisplayErrorContext(&err).to_string();
        Self { service, operation, code, message, transient }
    }

    /// True when the service answered with this error code.
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
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
