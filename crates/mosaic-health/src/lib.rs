#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod postgres;
mod probe;
mod redact;
mod report;
mod step_ca;
mod valkey;

pub use error::ProbeError;
pub use postgres::{PgvectorProbe, PostgresProbe};
pub use probe::{CheckResult, DEFAULT_TIMEOUT, MisconfiguredProbe, Probe, ProbeFuture, run_probe};
pub use redact::{REDACTED, Redactor, ServerUrl, redact_url};
pub use report::{HealthReport, run_probes};
pub use step_ca::StepCaProbe;
pub use valkey::ValkeyProbe;
