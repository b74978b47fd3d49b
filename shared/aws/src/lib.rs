//! Shipgate's adapters: everything that touches AWS or the Lambda runtime.
//!
//! The domain crate (`shipgate-core`) decides; this crate fetches and reports.
//! Each module wraps one AWS service behind a small, typed surface whose errors
//! name the service and the operation that failed, so a function's log line or
//! failure reason always says where things went wrong.

pub mod artifacts;
pub mod clients;
pub mod codedeploy;
pub mod codepipeline;
pub mod deadline;
pub mod ecr;
pub mod ecs;
pub mod env;
pub mod error;
pub mod events;
pub mod exposure;
pub mod http;
pub mod inspector;
pub mod lambda;
pub mod policies;
pub mod probe;
pub mod s3;
pub mod secrets;
pub mod sns;
pub mod startup;
pub mod telemetry;

pub use aws_config::SdkConfig;
pub use clients::{Clients, config_loader, load_sdk_config};
pub use deadline::{Deadline, Interrupted};
pub use env::{ConfigError, optional, required};
pub use error::AwsError;
pub use lambda::{ErrorType, EventKind, InvalidEvent, decode, serve};
