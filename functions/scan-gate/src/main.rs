//! Lambda entry point: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use scan_gate::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let mut startup = shipgate_aws::startup::Startup::begin();
    shipgate_aws::telemetry::init();
    startup.mark("tracing");
    let config = Config::from_env()?;
    startup.mark("config");
    let sdk = shipgate_aws::load_sdk_config().await;
    startup.mark("sdk");
    let deps = &Deps::new(&sdk, &config);
    startup.mark("clients");
    startup.report();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(deps, event.payload, chrono::Utc::now()).await
    }))
    .await
}
