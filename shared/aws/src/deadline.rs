//! The deadline guard: run a future so that the caller always gets control
//! back before Lambda kills the invocation, even after a panic.
//!
//! A CodePipeline job or CodeDeploy hook that is never reported hangs a
//! pipeline for up to an hour. Every gate and hook therefore runs its decision
//! inside [`Deadline::run`] and reports whatever comes out, including
//! [`Interrupted`].

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt;

/// Time kept back from the Lambda deadline for reporting the outcome.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(2_500);

/// Kept back from the report itself: what the runtime needs afterwards to
/// post the invocation's response before Lambda's hard deadline.
pub const RESPONSE_SLACK: Duration = Duration::from_millis(250);

/// Why a guarded future did not produce its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Interrupted {
    #[error("ran out of time: the invocation deadline (minus {margin_ms} ms to report) was reached")]
    DeadlineReached { margin_ms: u64 },
    #[error("internal error: {0}")]
    Panicked(String),
}

/// How long a piece of work may run, and when the invocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    budget: Duration,
    margin: Duration,
    /// Lambda's hard deadline, on tokio's clock (paused in tests).
    end: tokio::time::Instant,
}

impl Deadline {
    /// From the Lambda context's deadline (milliseconds since the epoch),
    /// keeping `margin` back for reporting.
    ///
    /// Lambda sends the deadline as milliseconds since the epoch. cargo-lambda's
    /// local runtime emulator sends the function's timeout instead (600000 for
    /// ten minutes); a value before 2001 cannot be an epoch deadline, so it is
    /// read as the time remaining.
    pub fn from_epoch_ms(deadline_ms: u64, margin: Duration) -> Self {
        const YEAR_2001_MS: u64 = 978_307_200_000;
        if deadline_ms < YEAR_2001_MS {
            return Self::from_remaining(Duration::from_millis(deadline_ms), margin);
        }
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        Self::from_remaining(Duration::from_millis(deadline_ms.saturating_sub(now_ms)), margin)
    }

    pub fn from_context(ctx: &lambda_runtime::Context, margin: Duration) -> Self {
        tracing::debug!(deadline_ms = ctx.deadline, "invocation deadline");
        Self::from_epoch_ms(ctx.deadline, margin)
    }

    /// `remaining` until the hard deadline, keeping `margin` back.
    pub fn from_remaining(remaining: Duration, margin: Duration) -> Self {
        Self {
            budget: remaining.saturating_sub(margin),
            margin,
            end: tokio::time::Instant::now() + remaining,
        }
    }

    /// The time the guarded work may take.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The time a report made now may take: what is left until the hard
    /// deadline, less [`RESPONSE_SLACK`]. After a decision that used its whole
    /// budget, that is the margin less the slack; reports pass it to the SDK
    /// as their operation timeout (every attempt and backoff within it).
    pub fn report_budget(&self) -> Duration {
        self.end.saturating_duration_since(tokio::time::Instant::now()).saturating_sub(RESPONSE_SLACK)
    }

    /// Runs `work` that follows a report (announcing it) within what is left
    /// of [`Deadline::report_budget`]: `None` when it did not finish in time,
    /// so the invocation still answers before the hard deadline.
    pub async fn after_report<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout(self.report_budget(), work).await.ok()
    }

    /// Runs `work`, returning its value, or why it stopped: the budget ran out
    /// (the future is dropped, cancelling its I/O) or it panicked.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        let guarded = AssertUnwindSafe(work).catch_unwind();
        match tokio::time::timeout(self.budget, guarded).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(panic)) => Err(Interrupted::Panicked(panic_message(panic.as_ref()))),
            Err(_) => Err(Interrupted::DeadlineReached { margin_ms: self.margin.as_millis() as u64 }),
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slow_work_is_cut_off_before_the_deadline() {
        let deadline = Deadline::from_remaining(Duration::from_secs(10), Duration::from_secs(2));
        let start = tokio::time::Instant::now();
        let result = deadline.run(tokio::time::sleep(Duration::from_secs(3600))).await;
        assert_eq!(result, Err(Interrupted::DeadlineReached { margin_ms: 2000 }));
        // With the paused clock, elapsed time is exactly the budget.
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn quick_work_returns_its_value() {
        let deadline = Deadline::from_remaining(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(deadline.run(async { 42 }).await, Ok(42));
    }

    #[tokio::test]
    async fn panic_becomes_an_interruption() {
        let deadline = Deadline::from_remaining(Duration::from_secs(10), Duration::from_secs(2));
        let result: Result<(), _> = deadline.run(async { panic!("boom in the decision") }).await;
        assert_eq!(result, Err(Interrupted::Panicked("boom in the decision".into())));
    }

    #[test]
    fn a_relative_deadline_from_the_local_emulator_is_read_as_remaining_time() {
        let deadline = Deadline::from_epoch_ms(600_000, Duration::from_secs(2));
        assert_eq!(deadline.budget(), Duration::from_secs(598));
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_budget_is_what_is_left_less_the_response_slack() {
        let deadline = Deadline::from_remaining(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(deadline.report_budget(), Duration::from_secs(10) - RESPONSE_SLACK);
        let _ = deadline.run(tokio::time::sleep(Duration::from_secs(3600))).await;
        assert_eq!(deadline.report_budget(), Duration::from_secs(2) - RESPONSE_SLACK);
        let late = deadline.after_report(tokio::time::sleep(Duration::from_secs(2))).await;
        assert_eq!(late, None);
        assert_eq!(deadline.report_budget(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn past_deadline_leaves_no_budget() {
        // An epoch deadline (2020) long gone.
        let deadline = Deadline::from_epoch_ms(1_600_000_000_000, Duration::from_secs(2));
        assert_eq!(deadline.budget(), Duration::ZERO);
        assert!(deadline.run(tokio::time::sleep(Duration::from_millis(1))).await.is_err());
    }
}
