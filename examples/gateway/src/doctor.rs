//! `mosaic gateway doctor [--json] [--timeout SECONDS]`: checks the servers of the configured tier.
//!
//! - `local` checks no servers but its embedded parts: the SQLite store opens and migrates, and the
//!   local CA issues a certificate that verifies (see `local_tier_checks`);
//! - `standalone` checks PostgreSQL;
//! - `federated` checks PostgreSQL, Valkey, pgvector and step-ca.
//!
//! Exit 0 when every check passes, 1 when any fails, 2 for a usage or configuration error (printed on
//! stderr, with nothing on stdout). The probes, the report and its JSON contract live in mosaic-health.

use std::{ffi::OsString, io::IsTerminal as _, path::Path, process::ExitCode, time::Duration};

use mosaic_health::{
    HealthReport, MisconfiguredProbe, PgvectorProbe, PostgresProbe, Probe, ProbeError, StepCaProbe,
    ValkeyProbe,
};

use crate::config::{ConfigError, GatewayConfig, StepCaSettings, Tier};

/// Arguments of `mosaic gateway doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,

    /// How long each check may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,
}

fn parse_timeout(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    if !(0.05..=600.0).contains(&seconds) {
        return Err("the timeout must be between 0.05 and 600 seconds".to_owned());
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

/// What the doctor shows when a server's setting is missing.
const NOT_CONFIGURED: &str = "(not configured)";

pub(crate) fn run(config: Option<&Path>, args: &DoctorArgs) -> ExitCode {
    let config = match GatewayConfig::load(config) {
        Ok(config) => config,
        Err(error) => return config_error(&error),
    };
    let probes = probes_for(&config, args.timeout);
    let probes: Vec<&dyn Probe> = probes.iter().map(|p| &**p as &dyn Probe).collect();

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mosaic gateway doctor: cannot start the async runtime: {error}");
            return ExitCode::from(crate::EXIT_FAILURE);
        }
    };
    let file = config.file_display();
    let report = runtime.block_on(HealthReport::run(
        config.tier.as_str(),
        file.as_deref(),
        &probes,
    ));
    drop(runtime);

    if args.json {
        println!("{}", report.to_json());
    } else {
        let colour = use_colour(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR"),
        );
        print!("{}", report.to_human(colour));
        if report.checks().is_empty() {
            println!(
                "The {} tier uses no servers: nothing to check.",
                config.tier
            );
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_FAILURE)
    }
}

fn config_error(error: &ConfigError) -> ExitCode {
    eprintln!("mosaic: configuration error: {error}");
    eprintln!("    fix: {}", error.remediation());
    ExitCode::from(crate::EXIT_USAGE)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (to anything).
fn use_colour(stdout_is_terminal: bool, no_color: Option<OsString>) -> bool {
    stdout_is_terminal && no_color.is_none()
}

/// The checks of the tier, in the order they are reported.
fn probes_for(config: &GatewayConfig, timeout: Duration) -> Vec<Box<dyn Probe>> {
    let mut probes: Vec<Box<dyn Probe>> = Vec::new();
    if config.tier == Tier::Local {
        return crate::local_tier_checks::probes(timeout);
    }
    let database = config
        .database
        .as_ref()
        .ok_or_else(|| missing_database(config));
    probes.push(match &database {
        Ok(url) => built(
            "postgres",
            PostgresProbe::new(url).map(|p| p.with_timeout(timeout)),
        ),
        Err(error) => Box::new(MisconfiguredProbe::new(
            "postgres",
            NOT_CONFIGURED,
            error.clone(),
        )),
    });
    if config.tier == Tier::Standalone {
        return probes;
    }
    probes.push(match &config.queue {
        Some(url) => built(
            "valkey",
            ValkeyProbe::new(url).map(|p| p.with_timeout(timeout)),
        ),
        None => Box::new(MisconfiguredProbe::new(
            "valkey",
            NOT_CONFIGURED,
            missing_queue(config),
        )),
    });
    probes.push(match &database {
        Ok(url) => built(
            "pgvector",
            PgvectorProbe::new(url).map(|p| p.with_timeout(timeout)),
        ),
        Err(error) => Box::new(MisconfiguredProbe::new(
            "pgvector",
            NOT_CONFIGURED,
            error.clone(),
        )),
    });
    probes.push(step_ca_probe(&config.step_ca, timeout));
    probes
}

/// The probe, or a check that fails with why it could not be built.
fn built<P: Probe + 'static>(name: &str, probe: Result<P, ProbeError>) -> Box<dyn Probe> {
    match probe {
        Ok(probe) => Box::new(probe),
        Err(error) => Box::new(MisconfiguredProbe::new(name, NOT_CONFIGURED, error)),
    }
}

