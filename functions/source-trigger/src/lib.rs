//! source-trigger: starts the right pipeline on a push (CodeCommit events, GitHub webhooks).
//!
//! Not built yet: issue #7 tracks it. Until then the binary refuses to start,
//! so a deployment of it can never pass anything by accident.
