//! Assertions on what a test process logged.

use std::io::Write;

/// Captures every log line of this test process (nextest runs each test in
/// its own process, so the global subscriber is this test's alone).
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Installs the capture as the global subscriber at `filter` (`trace`
    /// catches the SDK's own logging too).
    pub fn install(filter: &str) -> Self {
        let capture = Self::default();
        shipgate_aws::telemetry::install(capture.clone(), filter, true);
        capture
    }

    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
