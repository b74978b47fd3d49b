//! An SDK HTTP client that answers late: the report-deadline tests' fault.

use crate::*;

/// An HTTP client for the SDK that answers every request with `200 {}` after
/// `delay` (on tokio's clock: tests pause it), counting the requests: an AWS
/// API that is slow to answer, for the report-deadline tests.
#[derive(Debug, Clone)]
pub struct SlowHttp {
    pub delay: std::time::Duration,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SlowHttp {
    pub fn new(delay: std::time::Duration) -> Self {
        Self { delay, requests: Default::default() }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An SDK configuration that sends through this client, with Shipgate's
    /// own timeouts and retries (as `shipgate_aws::clients` sets them).
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIASLOW", "slow-secret", None, None, "slow"),
            ))
            .http_client(self.clone())
            .timeout_config(shipgate_aws::clients::timeout_config())
            .retry_config(shipgate_aws::clients::retry_config())
            .sleep_impl(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
                aws_smithy_async::rt::sleep::TokioSleep::new(),
            ))
            .build()
    }
}

impl aws_smithy_runtime_api::client::http::HttpConnector for SlowHttp {
    fn call(
        &self,
        _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let delay = self.delay;
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            tokio::time::sleep(delay).await;
            let status = aws_smithy_runtime_api::http::StatusCode::try_from(200_u16).unwrap();
            Ok(aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                status,
                aws_smithy_types::body::SdkBody::from("{}"),
            ))
        })
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for SlowHttp {
    fn http_connector(
        &self,
        _settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(self.clone())
    }
}
