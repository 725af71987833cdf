//! The [`Probe`] trait, the result of one check, and running a probe under its timeout.

use std::{future::Future, pin::Pin, time::Duration};

// tokio's `Instant` is the monotonic `std::time::Instant`, and follows tokio's paused clock in tests.
use tokio::time::Instant;

use serde::{Deserialize, Serialize};

use crate::{ProbeError, Redactor};

/// How long a probe may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a probe's check returns: an optional detail (such as a server version) or why it failed.
pub type ProbeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, ProbeError>> + Send + 'a>>;

/// One health check of one server.
///
/// Implement [`check`](Self::check) without worrying about time: [`run_probe`] (and the report runner)
/// measure the latency with a monotonic clock, enforce [`timeout`](Self::timeout) by dropping the check,
/// and pass every message through [`redactor`](Self::redactor). A check must therefore be cancel-safe
/// and must not leave work running when dropped.
pub trait Probe: Send + Sync {
    /// Short name, e.g. `postgres`.
    fn name(&self) -> &str;

    /// What is checked, without credentials, e.g. `localhost:5433`.
    fn target(&self) -> &str;

    /// The longest the check may take.
    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }

    /// Removes this probe's secrets from messages. The default masks URL passwords only.
    fn redactor(&self) -> &Redactor {
        static URL_PASSWORDS_ONLY: Redactor = Redactor::EMPTY;
        &URL_PASSWORDS_ONLY
    }

    /// Performs the check once.
    fn check(&self) -> ProbeFuture<'_>;
}

/// The result of one check, as it appears in a [`HealthReport`](crate::HealthReport).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    name: String,
    target: String,
    ok: bool,
    #[serde(rename = "latency_ms", with = "whole_millis")]
    latency: Duration,
    detail: Option<String>,
    error: Option<String>,
    remediation: Option<String>,
    #[serde(skip)]
    code: Option<&'static str>,
}

impl CheckResult {
    /// A passed check.
    #[must_use]
    pub fn passed(name: &str, target: &str, latency: Duration, detail: Option<String>) -> Self {
        Self {
            name: name.to_owned(),
            target: target.to_owned(),
            ok: true,
            latency,
            detail,
            error: None,
            remediation: None,
            code: None,
        }
    }

    /// A failed check.
    #[must_use]
    pub fn failed(name: &str, target: &str, latency: Duration, error: &ProbeError) -> Self {
        Self {
            name: name.to_owned(),
            target: target.to_owned(),
            ok: false,
            latency,
            detail: None,
            error: Some(error.to_string()),
            remediation: Some(error.remediation()),
            code: Some(error.code()),
        }
    }

    /// The probe's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What was checked (never with credentials).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Whether the check passed.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// How long the check took, from a monotonic clock.
    #[must_use]
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// Extra facts on success, such as the server version.
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Why the check failed.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// What to do about the failure.
    #[must_use]
    pub fn remediation(&self) -> Option<&str> {
        self.remediation.as_deref()
    }

    /// The failure's stable [`ProbeError::code`]. Not part of the JSON contract, so `None` after
    /// deserializing.
    #[must_use]
    pub fn code(&self) -> Option<&'static str> {
        self.code
    }

    fn redacted(mut self, redactor: &Redactor) -> Self {
        for field in [&mut self.target, &mut self.name] {
            *field = redactor.redact(field);
        }
        for field in [&mut self.detail, &mut self.error, &mut self.remediation]
            .into_iter()
            .flatten()
        {
            *field = redactor.redact(field);
        }
        self
    }
}

