//! Lambda entry point: wiring only. The webhook secret is read from Secrets
//! Manager (its ARN in SHIPGATE_WEBHOOK_SECRET_ARN) on the first webhook and
//! kept; it never sits in a plain environment variable.

use source_trigger::{Config, Deps, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shipgate_aws::serve(
        Config::from_env,
        async |sdk, config| Ok(Deps::with_secret(sdk, config)),
        async |deps, _, event| handle(deps, event.payload).await,
    )
    .await
}
