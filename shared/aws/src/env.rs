//! Reading a function's configuration from its environment.
//!
//! Each function has a `Config::from_env()` built from these helpers; a missing
//! or empty variable is an error that names the variable, never a panic.

/// A configuration problem, naming the variable concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is required but not set")]
    Missing { name: &'static str },
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A required, non-empty variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    required_from(name, |n| std::env::var(n).ok())
}

/// An optional variable: unset and empty are both `None`.
/// An optional variable: unset and empty are both `None`; surrounding
/// whitespace is not part of the value (`"prod "` is `prod`).
pub fn optional(name: &'static str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A duration in milliseconds, with a default when unset.
pub fn millis(name: &'static str, default_ms: u64) -> Result<std::time::Duration, ConfigError> {
    match optional(name) {
        None => Ok(std::time::Duration::from_millis(default_ms)),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| ConfigError::Invalid { name, reason: format!("expected milliseconds, got {v:?}") }),
    }
}

/// `required` over any lookup, so it can be tested without touching the
/// process environment (which is shared between threads).
pub fn required_from(
    name: &'static str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    lookup(name).filter(|v| !v.trim().is_empty()).ok_or(ConfigError::Missing { name })
}

/// Settings every Shipgate function shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    /// The bucket holding policies, routes, verdicts and decisions.
    pub config_bucket: String,
    /// The EventBridge bus that carries `shipgate` events.
    pub event_bus: String,
}

impl FleetConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|n| std::env::var(n).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            config_bucket: required_from("SHIPGATE_CONFIG_BUCKET", &lookup)?,
            event_bus: required_from("SHIPGATE_EVENT_BUS", &lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_variable_names_itself() {
        let err =
            FleetConfig::from_lookup(|n| (n == "SHIPGATE_EVENT_BUS").then(|| "bus".into())).unwrap_err();
        assert_eq!(err, ConfigError::Missing { name: "SHIPGATE_CONFIG_BUCKET" });
        assert_eq!(err.to_string(), "environment variable SHIPGATE_CONFIG_BUCKET is required but not set");
    }

    #[test]
    fn empty_variable_counts_as_missing() {
        let err = FleetConfig::from_lookup(|_| Some("  ".into())).unwrap_err();
        assert_eq!(err, ConfigError::Missing { name: "SHIPGATE_CONFIG_BUCKET" });
    }

    #[test]
    fn complete_environment_reads() {
        let cfg = FleetConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(cfg.config_bucket, "SHIPGATE_CONFIG_BUCKET-value");
        assert_eq!(cfg.event_bus, "SHIPGATE_EVENT_BUS-value");
    }
}
