//! release-gate: is the CodePipeline invoke action that passes a release only when policy says so.
//!
//! Not built yet: issue #5 tracks it. Until then the binary refuses to start,
//! so a deployment of it can never pass anything by accident.
