//! Tracing set-up for a function.
//!
//! Lambda's advanced logging controls say what they want through
//! `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and `AWS_LAMBDA_LOG_LEVEL`; we
//! follow them, falling back to `RUST_LOG`, then `info`. Lambda stamps every
//! line itself, so we do not.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the global subscriber writing to standard output.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// Installs the global subscriber with another writer (tests capture logs
/// this way to prove that secrets never reach them). A second call is a no-op.
pub fn init_with_writer<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_owned());
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
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
