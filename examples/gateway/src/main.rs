//! `mosaic`: the example Mosaic gateway.
//!
//! This binary only composes the workspace crates: configuration, the CLI and the HTTP server live here,
//! and everything another Rust service would want lives in a crate.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod ca;
mod cert;
mod config;
mod doctor;
mod keys;
mod seal;
// The federation flow (issue 7).
mod context;
mod data_dir;
mod demo;
mod enrollment;
mod federation_api;
mod federation_cli;
mod federation_error;
mod grant_ops;
mod local_tier_checks;
mod peer_client;
mod serve;
mod server;
mod server_identity;
mod tls;

/// Exit code for a usage or configuration error (clap uses the same for usage errors).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code when a check or an operation failed.
pub(crate) const EXIT_FAILURE: u8 = 1;

/// The Mosaic federation gateway.
#[derive(Debug, Parser)]
#[command(name = "mosaic", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (default: `mosaic.config.json` in the working directory).
    #[arg(long, global = true, env = "MOSAIC_CONFIG", value_name = "PATH")]
    config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run and check the gateway.
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Inspect federation certificates.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Seal and open values with `BETTER_AUTH_SECRET`.
    #[command(subcommand)]
    Seal(seal::SealCommand),
    /// Issue federation certificates from step-ca.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Federation grants (granting side) and peers (enrolling side).
    #[command(subcommand)]
    Federation(federation_cli::FederationCommand),
    /// Two gateways on loopback federate step by step: grant, token, enroll, allowed, revoke, refused.
    Demo(demo::DemoArgs),
    /// Rotate BETTER_AUTH_SECRET: count sealed values per key, re-seal them under the current key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Check the servers of the configured tier and print a report.
    Doctor(doctor::DoctorArgs),
    /// Serve the federation API over HTTPS (enrollment, and mTLS requests authorized per certificate).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Gateway(GatewayCommand::Doctor(args)) => doctor::run(cli.config.as_deref(), &args),
        Command::Cert(cmd) => cert::run(&cmd),
        Command::Seal(cmd) => seal::run(&cmd),
        Command::Ca(cmd) => ca::run(&cmd),
        Command::Gateway(GatewayCommand::Serve(args)) => serve::run(cli.config.as_deref(), &args),
        Command::Federation(cmd) => federation_cli::run(cli.config.as_deref(), &cmd),
        Command::Demo(args) => demo::run(cli.config.as_deref(), &args),
        Command::Keys(cmd) => keys::run(cli.config.as_deref(), &cmd),
    }
}
