//! HTTP checks against a deployment's test listener.
//!
//! The base URL comes from the function's configuration only; a check adds
//! nothing but a path (validated by the policy: it starts with `/`), so
//! neither an event nor a policy can point the function at another host.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::env::ConfigError;

/// The test listener, e.g. `http://internal-alb-123.us-east-1.elb.amazonaws.com:8080`.
#[derive(Debug, Clone)]
pub struct Probe {
    base: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    backoff: Duration,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub path: String,
    pub passed: bool,
    pub attempts: u32,
    /// What the last attempt saw: `200`, `503`, `timed out after 2s`, ...
    pub last: String,
}

impl Probe {
    /// `base` must be `http://host[:port][/prefix]`. (The ALB test listener
    /// is reached inside the VPC; TLS to it is not supported yet.)
    pub fn new(name: &'static str, base: &str, backoff: Duration) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid { name, reason: format!("{reason}, got {base:?}") };
        let rest = base.strip_prefix("http://").ok_or_else(|| invalid("must start with http://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('@') || rest.contains(['?', '#']) {
            return Err(invalid("must be http://host[:port][/path] with no credentials, query or fragment"));
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self { base: base.trim_end_matches('/').to_owned(), client, backoff })
    }

    /// GETs `path` until it answers `expect_status`, at most `attempts`
    /// times, each within `timeout`, waiting `backoff` between attempts.
    pub async fn check(
        &self,
        path: &str,
        expect_status: u16,
        timeout: Duration,
        attempts: u32,
    ) -> CheckOutcome {
        let url = format!("{}{path}", self.base);
        let mut last = String::new();
        for attempt in 1..=attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(self.backoff).await;
            }
            last = match url.parse::<hyper::Uri>() {
                Err(e) => format!("invalid URL {url}: {e}"),
                Ok(uri) => match tokio::time::timeout(timeout, self.client.get(uri)).await {
                    Err(_) => format!("timed out after {}s", timeout.as_secs()),
                    Ok(Err(e)) => format!("request failed: {e}"),
                    Ok(Ok(response)) => {
                        let status = response.status().as_u16();
                        if status == expect_status {
                            return CheckOutcome {
                                path: path.to_owned(),
                                passed: true,
                                attempts: attempt,
                                last: status.to_string(),
                            };
                        }
                        format!("status {status}, expected {expect_status}")
                    }
                },
            };
        }
        CheckOutcome { path: path.to_owned(), passed: false, attempts: attempts.max(1), last }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_must_be_plain_http_to_one_host() {
        let d = Duration::from_millis(1);
        assert!(Probe::new("X", "http://127.0.0.1:8080", d).is_ok());
        assert!(Probe::new("X", "http://internal-alb:8080/prefix/", d).is_ok());
        for bad in ["https://a", "ftp://a", "http://", "http://user:pw@a", "http://a?x=1", "127.0.0.1"] {
            assert!(Probe::new("X", bad, d).is_err(), "{bad}");
        }
    }
}
