//! The Lambda runtime emulator: cargo-lambda's Runtime API on 127.0.0.1,
//! and invoking a function through it.

use super::*;

/// The Lambda runtime emulator: `cargo lambda watch --only-lambda-apis` on
/// 127.0.0.1, serving the Runtime API to each function binary, which runs as
/// Lambda runs it, in its own process with its own environment: its role's
/// credentials (from the emulator, per `infra/template.yaml`) and the
/// configuration the template gives it. Everything stops on drop.
#[derive(Debug)]
pub struct RuntimeEmulator {
    watch: Child,
    functions: Vec<Child>,
    pub port: u16,
}

impl RuntimeEmulator {
    /// Starts the Runtime API, then each function with its environment from
    /// the template, `env` and its own access key; their output goes where
    /// `logs` says.
    pub fn start(fleet: &Fleet, env: &BTreeMap<String, String>, logs: FunctionLogs<'_>) -> Self {
        let log = || match logs {
            FunctionLogs::File(path) => append_to(path),
            FunctionLogs::Replay | FunctionLogs::Terminal => replay_log(),
        };
        use std::os::unix::process::CommandExt;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let watch = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "--quiet",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .current_dir(crate::workspace_root())
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start cargo lambda watch: {e}; `make setup` installs cargo-lambda")
            });
        let mut emulator = Self { watch, functions: Vec::new(), port };
        let ready = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                ready.elapsed() < Duration::from_secs(120),
                "cargo lambda watch did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for function in FUNCTIONS {
            let deployed = fleet.deployed(function);
            let credentials = &deployed.credentials;
            let memory = deployed.memory_size.unwrap_or(128).to_string();
            // The template's environment, then the emulator's endpoint and
            // what the caller adds (log levels).
            let mut child = Command::new(crate::target_dir().join("debug").join(function))
                .envs(&deployed.environment)
                .envs(env)
                .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
                .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
                .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{function}"))
                .env("AWS_LAMBDA_FUNCTION_NAME", function)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory)
                .stdin(Stdio::null())
                .stdout(if logs == FunctionLogs::Terminal { Stdio::piped() } else { log() })
                .stderr(if logs == FunctionLogs::Terminal { Stdio::piped() } else { log() })
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {function}: {e}; it is built by `cargo build --bin {function}`")
                });
            if logs == FunctionLogs::Terminal {
                prefix_lines(function, child.stdout.take());
                prefix_lines(function, child.stderr.take());
            }
            emulator.functions.push(child);
        }
        emulator
    }
}

/// Where the functions' output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionLogs<'a> {
    /// `SHIPGATE_REPLAY_LOG`, else nowhere (the replay's own report says
    /// what happened).
    Replay,
    /// Appended to a file.
    File(&'a std::path::Path),
    /// The terminal, each line prefixed with the function's name, as `sam
    /// local` and `cargo lambda watch` show it (`make local`).
    Terminal,
}

/// Copies each line `from` gives to stderr as `function | line`.
fn prefix_lines(function: &'static str, from: Option<impl std::io::Read + Send + 'static>) {
    use std::io::BufRead as _;
    let Some(from) = from else { return };
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("{function:>16} | {line}");
        }
    });
}

impl Drop for RuntimeEmulator {
    fn drop(&mut self) {
        for child in &mut self.functions {
            let _ = child.kill();
            let _ = child.wait();
        }
        let group = format!("-{}", self.watch.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.watch.wait();
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
    }
}

/// Where the runtime emulator's output goes by default: `SHIPGATE_REPLAY_LOG`, else nowhere.
pub(super) fn replay_log() -> Stdio {
    std::env::var_os("SHIPGATE_REPLAY_LOG").map_or_else(Stdio::null, |path| append_to(path.as_ref()))
}

pub(super) fn append_to(path: &std::path::Path) -> Stdio {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// The cargo that has the `lambda` subcommand: `.venv/bin` first.
pub(super) fn cargo_lambda() -> std::path::PathBuf {
    let venv = crate::workspace_root().join(".venv/bin/cargo-lambda");
    if venv.exists() { venv } else { "cargo-lambda".into() }
}

/// Invokes a function through the runtime emulator, as Lambda's Invoke API.
pub(super) async fn invoke(port: u16, function: &str, payload: &Value) -> Value {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request =
        hyper::Request::post(format!("http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .unwrap();
    let response = client.request(request).await.unwrap_or_else(|e| panic!("invoking {function}: {e}"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&body)}))
}
