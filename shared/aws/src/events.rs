//! Emitting Shipgate's own events to its EventBridge bus (source `shipgate`).

use shipgate_core::events::{ENTRY_LIMIT, fit_detail};
use tracing::warn;

use crate::error::{AwsError, aws_err};

pub const SOURCE: &str = "shipgate";

#[derive(Debug, Clone)]
pub struct Bus {
    client: aws_sdk_eventbridge::Client,
    name: String,
}

impl Bus {
    pub fn new(client: aws_sdk_eventbridge::Client, name: impl Into<String>) -> Self {
        Self { client, name: name.into() }
    }

    /// The bus `name`, through a client of its own built from `sdk`.
    pub fn connect(sdk: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(sdk), name)
    }

    /// Puts one event; `detail` is serialised to JSON, cut to EventBridge's
    /// entry limit when it is over (`events::fit_detail`: the biggest list
    /// keeps its first entries, and `truncated` says what went). A rejected
    /// entry is an error, not a silent loss.
    pub async fn put<T: serde::Serialize>(
        &self,
        detail_type: &str,
        resources: &[String],
        detail: &T,
    ) -> Result<(), AwsError> {
        const OP: &str = "PutEvents";
        let serialising = |e: serde_json::Error| {
            AwsError::new("EventBridge", OP, format!("serialising {detail_type}: {e}"))
        };
        let mut text = serde_json::to_string(detail).map_err(serialising)?;
        let overhead = SOURCE.len() + detail_type.len() + resources.iter().map(String::len).sum::<usize>();
        // "Less than" the limit: one byte under it at most.
        let budget = ENTRY_LIMIT.saturating_sub(overhead + 1);
        if text.len() > budget {
            let value = serde_json::to_value(detail).map_err(serialising)?;
            let fitted = fit_detail(value, budget).ok_or_else(|| {
                AwsError::new(
                    "EventBridge",
                    OP,
                    format!("{detail_type} cannot be cut to EventBridge's entry limit"),
                )
            })?;
            warn!(%detail_type, bytes = text.len(), truncated = %fitted["truncated"], "event detail cut to fit");
            text = serde_json::to_string(&fitted).map_err(serialising)?;
        }
        let detail = text;
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(SOURCE)
            .detail_type(detail_type)
            .set_resources(Some(resources.to_vec()))
            .detail(detail)
            .build();
        let output =
            self.client.put_events().entries(entry).send().await.map_err(aws_err("EventBridge", OP))?;
        if output.failed_entry_count() > 0 {
            let reason = output
                .entries()
                .iter()
                .find_map(|e| e.error_message().map(str::to_owned))
                .unwrap_or_else(|| "entry rejected".to_owned());
            return Err(AwsError { transient: true, ..AwsError::new("EventBridge", OP, reason) });
        }
        Ok(())
    }
}
