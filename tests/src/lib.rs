//! The harness for Shipgate's integration tests: a real local AWS.
//!
//! [`Emulator::start`] launches `emulator/shipgate_moto.py` (moto server plus
//! Shipgate's extensions) on 127.0.0.1 with a port the OS picks, and stops it
//! when dropped. The emulator also exits by itself when this process dies,
//! because it watches its standard input. Tests talk to it only through the
//! real SDK clients, plus the extension's small control API to seed scan
//! results, arm faults and read back what was reported.

// A harness panics to fail the test that uses it; that is its error handling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod documented;
pub mod exposure;
pub mod local;
pub mod replay;

mod emulator;
mod fixtures;
mod fleet;
mod listener;
mod logs;
mod slow_http;

use std::path::PathBuf;

pub use emulator::{Call, Emulator};
pub use fixtures::*;
pub use fleet::*;
pub use listener::*;
pub use logs::LogCapture;
pub use slow_http::SlowHttp;

/// The six functions, by crate and binary name: the one list the replay,
/// the benchmark and the infra tests use. A test holds it equal to the
/// folders under `functions/`, which is the list the Makefile builds.
pub const FUNCTIONS: [&str; 6] =
    ["source-trigger", "policy-validator", "scan-gate", "release-gate", "deploy-hooks", "notifier"];

pub const REGION: &str = "us-east-1";
/// The emulator's administrator (`tests/emulator/iam_enforcement.py`).
pub const ADMIN_KEY_ID: &str = "AKIASHIPGATEADMIN001";
pub const ACCOUNT: &str = "123456789012";

/// The repository's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where cargo puts build output: `CARGO_TARGET_DIR`, else `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// The Python that has moto: `SHIPGATE_PYTHON`, else the project's `.venv`,
/// else `python3` from the PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHIPGATE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join(".venv/bin/python3");
    if venv.exists() { venv } else { PathBuf::from("python3") }
}
