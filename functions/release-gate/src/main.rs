//! Lambda entry point: wiring only.

use release_gate::{Config, Deps, handle};
use shipgate_aws::Deadline;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shipgate_aws::serve(
        Config::from_env,
        async |sdk, config| Ok(Deps::new(sdk, config)?),
        async |deps, config, event| {
            let deadline = Deadline::from_context(&event.context, config.report_margin);
            handle(deps, event.payload, deadline, chrono::Utc::now()).await
        },
    )
    .await
}
