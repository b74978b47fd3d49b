//! Lambda entry point for notifier.

fn main() -> std::process::ExitCode {
    eprintln!("notifier is not built yet (issue #8); refusing to start");
    std::process::ExitCode::FAILURE
}
