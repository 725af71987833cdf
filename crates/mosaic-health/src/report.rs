//! Running probes concurrently and reporting the results, for people and for machines.

use std::fmt::Write as _;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};

use crate::{CheckResult, Probe, run_probe};

/// Runs every probe at the same time and returns their results in the order given.
///
/// The whole run takes about as long as the slowest probe (each is bounded by its own timeout), not
/// the sum.
pub async fn run_probes(probes: &[&dyn Probe]) -> Vec<CheckResult> {
    join_all(probes.iter().map(|probe| run_probe(*probe))).await
}

/// The outcome of a set of checks: the JSON contract of `mosaic gateway doctor --json`.
///
/// Serializes to exactly `{"tier", "config", "ok", "checks": [...]}`; see the crate documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    tier: String,
    config: Option<String>,
    ok: bool,
    checks: Vec<CheckResult>,
}

impl HealthReport {
    /// A report of `checks` for `tier`, configured from the file `config` (if any). It is ok when every
    /// check passed (so a report without checks is ok).
    #[must_use]
    pub fn new(tier: &str, config: Option<&str>, checks: Vec<CheckResult>) -> Self {
        Self {
            tier: tier.to_owned(),
            config: config.map(str::to_owned),
            ok: checks.iter().all(CheckResult::ok),
            checks,
        }
    }

    /// Runs `probes` concurrently (see [`run_probes`]) and reports them.
    pub async fn run(tier: &str, config: Option<&str>, probes: &[&dyn Probe]) -> Self {
        Self::new(tier, config, run_probes(probes).await)
    }

    /// The tier that was checked, e.g. `federated`.
    #[must_use]
    pub fn tier(&self) -> &str {
        &self.tier
    }

    /// The configuration file the settings came from, if any.
    #[must_use]
    pub fn config(&self) -> Option<&str> {
        self.config.as_deref()
    }

    /// Whether every check passed.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// The checks, in the order they were given.
    #[must_use]
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// The report as one line of JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        // Serializing plain strings, booleans and integers into a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The report for people, one check a line:
    ///
    /// ```text
    /// Tier: federated  Config: mosaic.config.json
    /// ✓ postgres  localhost:5433  (42ms)  PostgreSQL 17.9
    /// ✗ valkey    localhost:6380  (1ms)  cannot connect to Valkey at localhost:6380: ...
    ///     fix: start Valkey at localhost:6380 ...
    /// ```
    ///
    /// Names are aligned; the detail (on success) or the error (on failure) follows the latency, and a
    /// failure's remediation follows on an indented line. With `colour`, marks and labels get ANSI colours
    /// (the caller decides: only on a terminal, never with `NO_COLOR`).
    #[must_use]
    pub fn to_human(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut out = String::new();
        let config = self.config.as_deref().unwrap_or("(none)");
        // Writing to a String cannot fail.
        let _ = writeln!(out, "Tier: {}  Config: {config}", self.tier);
        let width = self
            .checks
            .iter()
            .map(|c| c.name().chars().count())
            .max()
            .unwrap_or(0);
        for check in &self.checks {
            let mark = if check.ok() {
                paint("32", "✓")
            } else {
                paint("31", "✗")
            };
            let name = format!("{:width$}", check.name());
            let _ = write!(
                out,
                "{mark} {name}  {}  ({}ms)",
                check.target(),
                check.latency().as_millis()
            );
            if let Some(detail) = check.detail() {
                let _ = write!(out, "  {detail}");
            }
            if let Some(error) = check.error() {
                let _ = write!(out, "  {}", paint("31", error));
            }
            out.push('\n');
            if let Some(remediation) = check.remediation() {
                let _ = writeln!(out, "    {} {remediation}", paint("33", "fix:"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ProbeError;

    fn sample() -> HealthReport {
        let checks = vec![
            CheckResult::passed(
                "postgres",
                "localhost:5433",
                Duration::from_millis(42),
                None,
            ),
            CheckResult::passed("valkey", "localhost:6380", Duration::from_millis(8), None),
            CheckResult::passed(
                "pgvector",
                "(embedded)",
                Duration::from_micros(15_900),
                None,
            ),
        ];
        HealthReport::new("federated", Some("mosaic.config.json"), checks)
    }

    #[test]
    fn the_human_report_matches_the_guide() {
        assert_eq!(
            sample().to_human(false),
            "Tier: federated  Config: mosaic.config.json\n\
             ✓ postgres  localhost:5433  (42ms)\n\
             ✓ valkey    localhost:6380  (8ms)\n\
             ✓ pgvector  (embedded)  (15ms)\n"
        );
    }

    #[test]
    fn a_failure_shows_the_error_and_an_indented_remediation() {
        let error = ProbeError::ValkeyUnreachable {
            target: "localhost:6380".into(),
            reason: "refused".into(),
        };
        let checks = vec![CheckResult::failed(
            "valkey",
            "localhost:6380",
            Duration::from_millis(1),
            &error,
        )];
        let report = HealthReport::new("federated", None, checks);
        assert!(!report.ok());
        let human = report.to_human(false);
        let mut lines = human.lines();
        assert_eq!(lines.next(), Some("Tier: federated  Config: (none)"));
        assert_eq!(
            lines.next(),
            Some(
                "✗ valkey  localhost:6380  (1ms)  cannot connect to Valkey at localhost:6380: refused"
            )
        );
        let fix = lines.next().unwrap();
        assert!(
            fix.starts_with("    fix: start Valkey at localhost:6380"),
            "{fix}"
        );
        assert_eq!(lines.next(), None);
        assert!(!human.contains('\x1b'));
        let coloured = report.to_human(true);
        assert!(coloured.contains("\x1b[31m✗\x1b[0m"), "{coloured}");
    }

    #[test]
    fn the_json_has_exactly_the_contracted_shape() {
        let error = ProbeError::PgvectorUnavailable;
        let mut checks = sample().checks;
        checks.push(CheckResult::failed(
            "pgvector",
            "(embedded)",
            Duration::from_millis(3),
            &error,
        ));
        let report = HealthReport::new("federated", None, checks);
        let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        let top: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        assert_eq!(top, ["checks", "config", "ok", "tier"]);
        assert_eq!(value["tier"], "federated");
        assert_eq!(value["config"], serde_json::Value::Null);
        assert_eq!(value["ok"], false);
        let first = value["checks"][0].as_object().unwrap();
        let keys: Vec<_> = first.keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "detail",
                "error",
                "latency_ms",
                "name",
                "ok",
                "remediation",
                "target"
            ]
        );
        assert_eq!(value["checks"][2]["latency_ms"], 15);
        assert_eq!(value["checks"][3]["ok"], false);
        assert_eq!(
            value["checks"][3]["error"],
            "the vector extension is not available on this PostgreSQL server"
        );
        assert!(
            value["checks"][3]["remediation"]
                .as_str()
                .unwrap()
                .contains("pgvector")
        );
        let back: HealthReport = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(back.checks().len(), 4);
        assert!(!back.ok());
    }

    #[test]
    fn a_report_without_checks_is_ok() {
        let report = HealthReport::new("local", None, Vec::new());
        assert!(report.ok());
        assert_eq!(
            report.to_json(),
            r#"{"tier":"local","config":null,"ok":true,"checks":[]}"#
        );
    }
}
