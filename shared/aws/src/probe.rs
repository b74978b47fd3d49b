//! HTTP checks against a deployment's test listener.
//!
//! The base URL comes from the function's configuration only; a check adds
//! nothing but a path (validated by the policy: it starts with `/`), so
//! neither an event nor a policy can point the function at another host.
//!
//! `https://` listeners (what an ALB test listener on 8443 usually is) are
//! checked with full certificate validation against Mozilla's root store,
//! bundled into the binary (webpki-roots): no system store is read, and a
//! certificate that does not chain to a public root or name the host fails
//! the check. `http://` stays for listeners reached inside the VPC.

use std::time::Duration;

use rustls::RootCertStore;

use crate::env::ConfigError;

/// The test listener, e.g. `https://test.payments.example.com:8443`.
#[derive(Debug, Clone)]
pub struct Probe {
    base: String,
    client: crate::http::Client,
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
    /// `base` must be `http://` or `https://host[:port][/prefix]`; HTTPS is
    /// validated against the bundled public roots.
    pub fn new(name: &'static str, base: &str, backoff: Duration) -> Result<Self, ConfigError> {
        Self::with_roots(name, base, backoff, crate::http::public_roots())
    }

    /// As [`Probe::new`], trusting `roots` instead (a private CA).
    pub fn with_roots(
        name: &'static str,
        base: &str,
        backoff: Duration,
        roots: RootCertStore,
    ) -> Result<Self, ConfigError> {
        let client = crate::http::client(roots)
            .map_err(|e| ConfigError::Invalid { name, reason: format!("no TLS client: {e}") })?;
        Self::with_client(name, base, backoff, client)
    }

    /// As [`Probe::new`], through `client` (one the function already has).
    pub fn with_client(
        name: &'static str,
        base: &str,
        backoff: Duration,
        client: crate::http::Client,
    ) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid { name, reason: format!("{reason}, got {base:?}") };
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"))
            .ok_or_else(|| invalid("must start with http:// or https://"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.contains('@') || rest.contains(['?', '#']) {
            return Err(invalid(
                "must be http(s)://host[:port][/path] with no credentials, query or fragment",
            ));
        }
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
                    Ok(Err(e)) => format!("request failed: {}", crate::http::causes(&e)),
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
    fn base_url_must_be_http_or_https_to_one_host() {
        let d = Duration::from_millis(1);
        assert!(Probe::new("X", "http://127.0.0.1:8080", d).is_ok());
        assert!(Probe::new("X", "http://internal-alb:8080/prefix/", d).is_ok());
        assert!(Probe::new("X", "https://test.payments.example.com:8443", d).is_ok());
        for bad in ["ftp://a", "http://", "https://", "http://user:pw@a", "https://a?x=1", "127.0.0.1"] {
            assert!(Probe::new("X", bad, d).is_err(), "{bad}");
        }
    }
}
