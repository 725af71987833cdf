//! `mosaic ca issue`: a federation certificate from step-ca, verified, with its key sealed.
//!
//! Writes `DIR/cert.pem`, `DIR/chain.pem` and `DIR/key.sealed` (the PKCS#8 key sealed with mosaic-seal's
//! v1 envelope under `BETTER_AUTH_SECRET`, bound to the associated data `mosaic/ca-issue/<serial>`).
//! Exit 0 only once the certificate has passed every check of `mosaic-ca-client`; otherwise exit 1
//! with the error code and the remediation on stderr, and nothing written.

use std::{
    fmt,
    fs::{self, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, UNIX_EPOCH},
};

use mosaic_ca_client::{CaError, IssueRequest, StepCaClient, StepCaConfig};
use mosaic_seal::{Keyring, SealError};
use zeroize::Zeroizing;

/// The variable holding the sealing secret.
const SECRET_VAR: &str = "BETTER_AUTH_SECRET";
/// The files `mosaic ca issue` writes.
const CERT_FILE: &str = "cert.pem";
const CHAIN_FILE: &str = "chain.pem";
const KEY_FILE: &str = "key.sealed";

/// `mosaic ca ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CaCommand {
    /// Issue a federation certificate from step-ca (STEP_CA_* variables) and write cert.pem, chain.pem
    /// and key.sealed into a directory.
    Issue(IssueArgs),
}

/// `mosaic ca issue`
#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// The federation grant's id (a lowercase hyphenated UUID).
    #[arg(long, value_name = "UUID")]
    grant_id: String,
    /// The local user on whose behalf the certificate is issued (a lowercase hyphenated UUID).
    #[arg(long, value_name = "UUID")]
    subject_user_id: String,
    /// The certificate's common name (also its SAN unless --san is given).
    #[arg(long, value_name = "CN")]
    name: String,
    /// The directory to write cert.pem, chain.pem and key.sealed into (created if missing; existing
    /// files are never overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// A subject alternative name (repeat for several); default: the common name.
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,
    /// The validity to ask for, e.g. `90m`, `24h`, `7d` (default: the provisioner's, 24 h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    validity: Option<Duration>,
}

/// Parses `<n>s`, `<n>m`, `<n>h` or `<n>d`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90m, 24h or 7d"))?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" | "" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration such as 90m, 24h or 7d"))?;
    Ok(Duration::from_secs(seconds))
}

/// Everything that can stop `mosaic ca issue`.
#[derive(Debug)]
enum IssueError {
    Ca(CaError),
    Secret(SealError),
    MissingSecret,
    OutputExists(PathBuf),
    Output { path: PathBuf, source: io::Error },
    Runtime(io::Error),
}

impl IssueError {
    fn code(&self) -> &'static str {
        match self {
            Self::Ca(e) => e.code(),
            Self::Secret(_) | Self::MissingSecret => "SEAL_SECRET",
            Self::OutputExists(_) => "OUTPUT_EXISTS",
            Self::Output { .. } => "OUTPUT",
            Self::Runtime(_) => "INTERNAL",
        }
    }

    fn remediation(&self) -> &'static str {
        match self {
            Self::Ca(e) => e.remediation(),
            Self::Secret(e) => e.remediation(),
            Self::MissingSecret => {
                "export BETTER_AUTH_SECRET (the gateway's sealing secret, at least 32 random bytes): the new \
                 private key is only ever written sealed"
            }
            Self::OutputExists(_) => {
                "choose an empty --out directory, or move the previous certificate away first; nothing is \
                 overwritten"
            }
            Self::Output { .. } => "make --out a writable directory on a disk with free space",
            Self::Runtime(_) => "retry; the process could not start its async runtime",
        }
    }
}

