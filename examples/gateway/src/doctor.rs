//! `mosaic gateway doctor`.

use std::{path::Path, process::ExitCode};

/// Arguments of `mosaic gateway doctor`.
#[derive(Debug, clap::Args)]
pub(crate) struct DoctorArgs {
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn run(_config: Option<&Path>, _args: &DoctorArgs) -> ExitCode {
    eprintln!("mosaic gateway doctor: not built yet");
    ExitCode::from(crate::EXIT_USAGE)
}
