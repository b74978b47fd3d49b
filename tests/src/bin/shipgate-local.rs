//! `make local`: the local AWS emulator and the six functions, running until
//! Ctrl-C, for trying any event by hand with `cargo lambda invoke`. What
//! the functions log shows here, each line prefixed with the function's name.

use shipgate_tests::local::{instructions, seed_samples};
use shipgate_tests::replay::start_for_terminal;

#[tokio::main]
async fn main() {
    let mut progress = std::io::stderr();
    let local = start_for_terminal(&mut progress).await;
    let samples = seed_samples(&local).await;
    println!("{}", instructions(&local, &samples));
    let _ = tokio::signal::ctrl_c().await;
    eprintln!("==> stopping the functions, the runtime emulator and the AWS emulator");
    drop(local);
}