impl fmt::Display for IssueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ca(e) => e.fmt(f),
            Self::Secret(e) => write!(f, "{SECRET_VAR}: {e}"),
            Self::MissingSecret => write!(f, "{SECRET_VAR} is not set"),
            Self::OutputExists(path) => write!(f, "{} already exists", path.display()),
            Self::Output { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            Self::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
        }
    }
}

impl From<CaError> for IssueError {
    fn from(e: CaError) -> Self {
        Self::Ca(e)
    }
}

pub(crate) fn run(cmd: &CaCommand) -> ExitCode {
    match cmd {
        CaCommand::Issue(args) => match issue(args) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("mosaic ca issue: error[{}]: {error}", error.code());
                eprintln!("  to fix: {}", error.remediation());
                ExitCode::from(crate::EXIT_FAILURE)
            }
        },
    }
}

fn issue(args: &IssueArgs) -> Result<String, IssueError> {
    // Everything that can fail without the CA is checked first: the sealing secret, the output files,
    // the configuration (which decrypts the provisioner key).
    let secret = Zeroizing::new(std::env::var(SECRET_VAR).map_err(|_| IssueError::MissingSecret)?);
    let keyring =
        Keyring::from_secrets(&secret, std::iter::empty::<&str>()).map_err(IssueError::Secret)?;
    let targets = [CERT_FILE, CHAIN_FILE, KEY_FILE].map(|name| args.out.join(name));
    for path in &targets {
        if path.exists() {
            return Err(IssueError::OutputExists(path.clone()));
        }
    }
    let client = StepCaClient::new(StepCaConfig::from_env()?)?;
    let mut request = IssueRequest::new(&args.grant_id, &args.subject_user_id, &args.name)
        .with_sans(args.sans.clone());
    if let Some(validity) = args.validity {
        request = request.with_validity(validity);
    }

    // The gateway's main is synchronous; this command needs one small runtime for its one request.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(IssueError::Runtime)?;
    let issued = runtime.block_on(client.issue(&request))?;

    // Verified: seal the key, then write the three files.
    let key = issued.key.as_ref().ok_or_else(|| {
        CaError::Internal("the client generated a key but did not return it".into())
    })?;
    let aad = format!("mosaic/ca-issue/{}", issued.serial);
    let sealed = keyring
        .seal(key.as_bytes(), aad.as_bytes())
        .map_err(IssueError::Secret)?;
    fs::create_dir_all(&args.out).map_err(|source| IssueError::Output {
        path: args.out.clone(),
        source,
    })?;
    let [cert_path, chain_path, key_path] = &targets;
    let sealed_line = format!("{sealed}\n");
    let files = [
        (key_path, sealed_line.as_bytes(), true),
        (chain_path, issued.chain_pem.as_bytes(), false),
        (cert_path, issued.cert_pem.as_bytes(), false),
    ];
    let mut written = Vec::new();
    for (path, bytes, private) in files {
        if let Err(e) = write_new(path, bytes, private) {
            // All or nothing: remove what this run created, so a retry starts clean.
            for done in written {
                let _ = fs::remove_file(done);
            }
            if !matches!(e, IssueError::OutputExists(_)) {
                let _ = fs::remove_file(path);
            }
            return Err(e);
        }
        written.push(path);
    }

    let not_after = issued
        .not_after
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok(format!(
        "issued and verified: serial {serial}, grant {grant}, subject user {user}, not after {not_after} (unix)\n\
         wrote {cert}, {chain}, {key}\n\
         open the key with: mosaic seal open --aad {aad} < {key}",
        serial = issued.serial,
        grant = issued.identity.grant_id,
        user = issued.identity.subject_user_id,
        cert = cert_path.display(),
        chain = chain_path.display(),
        key = key_path.display(),
    ))
}

/// Creates `path` (refusing to replace anything) and writes `bytes`; private files get mode 0600.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), IssueError> {
    let output = |source| IssueError::Output {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            IssueError::OutputExists(path.to_path_buf())
        } else {
            output(e)
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(output)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        for bad in ["", "h", "5y", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
