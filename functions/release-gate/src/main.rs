//! Lambda entry point for release-gate.

fn main() -> std::process::ExitCode {
    eprintln!("release-gate is not built yet (issue #5); refusing to start");
    std::process::ExitCode::FAILURE
}
