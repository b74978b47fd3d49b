//! Lambda entry point: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use policy_validator::{Config, Deps, handle};
use shipgate_aws::ConfigError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (_, deps) = shipgate_aws::startup::init(Config::from_env, async |sdk, config| {
        Ok::<_, ConfigError>(Deps::new(sdk, config))
    })
    .await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(deps, event.payload, chrono::Utc::now()).await
    }))
    .await
}
