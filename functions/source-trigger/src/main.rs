//! Lambda entry point: wiring only. The webhook secret is read once, here,
//! from Secrets Manager (its ARN in SHIPGATE_WEBHOOK_SECRET_ARN); it never
//! sits in a plain environment variable.

use lambda_runtime::{LambdaEvent, service_fn};
use source_trigger::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (_, deps) = shipgate_aws::startup::init(Config::from_env, async |sdk, config| {
        let secret = match &config.webhook_secret_arn {
            Some(arn) => Some(shipgate_aws::secrets::webhook_secret(sdk, arn).await?),
            None => None,
        };
        Ok::<_, shipgate_aws::AwsError>(Deps::new(sdk, config, secret))
    })
    .await?;
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(deps, event.payload).await
    }))
    .await
}
