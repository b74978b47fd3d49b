//! Lambda entry point: wiring only.

use scan_gate::{Config, Deps, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shipgate_aws::serve(
        Config::from_env,
        async |sdk, config| Ok(Deps::new(sdk, config)),
        async |deps, _, event| handle(deps, event.payload, chrono::Utc::now()).await,
    )
    .await
}
