//! `mosaic cert inspect`.

use std::{path::PathBuf, process::ExitCode};

/// `mosaic cert ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CertCommand {
    /// Print the federation identity and validity of a certificate (PEM or DER).
    Inspect {
        /// The certificate file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(_cmd: &CertCommand) -> ExitCode {
    eprintln!("mosaic cert inspect: not built yet");
    ExitCode::from(crate::EXIT_USAGE)
}
