//! Lambda entry point: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use notifier::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shipgate_aws::telemetry::init();
    let config = Config::from_env()?;
    let sdk = shipgate_aws::load_sdk_config().await;
    let deps = &Deps::new(&sdk, &config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(deps, event.payload, chrono::Utc::now()).await
    }))
    .await
}
