//! `mosaic keys status [--json]` and `mosaic keys rotate [--dry-run]`: the rotation of `BETTER_AUTH_SECRET`
//! that the setup guide deferred, done online.
//!
//! The procedure (the store's README has the guarantees):
//! 1. Put the new secret in `BETTER_AUTH_SECRET` and the old one in the file named by
//!    `MOSAIC_SEAL_PREVIOUS_SECRETS_FILE`, on every gateway, and restart them: they open values under
//!    either key and write under the new one.
//! 2. `mosaic keys rotate` re-seals every stored value under the new key, in batches; kill it and run it
//!    again at will.
//! 3. When `mosaic keys status` shows nothing under the old key and no legacy value, drop the old secret.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mosaic_store::{RotationOptions, RotationProgress, RotationReport, SealedValueStatus};

use crate::config::GatewayConfig;
use crate::context::{Gateway, GatewaySettings, keyring_from_env};
use crate::federation_error::FederationError;
use crate::{EXIT_FAILURE, EXIT_USAGE};

/// `mosaic keys …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// How many sealed values are under each key, and how many are still in the legacy format.
    Status(StatusArgs),
    /// Re-seal every sealed value under BETTER_AUTH_SECRET; the old secrets come from the file named by
    /// MOSAIC_SEAL_PREVIOUS_SECRETS_FILE. Safe to interrupt and to run again, while gateways run.
    Rotate(RotateArgs),
}

/// `mosaic keys status`
#[derive(Debug, clap::Args)]
pub(crate) struct StatusArgs {
    /// Print `{"keys": [{"key_id", "current", "values"}], "legacy_values"}` on stdout.
    #[arg(long)]
    json: bool,
    /// The data directory (the local tier's SQLite file).
    #[arg(long, env = "MOSAIC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// `mosaic keys rotate`
#[derive(Debug, clap::Args)]
pub(crate) struct RotateArgs {
    /// Count and check every value that would be re-sealed (each is opened), write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rows per batch (one transaction each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch_size: u32,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The data directory (the local tier's SQLite file).
    #[arg(long, env = "MOSAIC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Runs a `mosaic keys` command.
pub(crate) fn run(config: Option<&Path>, command: &KeysCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mosaic keys: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        match command {
            KeysCommand::Status(args) => status(config, args).await,
            KeysCommand::Rotate(args) => rotate(config, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mosaic keys: {error}");
            eprintln!("  code: {}", error.code());
            eprintln!("  to fix: {}", error.remediation());
            ExitCode::from(if error.is_usage() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            })
        }
    }
}

async fn open(config: Option<&Path>, data_dir: Option<&Path>) -> Result<Gateway, FederationError> {
    let config = GatewayConfig::load(config)?;
    let settings = GatewaySettings::from_config(&config, data_dir)?;
    Gateway::open(settings, Arc::new(keyring_from_env()?)).await
}

async fn status(config: Option<&Path>, args: &StatusArgs) -> Result<ExitCode, FederationError> {
    let gateway = open(config, args.data_dir.as_deref()).await?;
    let status = gateway.store.sealed_value_status().await;
    gateway.close().await;
    let status = status?;
    if args.json {
        let text =
            serde_json::to_string(&status).map_err(|e| FederationError::Internal(e.to_string()))?;
        println!("{text}");
    } else {
        print!("{}", status_text(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The human form of a status.
fn status_text(status: &SealedValueStatus) -> String {
    let mut text = format!("Sealed values: {}\n", status.total_values());
    for key in &status.keys {
        let role = if key.current {
            "current"
        } else if key.in_keyring {
            "previous"
        } else {
            "UNKNOWN (not in the keyring)"
        };
        text.push_str(&format!(
            "  key {}  {role:<28} {:>10}\n",
            key.key_id, key.values
        ));
    }
    text.push_str(&format!(
        "  legacy format (TypeScript gateway)  {:>24}\n",
        status.legacy_values
    ));
    if status.malformed_values > 0 {
        text.push_str(&format!(
            "  not sealed values at all            {:>24}\n",
            status.malformed_values
        ));
    }
    let pending = status.values_needing_reseal();
    if pending == 0 {
        text.push_str(
            "Every value is under the current key: previous secrets are no longer needed.\n",
        );
    } else {
        text.push_str(&format!(
            "{pending} value(s) need re-sealing: run `mosaic keys rotate`.\n"
        ));
    }
    text
}

async fn rotate(config: Option<&Path>, args: &RotateArgs) -> Result<ExitCode, FederationError> {
    let gateway = open(config, args.data_dir.as_deref()).await?;
    let result = run_rotation(&gateway, args).await;
    gateway.close().await;
    let (report, elapsed) = result?;
    if args.json {
        let mut value =
            serde_json::to_value(&report).map_err(|e| FederationError::Internal(e.to_string()))?;
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "seconds".to_owned(),
                serde_json::json!(elapsed.as_secs_f64()),
            );
        }
        println!("{value}");
    } else {
        println!("{}", report_text(&report, elapsed));
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_rotation(
    gateway: &Gateway,
    args: &RotateArgs,
) -> Result<(RotationReport, Duration), FederationError> {
    let before = gateway.store.sealed_value_status().await?;
    if !args.json {
        eprintln!(
            "{} of {} sealed value(s) to re-seal under key {}{}",
            before.values_needing_reseal(),
            before.total_values(),
            gateway.keyring.current_key_id(),
            if args.dry_run {
                " (dry run: nothing is written)"
            } else {
                ""
            }
        );
    }
    let bar = (std::io::stderr().is_terminal() && !args.json).then(|| {
        let bar = ProgressBar::new(before.total_values());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:8} [{bar:40}] {pos}/{len} rows, {per_sec}, {elapsed_precise} elapsed, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let options = RotationOptions::default()
        .batch_size(args.batch_size)
        .dry_run(args.dry_run);
    let started = Instant::now();
    let report = gateway
        .store
        .rotate_sealed_values(options, |progress: &RotationProgress| {
            if let Some(bar) = &bar {
                bar.set_length(progress.total);
                bar.set_position(progress.scanned);
                bar.set_message(format!("pass {}", progress.pass));
            }
        })
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok((report?, started.elapsed()))
}

/// The human summary of a rotation.
fn report_text(report: &RotationReport, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    #[allow(clippy::cast_precision_loss)] // a rate for people to read
    let rate = report.resealed as f64 / seconds;
    if report.dry_run {
        return format!(
            "Dry run: {} value(s) would be re-sealed, {} already under the current key; every one of them opened. \
             Nothing was written.",
            report.resealed, report.already_current
        );
    }
    let mut text = format!(
        "Re-sealed {} value(s) in {:.1} s ({rate:.0}/s), {} pass(es); {} were already under the current key.",
        report.resealed, seconds, report.passes, report.already_current
    );
    if report.stopped_early {
        text.push_str(" Stopped early: run `mosaic keys rotate` again to finish.");
    } else {
        text.push_str(
            " Every value is now under the current key: the previous secrets can be removed from \
             MOSAIC_SEAL_PREVIOUS_SECRETS_FILE.",
        );
    }
    text
}
