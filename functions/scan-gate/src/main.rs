//! Lambda entry point for scan-gate.

fn main() -> std::process::ExitCode {
    eprintln!("scan-gate is not built yet (issue #4); refusing to start");
    std::process::ExitCode::FAILURE
}
