//! notifier: turns pipeline, deployment and Shipgate events into one SNS message per outcome.
//!
//! Not built yet: issue #8 tracks it. Until then the binary refuses to start,
//! so a deployment of it can never pass anything by accident.
