//! Tracing set-up for a function.
//!
//! Lambda's advanced logging controls say what they want through
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and `AWS_LAMBDA_LOG_LEVEL`; we
//! follow them, falling back to `RUST_LOG`, then `info`. Lambda stamps every
//! line itself, so we do not.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The AWS SDK's and the Lambda runtime's own crates log at most at `info`,
/// whatever level is asked for: at `trace` the SDK prints its runtime
/// components, credentials' access key ids among them, and request details,
/// and `lambda_runtime` prints every raw event ("raw JSON event received from
/// Lambda"): a Gate job's artifact credentials, a webhook's signature.
/// Shipgate logs no credentials.
const CAP: &str = "aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http_client=info,\
    aws_sigv4=info,aws_runtime=info,aws_config=info,aws_credential_types=info,hyper=info,hyper_util=info,rustls=info,\
    lambda_runtime=info,lambda_runtime_api_client=info,tower=info";

/// Installs the global subscriber writing to standard output.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// Installs the global subscriber with another writer, with the level and
/// format from the environment.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    install(writer, &level, json);
}

/// Installs the global subscriber with an explicit filter and format (tests
/// capture every log line this way, down to `trace`, to prove that secrets
/// never reach them). A second call is a no-op.
pub fn install<W>(writer: W, filter: &str, json: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let requested = EnvFilter::try_new(filter).map(|_| filter).unwrap_or("info");
    let filter = EnvFilter::new(format!("{requested},{CAP}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .without_time()
        .with_ansi(false);
    // try_init fails only when a subscriber is already installed.
    let _ = if json {
        builder.json().with_current_span(false).flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
