//! The AWS configuration, loaded once per process, and the clients built from it.
//!
//! The standard `AWS_ENDPOINT_URL` (and `AWS_ENDPOINT_URL_<SERVICE>`) variables
//! are honoured by `aws-config`, so the same binary talks to AWS or to the
//! local emulator. Against a custom endpoint S3 uses path-style addressing,
//! since `bucket.127.0.0.1` does not resolve.

use std::time::Duration;

use aws_config::environment::{EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider};
use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use futures_util::FutureExt;

/// Connect timeout for every AWS call: a Lambda in a VPC without a route
/// should fail in seconds, not hang until its deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for one attempt of one call; the deadline guard bounds the rest.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Shipgate's timeouts for every call.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build()
}

/// Shipgate's retries: standard mode, three attempts with jittered backoff.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// Timeouts for a report that must end within `budget` (see
/// [`crate::Deadline::report_budget`]): the whole operation, every attempt
/// and the backoff between them, within `budget`, and each attempt within
/// half of it, so a slow first attempt still leaves room for a retry.
pub fn report_timeouts(budget: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(budget / 2))
        .operation_timeout(budget)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT.min(budget / 2))
        .build()
}

/// Loads the shared AWS configuration from the environment: region,
/// credentials, endpoint override, and Shipgate's timeouts and retries
/// (standard mode, three attempts with jittered backoff).
pub async fn load_sdk_config() -> SdkConfig {
    config_loader().load().await
}

/// The loader behind [`load_sdk_config`], for callers (tests, the local
/// replay) that add an endpoint, a region or credentials of their own.
pub fn config_loader() -> aws_config::ConfigLoader {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .retry_config(retry_config());
    let (region, credentials) = environment_links(
        EnvironmentVariableRegionProvider::new(),
        EnvironmentVariableCredentialsProvider::new(),
    );
    if let Some(region) = region {
        loader = loader.region(region);
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    // The bundled roots instead of the system store (see `crate::http`); the
    // SDK's own client only if rustls cannot be configured at all.
    match crate::http::sdk_client(crate::http::public_roots()) {
        Ok(client) => loader.http_client(client),
        Err(e) => {
            tracing::warn!(error = %e, "no TLS client with the bundled roots; using the SDK's default");
            loader
        }
    }
}

/// The first links of the SDK's default region and credentials chains (the
/// `AWS_REGION` / `AWS_DEFAULT_REGION` and `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` variables, read by the SDK's
/// own providers), where they answer: then the rest of each chain is never
/// consulted, so it is not built. Lambda sets all of them for every function,
/// the region and the execution role's credentials ("Defined runtime
/// environment variables", AWS Lambda Developer Guide). Building the default
/// chains anyway builds an STS client (web identity) and an IMDS client,
/// each parsing its endpoint partitions and compiling their patterns: about
/// 8% of a function's cold start, for clients never called. Where a link
/// does not answer (a profile, SSO, a container's credentials), the default
/// chain decides, as before.
fn environment_links<R: ProvideRegion, C: ProvideCredentials>(
    region: R,
    credentials: C,
) -> (Option<aws_config::Region>, Option<C>) {
    // The environment's providers answer at once (a ready future): they read variables.
    let region = region.region().now_or_never().flatten();
    let answers = credentials.provide_credentials().now_or_never().is_some_and(|c| c.is_ok());
    (region, answers.then_some(credentials))
}

pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let builder = aws_sdk_s3::config::Builder::from(config).force_path_style(config.endpoint_url().is_some());
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// A client built on first use, for a function that needs it only for some
/// events (Inspector, for a policy that judges EPSS scores): its cold start
/// does not pay for it, and the first event that needs it pays once.
#[derive(Debug, Clone)]
pub struct OnFirstUse<C> {
    sdk: SdkConfig,
    build: fn(&SdkConfig) -> C,
    client: std::sync::OnceLock<C>,
}

impl<C> OnFirstUse<C> {
    pub fn new(sdk: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        Self { sdk: sdk.clone(), build, client: std::sync::OnceLock::new() }
    }

    pub fn get(&self) -> &C {
        self.client.get_or_init(|| (self.build)(&self.sdk))
    }
}

/// Every client the fleet uses, built from one configuration: for the CLI
/// and the tests. A function builds only the clients it calls (each costs
/// a little of every cold start; `bench/README.md` has the figures);
/// they share the configuration's HTTP client and its connection pool.
#[derive(Debug, Clone)]
pub struct Clients {
    pub codepipeline: aws_sdk_codepipeline::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub s3: aws_sdk_s3::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub sns: aws_sdk_sns::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl Clients {
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            codepipeline: aws_sdk_codepipeline::Client::new(config),
            codedeploy: aws_sdk_codedeploy::Client::new(config),
            ecs: aws_sdk_ecs::Client::new(config),
            s3: s3(config),
            ecr: aws_sdk_ecr::Client::new(config),
            sns: aws_sdk_sns::Client::new(config),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_config::Region;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::{error::CredentialsError, future};

    use super::*;

    /// A link that does not answer, as the environment's when a variable is missing.
    #[derive(Debug)]
    struct NotSet;

    impl ProvideCredentials for NotSet {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "environment variable not set",
            )))
        }
    }

    #[test]
    fn links_that_answer_are_set_on_the_loader() {
        let lambda = Credentials::new("ASIAEXAMPLE", "secret", Some("token".into()), None, "Environment");
        let (region, credentials) = environment_links(Some(Region::new("eu-west-1")), lambda);
        assert_eq!(region.as_ref().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(credentials.map(|c| c.access_key_id().to_owned()).as_deref(), Some("ASIAEXAMPLE"));
    }

    #[test]
    fn links_that_do_not_answer_leave_the_default_chains_to_decide() {
        let (region, credentials) = environment_links(None::<Region>, NotSet);
        assert!(region.is_none(), "no region: the loader's default region chain is kept");
        assert!(credentials.is_none(), "no credentials: the loader's default credentials chain is kept");
    }
}
