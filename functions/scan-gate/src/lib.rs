//! scan-gate: judges every completed ECR scan against the repository's policy and stores the verdict.
//!
//! Not built yet: issue #4 tracks it. Until then the binary refuses to start,
//! so a deployment of it can never pass anything by accident.
