//! Shipgate's domain core.
//!
//! Architecture invariant: this crate knows nothing about the AWS SDK, the
//! Lambda runtime, the network or the file system. It takes documents and a
//! `now`, and returns decisions; everything it needs from the world comes in
//! as arguments.

#[macro_use]
mod rule_ids;

pub mod digest;
pub mod events;
pub mod exposure;
pub mod findings;
pub mod gate;
pub mod glob;
pub mod hooks;
pub mod image;
pub mod limits;
pub mod lkg;
pub mod manifest;
pub mod notify;
pub mod platforms;
pub mod policy;
pub mod routes;
pub mod rules;
pub mod scan;
pub mod taskdef;
pub mod triggers;
pub mod user;
pub mod validate;
pub mod verdict;
pub mod webhook;
pub mod yaml;
pub mod yaml_check;
