//! Lambda entry point: wiring only.

use deploy_hooks::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};
use shipgate_aws::Deadline;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shipgate_aws::telemetry::init();
    let config = Config::from_env()?;
    let sdk = shipgate_aws::load_sdk_config().await;
    let deps = &Deps::new(&sdk, &config)?;
    let margin = config.report_margin;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = Deadline::from_context(&event.context, margin);
        handle(deps, event.payload, deadline).await
    }))
    .await
}
