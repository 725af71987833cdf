//! `mosaic seal seal`, `mosaic seal open` and `mosaic seal keys`.
//!
//! Stdin to stdout. The current secret comes from `BETTER_AUTH_SECRET` (never from argv, where other users
//! could read it); previous secrets come from the file named by `MOSAIC_SEAL_PREVIOUS_SECRETS_FILE`, one a
//! line. On failure: exit 1, a message on stderr, nothing on stdout.

use std::{
    fmt,
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use mosaic_seal::{Keyring, KeyringOptions, SealError};
use zeroize::Zeroizing;

/// The variable holding the current secret.
const SECRET_VAR: &str = "BETTER_AUTH_SECRET";
/// The variable naming the file of previous secrets.
const PREVIOUS_SECRETS_VAR: &str = "MOSAIC_SEAL_PREVIOUS_SECRETS_FILE";

/// `mosaic seal ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SealCommand {
    /// Seal stdin to stdout under `BETTER_AUTH_SECRET` (one line, ending in a newline).
    Seal {
        /// Output format: `v1` (versioned envelope) or `legacy` (what TypeScript gateways read).
        #[arg(long, value_parser = ["v1", "legacy"], default_value = "v1")]
        format: String,
        /// Associated data binding the value to its place, e.g. `federation_peers/client_key_pem/<id>`
        /// (v1 only).
        #[arg(long)]
        aad: Option<String>,
        /// Accept a `BETTER_AUTH_SECRET` shorter than 32 bytes (SHA-256 is no password KDF: rotate away).
        #[arg(long)]
        allow_short_secret: bool,
    },
    /// Open a sealed value (either format) from stdin to stdout. Surrounding whitespace is ignored.
    Open {
        /// Associated data the value was sealed with (ignored for legacy values, which carry none).
        #[arg(long)]
        aad: Option<String>,
        /// Accept secrets shorter than 32 bytes (SHA-256 is no password KDF: rotate away).
        #[arg(long)]
        allow_short_secret: bool,
    },
    /// Print the key ids of the configured secrets (current first), to compare with stored values.
    Keys {
        /// Accept secrets shorter than 32 bytes.
        #[arg(long)]
        allow_short_secret: bool,
    },
}

/// What can go wrong in the CLI, on top of the library's errors.
#[derive(Debug)]
enum CliError {
    MissingSecret,
    SecretNotUtf8,
    PreviousFile { path: PathBuf, source: io::Error },
    PreviousFileNotUtf8 { path: PathBuf },
    Stdin(io::Error),
    InputNotUtf8,
    LegacyWithAad,
    Seal(SealError),
    Stdout(io::Error),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingSecret => write!(f, "{SECRET_VAR} is not set"),
            Self::SecretNotUtf8 => write!(f, "{SECRET_VAR} is not valid UTF-8"),
            Self::PreviousFile { path, source } => write!(
                f,
                "cannot read the previous secrets file {} (named by {PREVIOUS_SECRETS_VAR}): {source}",
                path.display()
            ),
            Self::PreviousFileNotUtf8 { path } => write!(
                f,
                "the previous secrets file {} is not valid UTF-8",
                path.display()
            ),
            Self::Stdin(error) => write!(f, "cannot read stdin: {error}"),
            Self::InputNotUtf8 => f.write_str("the sealed value on stdin is not text (UTF-8)"),
            Self::LegacyWithAad => f.write_str("legacy values cannot carry associated data"),
            Self::Seal(error) => error.fmt(f),
            Self::Stdout(error) => write!(f, "cannot write stdout: {error}"),
        }
    }
}

impl CliError {
    fn remediation(&self) -> Option<&'static str> {
        match self {
            Self::MissingSecret | Self::SecretNotUtf8 => Some(
                "export BETTER_AUTH_SECRET (the secret the gateway seals with); it is read from the \
                 environment only, never from the command line",
            ),
            Self::PreviousFile { .. } | Self::PreviousFileNotUtf8 { .. } => Some(
                "point MOSAIC_SEAL_PREVIOUS_SECRETS_FILE at a readable UTF-8 file with one previous secret \
                 a line, or unset it",
            ),
            Self::InputNotUtf8 => Some("pass the sealed value exactly as stored"),
            Self::LegacyWithAad => Some("drop --aad, or seal with --format v1"),
            Self::Seal(error) => Some(error.remediation()),
            Self::Stdin(_) | Self::Stdout(_) => None,
        }
    }
}

impl From<SealError> for CliError {
    fn from(error: SealError) -> Self {
        Self::Seal(error)
    }
}

pub(crate) fn run(cmd: &SealCommand) -> ExitCode {
    let name = match cmd {
        SealCommand::Seal { .. } => "mosaic seal seal",
        SealCommand::Open { .. } => "mosaic seal open",
        SealCommand::Keys { .. } => "mosaic seal keys",
    };
    // Everything is computed before anything is written, so a failure leaves stdout empty.
    let result = execute(cmd).and_then(|output| {
        let mut stdout = io::stdout().lock();
        stdout
            .write_all(&output)
            .and_then(|()| stdout.flush())
            .map_err(CliError::Stdout)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            if let Some(remediation) = error.remediation() {
                eprintln!("  to fix: {remediation}");
            }
            ExitCode::from(crate::EXIT_FAILURE)
        }
    }
}

