//! One way for every function to decode its event, fail, and serve.
//!
//! A function's `main` is one call to [`serve`]: its configuration, how to
//! build its dependencies once, and its handler. `serve` decodes the payload
//! into the handler's event type (a payload of another shape is an
//! `InvalidEvent` naming the field), runs the handler, and maps its error to
//! the stable Lambda error type the error declares ([`ErrorType`]).

use std::fmt;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Deserialize as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A payload that is not the event a function expects. The message names
/// the field or the shape that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {0}")]
pub struct InvalidEvent(pub String);

impl InvalidEvent {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Decodes a payload into an event type; the error names what was wrong.
pub fn decode<T: DeserializeOwned>(payload: serde_json::Value) -> Result<T, InvalidEvent> {
    serde_json::from_value(payload).map_err(|e| InvalidEvent(e.to_string()))
}

/// Who sent an EventBridge event and what it says it is (`source`,
/// `detail-type`), read before anything else: a function's event enum picks
/// the detail's type from it, so nothing downstream peeks into JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct EventKind {
    #[serde(default)]
    pub source: String,
    #[serde(default, rename = "detail-type")]
    pub detail_type: String,
}

impl EventKind {
    /// The kind of `payload`; empty strings where a field is missing.
    pub fn of(payload: &serde_json::Value) -> Self {
        Self::deserialize(payload).unwrap_or_default()
    }

    /// `(source, detail-type)`, to match on.
    pub fn pair(&self) -> (&str, &str) {
        (&self.source, &self.detail_type)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str| if s.is_empty() { "?".to_owned() } else { s.to_owned() };
        write!(f, "{} / {}", or(&self.source), or(&self.detail_type))
    }
}

/// The stable, machine-readable name of an error, as Lambda reports it in
/// `errorType` (alarms and dead-letter tooling match on it; the message is
/// for people).
pub trait ErrorType: fmt::Display {
    fn error_type(&self) -> &'static str;
}

impl ErrorType for InvalidEvent {
    fn error_type(&self) -> &'static str {
        "InvalidEvent"
    }
}

/// The Lambda error for a failed invocation.
pub fn diagnostic(error: &impl ErrorType) -> Diagnostic {
    Diagnostic { error_type: error.error_type().into(), error_message: error.to_string() }
}

/// A function's whole life: start-up (tracing, configuration, the SDK
/// configuration and the dependencies, built once; see [`crate::startup`]),
/// then one handler call per event, each event decoded into `T` first.
///
/// Every `main` runs it on tokio's current-thread runtime: Lambda hands an
/// execution environment one event at a time, and at the 256 MB the
/// templates give it the CPU share is a fraction of one core, so worker
/// threads would only cost their start (measured: `bench/README.md`) and a
/// cross-thread wake-up per I/O event. Calls made at once
/// (`tokio::join!`) still wait on the network together on one thread.
/// (aws-lambda-rust-runtime#985 weighs the same choice.)
pub async fn serve<C, D, T, R, Err>(
    config: impl FnOnce() -> Result<C, crate::ConfigError>,
    deps: impl AsyncFnOnce(&aws_config::SdkConfig, &C) -> Result<D, lambda_runtime::Error>,
    handler: impl AsyncFn(&D, &C, LambdaEvent<T>) -> Result<R, Err>,
) -> Result<(), lambda_runtime::Error>
where
    T: DeserializeOwned,
    R: Serialize,
    Err: ErrorType,
{
    let (config, deps) = crate::startup::init(config, deps).await?;
    let (config, deps, handler) = (&config, &deps, &handler);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let LambdaEvent { payload, context } = event;
        let payload = decode(payload).map_err(|e| diagnostic(&e))?;
        // Boxed: handlers are deep futures, and a small one here keeps the
        // runtime's own future (and the compiler's layout work) small.
        Box::pin(handler(deps, config, LambdaEvent { payload, context })).await.map_err(|e| diagnostic(&e))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Event {
        id: String,
    }

    #[test]
    fn a_payload_of_another_shape_names_the_field() {
        let err = decode::<Event>(serde_json::json!({"name": "x"})).unwrap_err();
        assert_eq!(err.to_string(), "invalid event: missing field `id`");
        let diagnostic = diagnostic(&err);
        assert_eq!(diagnostic.error_type, "InvalidEvent");
        assert_eq!(diagnostic.error_message, "invalid event: missing field `id`");
    }

    #[test]
    fn an_event_kind_reads_source_and_detail_type_and_names_what_is_missing() {
        let kind = EventKind::of(&serde_json::json!({"source": "aws.ecr", "detail-type": "ECR Image Scan"}));
        assert_eq!(kind.pair(), ("aws.ecr", "ECR Image Scan"));
        assert_eq!(EventKind::of(&serde_json::json!({"source": 7})).to_string(), "? / ?");
        assert_eq!(EventKind::of(&serde_json::json!({"source": "shipgate"})).to_string(), "shipgate / ?");
    }
}
