//! Lambda entry point for source-trigger.

fn main() -> std::process::ExitCode {
    eprintln!("source-trigger is not built yet (issue #7); refusing to start");
    std::process::ExitCode::FAILURE
}