/// Runs one probe under its timeout: never takes (much) longer than [`Probe::timeout`], whatever the
/// server does.
pub async fn run_probe(probe: &dyn Probe) -> CheckResult {
    let timeout = probe.timeout();
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, probe.check()).await;
    let latency = started.elapsed();
    let result = match outcome {
        Ok(Ok(detail)) => CheckResult::passed(probe.name(), probe.target(), latency, detail),
        Ok(Err(error)) => CheckResult::failed(probe.name(), probe.target(), latency, &error),
        Err(_elapsed) => {
            let error = ProbeError::Timeout {
                service: probe.name().to_owned(),
                target: probe.target().to_owned(),
                after: timeout,
            };
            CheckResult::failed(probe.name(), probe.target(), latency, &error)
        }
    };
    result.redacted(probe.redactor())
}

/// A probe that cannot run because its settings are missing or invalid: it fails at once with that
/// error, so the report still shows the check and how to fix it.
#[derive(Debug, Clone)]
pub struct MisconfiguredProbe {
    name: String,
    target: String,
    error: ProbeError,
}

impl MisconfiguredProbe {
    /// A check named `name` of `target` (e.g. `(not configured)`) that fails with `error`.
    #[must_use]
    pub fn new(name: &str, target: &str, error: ProbeError) -> Self {
        Self {
            name: name.to_owned(),
            target: target.to_owned(),
            error,
        }
    }
}

impl Probe for MisconfiguredProbe {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn check(&self) -> ProbeFuture<'_> {
        let error = self.error.clone();
        Box::pin(async move { Err(error) })
    }
}

/// Serializes a duration as whole milliseconds (`latency_ms`), saturating.
mod whole_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleeper {
        sleep: Duration,
        timeout: Duration,
    }

    impl Probe for Sleeper {
        fn name(&self) -> &str {
            "sleeper"
        }
        fn target(&self) -> &str {
            "nowhere:1"
        }
        fn timeout(&self) -> Duration {
            self.timeout
        }
        fn check(&self) -> ProbeFuture<'_> {
            Box::pin(async move {
                tokio::time::sleep(self.sleep).await;
                Ok(Some("awake".to_owned()))
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_fails_at_its_timeout() {
        let probe = Sleeper {
            sleep: Duration::from_secs(3600),
            timeout: Duration::from_secs(2),
        };
        let result = run_probe(&probe).await;
        assert!(!result.ok());
        assert_eq!(result.code(), Some("TIMEOUT"));
        assert_eq!(result.latency(), Duration::from_secs(2));
        assert_eq!(result.error(), Some("no answer from sleeper within 2s"));
        assert!(result.remediation().unwrap().contains("nowhere:1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_check_passes_with_its_detail() {
        let probe = Sleeper {
            sleep: Duration::from_millis(40),
            timeout: DEFAULT_TIMEOUT,
        };
        let result = run_probe(&probe).await;
        assert!(result.ok());
        assert_eq!(result.detail(), Some("awake"));
        assert_eq!(result.latency(), Duration::from_millis(40));
        assert_eq!(result.error(), None);
        assert_eq!(result.remediation(), None);
    }

    #[tokio::test]
    async fn a_misconfigured_probe_fails_with_its_remediation() {
        let probe = MisconfiguredProbe::new(
            "step-ca",
            "(not configured)",
            ProbeError::MissingSetting {
                setting: "STEP_CA_URL".into(),
                remediation: "export STEP_CA_URL".into(),
            },
        );
        let result = run_probe(&probe).await;
        assert!(!result.ok());
        assert_eq!(result.code(), Some("CONFIG"));
        assert_eq!(result.error(), Some("STEP_CA_URL is not set"));
        assert_eq!(result.remediation(), Some("export STEP_CA_URL"));
    }

    #[tokio::test]
    async fn messages_pass_through_the_redactor() {
        let probe = MisconfiguredProbe::new(
            "postgres",
            "localhost:5433",
            ProbeError::Postgres {
                reason: "bad URL postgres://u:leaked@h/db".into(),
            },
        );
        let result = run_probe(&probe).await;
        assert_eq!(
            result.error(),
            Some("PostgreSQL error: bad URL postgres://u:***@h/db")
        );
    }
}