fn where_to_set(config: &GatewayConfig, key: &str) -> String {
    match config.file_display() {
        Some(file) => format!("or \"{key}\" in {file}"),
        None => format!("or \"{key}\" in {}", crate::config::DEFAULT_FILE),
    }
}

fn missing_database(config: &GatewayConfig) -> ProbeError {
    ProbeError::MissingSetting {
        setting: "DATABASE_URL".to_owned(),
        remediation: format!(
            "the {} tier needs PostgreSQL: set DATABASE_URL (e.g. postgresql://mosaic:mosaic@localhost:5433/mosaic) {}",
            config.tier,
            where_to_set(config, "database")
        ),
    }
}

fn missing_queue(config: &GatewayConfig) -> ProbeError {
    ProbeError::MissingSetting {
        setting: "REDIS_URL".to_owned(),
        remediation: format!(
            "the federated tier needs Valkey: set REDIS_URL (e.g. redis://localhost:6380) {}",
            where_to_set(config, "queue")
        ),
    }
}

fn step_ca_probe(settings: &StepCaSettings, timeout: Duration) -> Box<dyn Probe> {
    const HOW: &str = "with the native stack `eval \"$(infra/native/env)\"` sets it; with Docker see the setup \
                       guide, Step 2";
    let Some(url) = settings.url.as_deref() else {
        let error = ProbeError::MissingSetting {
            setting: "STEP_CA_URL".to_owned(),
            remediation: format!(
                "the federated tier needs step-ca: export STEP_CA_URL=https://localhost:9000 and \
                 STEP_CA_ROOT_CERT_PATH=<the CA's root_ca.crt> ({HOW})"
            ),
        };
        return Box::new(MisconfiguredProbe::new("step-ca", NOT_CONFIGURED, error));
    };
    let Some(root) = settings.root_cert_path.as_deref() else {
        let error = ProbeError::MissingSetting {
            setting: "STEP_CA_ROOT_CERT_PATH".to_owned(),
            remediation: format!(
                "export STEP_CA_ROOT_CERT_PATH=<path of the CA's root_ca.crt> ({HOW})"
            ),
        };
        return Box::new(MisconfiguredProbe::new("step-ca", NOT_CONFIGURED, error));
    };
    let probe = StepCaProbe::new(url, root)
        .map(|p| p.with_timeout(timeout))
        .and_then(|p| match settings.root_fingerprint.as_deref() {
            Some(pin) => p.with_fingerprint(pin),
            None => Ok(p),
        });
    built("step-ca", probe)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some(OsString::from("1"))));
        assert!(!use_colour(true, Some(OsString::new())));
    }

    #[test]
    fn timeouts_are_seconds_within_bounds() {
        assert_eq!(parse_timeout("5").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_timeout("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("abc").is_err());
        assert!(parse_timeout("1e9").is_err());
    }

    fn config(tier: Tier) -> GatewayConfig {
        GatewayConfig {
            tier,
            file: None,
            database: None,
            queue: None,
            step_ca: StepCaSettings::default(),
        }
    }

    #[test]
    fn each_tier_has_its_checks() {
        let names = |tier| {
            probes_for(&config(tier), Duration::from_secs(1))
                .iter()
                .map(|p| p.name().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Tier::Local), ["sqlite", "local-ca"]);
        assert_eq!(names(Tier::Standalone), ["postgres"]);
        assert_eq!(
            names(Tier::Federated),
            ["postgres", "valkey", "pgvector", "step-ca"]
        );
    }

    #[test]
    fn a_federated_tier_without_step_ca_url_fails_with_how_to_set_it() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let probe = step_ca_probe(&StepCaSettings::default(), Duration::from_secs(1));
        let result = runtime.block_on(mosaic_health::run_probe(probe.as_ref()));
        assert!(!result.ok());
        assert_eq!(result.code(), Some("CONFIG"));
        assert_eq!(result.error(), Some("STEP_CA_URL is not set"));
        assert!(
            result
                .remediation()
                .unwrap()
                .contains("export STEP_CA_URL=https://localhost:9000")
        );
        let settings = StepCaSettings {
            url: Some("https://localhost:9000".into()),
            ..StepCaSettings::default()
        };
        let result = runtime.block_on(mosaic_health::run_probe(
            step_ca_probe(&settings, Duration::from_secs(1)).as_ref(),
        ));
        assert_eq!(result.error(), Some("STEP_CA_ROOT_CERT_PATH is not set"));
        let settings = StepCaSettings {
            url: Some("https://localhost:9000".into()),
            root_cert_path: Some("/tmp/root.crt".into()),
            root_fingerprint: Some("not-hex".into()),
        };
        let result = runtime.block_on(mosaic_health::run_probe(
            step_ca_probe(&settings, Duration::from_secs(1)).as_ref(),
        ));
        assert!(
            result.error().unwrap().contains("STEP_CA_ROOT_FINGERPRINT"),
            "{result:?}"
        );
    }
}
