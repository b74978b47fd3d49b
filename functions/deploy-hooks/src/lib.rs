//! deploy-hooks: checks a blue/green deployment in its CodeDeploy (or ECS native) lifecycle hooks.
//!
//! Not built yet: issue #6 tracks it. Until then the binary refuses to start,
//! so a deployment of it can never pass anything by accident.
