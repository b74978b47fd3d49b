//! Lambda entry point for deploy-hooks.

fn main() -> std::process::ExitCode {
    eprintln!("deploy-hooks is not built yet (issue #6); refusing to start");
    std::process::ExitCode::FAILURE
}
