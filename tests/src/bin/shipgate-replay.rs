//! `make demo`: Shipgate's workflow replayed end to end on this machine.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mut progress = std::io::stderr();
    let report = shipgate_tests::replay::run(&mut progress).await;
    print!("{}", shipgate_tests::replay::render(&report));
    if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
