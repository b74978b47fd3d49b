//! Lambda entry point: wiring only.

use deploy_hooks::{Config, Deps, handle};
use lambda_runtime::{LambdaEvent, service_fn};
use shipgate_aws::Deadline;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (config, deps) =
        shipgate_aws::startup::init(Config::from_env, async |sdk, config| Deps::new(sdk, config)).await?;
    let (deps, margin) = (&deps, config.report_margin);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = Deadline::from_context(&event.context, margin);
        handle(deps, event.payload, deadline).await
    }))
    .await
}
