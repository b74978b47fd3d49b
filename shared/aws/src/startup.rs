//! Where a function's cold start goes: `main` marks each phase, and one log
//! line reports them (`initialized`, with `phases` like
//! `tracing=… config=… sdk=… clients=…`, in milliseconds). The benchmark reads it.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Startup {
    last: Instant,
    began: Instant,
    phases: Vec<(&'static str, Duration)>,
}

impl Startup {
    pub fn begin() -> Self {
        let now = Instant::now();
        Self { last: now, began: now, phases: Vec::new() }
    }

    /// Ends the current phase, naming it.
    pub fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases.push((phase, now - self.last));
        self.last = now;
    }

    /// Logs the phases (at info: once per cold start, never per request).
    pub fn report(self) {
        let phases: Vec<String> =
            self.phases.iter().map(|(name, d)| format!("{name}={:.1}ms", d.as_secs_f64() * 1000.0)).collect();
        tracing::info!(init_ms = self.began.elapsed().as_secs_f64() * 1000.0, phases = %phases.join(" "), "initialized");
    }
}

/// What every function's `main` does before it serves, in order: tracing,
/// its configuration (an error names the variable), the AWS configuration
/// loaded once, and its dependencies built once; then the phases are logged.
pub async fn init<C, D, E>(
    config: impl FnOnce() -> Result<C, crate::ConfigError>,
    deps: impl AsyncFnOnce(&aws_config::SdkConfig, &C) -> Result<D, E>,
) -> Result<(C, D), lambda_runtime::Error>
where
    E: Into<lambda_runtime::Error>,
{
    let mut startup = Startup::begin();
    crate::telemetry::init();
    startup.mark("tracing");
    let config = config()?;
    startup.mark("config");
    let sdk = crate::load_sdk_config().await;
    startup.mark("sdk");
    let deps = deps(&sdk, &config).await.map_err(Into::into)?;
    startup.mark("clients");
    startup.report();
    Ok((config, deps))
}
