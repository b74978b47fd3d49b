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
    millis_from(name, default_ms, 0, |n| std::env::var(n).ok())
}

/// A duration in milliseconds that must be positive (a report margin of 0
/// would leave no time to report).
pub fn positive_millis(name: &'static str, default_ms: u64) -> Result<std::time::Duration, ConfigError> {
    millis_from(name, default_ms, 1, |n| std::env::var(n).ok())
}

fn millis_from(
    name: &'static str,
    default_ms: u64,
    min_ms: u64,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<std::time::Duration, ConfigError> {
    match lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        None => Ok(std::time::Duration::from_millis(default_ms)),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms >= min_ms => Ok(std::time::Duration::from_millis(ms)),
            Ok(ms) => {
                Err(ConfigError::Invalid { name, reason: format!("must be at least {min_ms} ms, got {ms}") })
            }
            Err(_) => Err(ConfigError::Invalid { name, reason: format!("expected milliseconds, got {v:?}") }),
        },
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
    fn a_zero_margin_is_refused_naming_the_variable() {
        let zero = millis_from("SHIPGATE_REPORT_MARGIN_MS", 2500, 1, |_| Some(" 0 ".into())).unwrap_err();
        assert_eq!(
            zero.to_string(),
            "environment variable SHIPGATE_REPORT_MARGIN_MS is invalid: must be at least 1 ms, got 0"
        );
        let set = millis_from("X", 2500, 1, |_| Some("300".into())).unwrap();
        assert_eq!(set, std::time::Duration::from_millis(300));
        assert_eq!(millis_from("X", 2500, 1, |_| None).unwrap(), std::time::Duration::from_millis(2500));
    }

    #[test]
    fn complete_environment_reads() {
        let cfg = FleetConfig::from_lookup(|n| Some(format!("{n}-value"))).unwrap();
        assert_eq!(cfg.config_bucket, "SHIPGATE_CONFIG_BUCKET-value");
        assert_eq!(cfg.event_bus, "SHIPGATE_EVENT_BUS-value");
    }
}
