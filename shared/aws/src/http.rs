//! Shipgate's HTTP clients: HTTPS validated against Mozilla's root store
//! bundled into the binary (webpki-roots), so no system store is read at a
//! cold start; plain HTTP where a URL says so (a listener inside the VPC, the
//! local emulator). One for Shipgate's own requests (test-listener checks,
//! image config blobs), and one for the AWS SDK.
//!
//! The SDK's default client reads the system's root certificates when it
//! builds its TLS configuration (rustls-native-certs: every PEM file of the
//! system store parsed at every cold start, a large part of each function's
//! init: `bench/README.md`). [`sdk_client`] is the same hyper client
//! over rustls, trusting the bundled roots, which cost nothing to load; its
//! errors are classified as the SDK's own client classifies them
//! (aws-smithy-http-client's `downcast_error`), so retries behave the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;

pub type Client = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Mozilla's public roots, as bundled.
pub fn public_roots() -> RootCertStore {
    RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() }
}

/// A client trusting `roots` for HTTPS.
pub fn client(roots: RootCertStore) -> Result<Client, rustls::Error> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(roots)?)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
}

fn tls_config(roots: RootCertStore) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An error and its causes, outermost first: hyper's own message ("client
/// error (Connect)") says nothing of an untrusted certificate underneath.
pub fn causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// An HTTP client for the AWS SDK that trusts `roots`.
pub fn sdk_client(roots: RootCertStore) -> Result<SharedHttpClient, rustls::Error> {
    Ok(SharedHttpClient::new(SdkHttp { tls: Arc::new(tls_config(roots)?), connectors: Default::default() }))
}

#[derive(Debug)]
struct SdkHttp {
    tls: Arc<rustls::ClientConfig>,
    /// One connection pool per connect timeout (what the settings vary in),
    /// as the SDK's own client keeps one per settings.
    connectors: Mutex<HashMap<Option<Duration>, SharedHttpConnector>>,
}

impl HttpClient for SdkHttp {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        let timeout = settings.connect_timeout();
        let mut connectors = self.connectors.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        connectors
            .entry(timeout)
            .or_insert_with(|| {
                let mut tcp = HttpConnector::new();
                tcp.enforce_http(false);
                tcp.set_nodelay(true);
                tcp.set_connect_timeout(timeout);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config((*self.tls).clone())
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(tcp);
                let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build(https);
                SharedHttpConnector::new(SdkConnector { client })
            })
            .clone()
    }
}

#[derive(Debug, Clone)]
struct SdkConnector {
    client: hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, SdkBody>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.request(request).await.map_err(classify)?;
            let response = response.map(SdkBody::from_body_1_x);
            HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Retryable or not, as the SDK's own client says of the same error.
fn classify(err: hyper_util::client::legacy::Error) -> ConnectorError {
    fn find<'a, E: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(found) = e.downcast_ref::<E>() {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
    let io = err.is_connect() || find::<std::io::Error>(&err).is_some();
    let hyper = find::<hyper::Error>(&err)
        .map(|h| (h.is_timeout(), h.is_closed() || h.is_canceled(), h.is_incomplete_message()));
    match hyper {
        Some((true, _, _)) => ConnectorError::timeout(err.into()),
        Some((_, true, _)) => ConnectorError::io(err.into()),
        _ if io => ConnectorError::io(err.into()),
        Some((_, _, true)) => ConnectorError::other(err.into(), Some(ErrorKind::TransientError)),
        _ => ConnectorError::other(err.into(), None),
    }
}
