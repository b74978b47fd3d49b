//! Lambda entry point: wiring only. The webhook secret is read once, here,
//! from Secrets Manager (its ARN in SHIPGATE_WEBHOOK_SECRET_ARN); it never
//! sits in a plain environment variable.

use lambda_runtime::{LambdaEvent, service_fn};
use source_trigger::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let mut startup = shipgate_aws::startup::Startup::begin();
    shipgate_aws::telemetry::init();
    startup.mark("tracing");
    let config = Config::from_env()?;
    startup.mark("config");
    let sdk = shipgate_aws::load_sdk_config().await;
    startup.mark("sdk");
    let secret = match &config.webhook_secret_arn {
        Some(arn) => Some(shipgate_aws::secrets::webhook_secret(&sdk, arn).await?),
        None => None,
    };
    startup.mark("secret");
    let deps = &Deps::new(&sdk, &config, secret);
    startup.mark("clients");
    startup.report();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        handle(deps, event.payload).await
    }))
    .await
}