fn execute(cmd: &SealCommand) -> Result<Zeroizing<Vec<u8>>, CliError> {
    match cmd {
        SealCommand::Seal {
            format,
            aad,
            allow_short_secret,
        } => {
            let keyring = keyring_from_env(*allow_short_secret)?;
            let plaintext = read_all(io::stdin().lock()).map_err(CliError::Stdin)?;
            let sealed = if format == "legacy" {
                if aad.is_some() {
                    return Err(CliError::LegacyWithAad);
                }
                let text = std::str::from_utf8(&plaintext)
                    .map_err(|_| CliError::Seal(SealError::NotUtf8))?;
                keyring.seal_legacy(text)?
            } else {
                keyring.seal(&plaintext, aad.as_deref().unwrap_or_default().as_bytes())?
            };
            let mut output = sealed.into_bytes();
            output.push(b'\n');
            Ok(Zeroizing::new(output))
        }
        SealCommand::Open {
            aad,
            allow_short_secret,
        } => {
            let keyring = keyring_from_env(*allow_short_secret)?;
            let input = read_all(io::stdin().lock()).map_err(CliError::Stdin)?;
            let sealed = std::str::from_utf8(&input).map_err(|_| CliError::InputNotUtf8)?;
            let aad = aad.as_deref().unwrap_or_default().as_bytes();
            match keyring.open(sealed.trim(), aad) {
                Ok(plaintext) => Ok(plaintext.into_bytes()),
                Err(error @ SealError::UnknownKeyId { .. }) => {
                    let ids: Vec<String> = keyring.key_ids().map(|id| id.to_string()).collect();
                    eprintln!("the configured secrets have key ids: {}", ids.join(", "));
                    Err(error.into())
                }
                Err(error) => Err(error.into()),
            }
        }
        SealCommand::Keys { allow_short_secret } => {
            let keyring = keyring_from_env(*allow_short_secret)?;
            let mut output = String::new();
            for (index, id) in keyring.key_ids().enumerate() {
                let role = if index == 0 { "current" } else { "previous" };
                output.push_str(&format!("{role} {id}\n"));
            }
            Ok(Zeroizing::new(output.into_bytes()))
        }
    }
}

/// Builds the keyring from `BETTER_AUTH_SECRET` and the previous secrets file.
fn keyring_from_env(allow_short_secrets: bool) -> Result<Keyring, CliError> {
    let current = Zeroizing::new(std::env::var(SECRET_VAR).map_err(|error| match error {
        std::env::VarError::NotPresent => CliError::MissingSecret,
        std::env::VarError::NotUnicode(_) => CliError::SecretNotUtf8,
    })?);
    let previous = read_previous_secrets()?;
    let mut options = KeyringOptions::default();
    if allow_short_secrets {
        options = options.allow_short_secrets();
    }
    let lines = previous
        .as_deref()
        .map(|text| previous_secret_lines(text.as_str()))
        .into_iter()
        .flatten();
    Ok(Keyring::from_secrets_with(&current, lines, options)?)
}

/// The previous secrets file's text, if `MOSAIC_SEAL_PREVIOUS_SECRETS_FILE` names one.
fn read_previous_secrets() -> Result<Option<Zeroizing<String>>, CliError> {
    let Some(path) = std::env::var_os(PREVIOUS_SECRETS_VAR).filter(|path| !path.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(path);
    let bytes = std::fs::read(&path).map_err(|source| CliError::PreviousFile {
        path: path.clone(),
        source,
    })?;
    // `String::from_utf8` reuses the buffer; on failure the bytes are zeroized before returning.
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(error) => {
            drop(Zeroizing::new(error.into_bytes()));
            Err(CliError::PreviousFileNotUtf8 { path })
        }
    }
}

/// One secret a line; line ends (`\n` or `\r\n`) are not part of a secret; blank lines are skipped.
fn previous_secret_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|line| !line.trim().is_empty())
}

/// Reads everything into a zeroizing buffer. `Read::read_to_end` would grow a plain `Vec` and leave
/// copies of the plaintext in freed memory; this grows by moving into a fresh zeroizing buffer instead.
fn read_all(mut reader: impl Read) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buffer = Zeroizing::new(Vec::with_capacity(8192));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let read = match reader.read(chunk.as_mut_slice()) {
            Ok(0) => return Ok(buffer),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        let new_chunk = chunk.get(..read).unwrap_or_default();
        if buffer.len().saturating_add(read) > buffer.capacity() {
            let capacity = buffer
                .capacity()
                .saturating_mul(2)
                .max(buffer.len().saturating_add(read));
            let mut bigger = Zeroizing::new(Vec::with_capacity(capacity));
            bigger.extend_from_slice(&buffer);
            buffer = bigger;
        }
        buffer.extend_from_slice(new_chunk);
    }
}
