//! `mosaic seal seal` and `mosaic seal open`.

use std::process::ExitCode;

/// `mosaic seal ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SealCommand {
    /// Seal stdin to stdout under `BETTER_AUTH_SECRET`.
    Seal {
        /// Output format.
        #[arg(long, value_parser = ["v1", "legacy"], default_value = "v1")]
        format: String,
        /// Associated data binding the value to its place (v1 only).
        #[arg(long)]
        aad: Option<String>,
    },
    /// Open a sealed value (either format) from stdin to stdout.
    Open {
        /// Associated data the value was sealed with.
        #[arg(long)]
        aad: Option<String>,
    },
}

pub(crate) fn run(_cmd: &SealCommand) -> ExitCode {
    eprintln!("mosaic seal: not built yet");
    ExitCode::from(crate::EXIT_USAGE)
}
