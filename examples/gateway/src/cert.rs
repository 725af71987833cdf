//! `mosaic cert inspect`.

use std::{fmt::Write as _, io::Read as _, path::PathBuf, process::ExitCode};

use der::Decode;
use mosaic_oid::{FederationIdentity, OidArc, OidRegistry};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use x509_cert::{Certificate, time::Time};

/// Files larger than this are refused before reading: a certificate (even with its chain) is a few KiB.
const MAX_CERTIFICATE_FILE: u64 = 1024 * 1024;

/// `mosaic cert ...`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CertCommand {
    /// Print the federation identity and validity of a certificate (PEM or DER).
    ///
    /// Reads the first certificate of a PEM file (the leaf of a chain) or a DER file. Exits 1 with
    /// one line on stderr if the file is not a certificate or its federation extensions are
    /// missing or malformed.
    Inspect {
        /// The certificate file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        /// The OID arc of the federation extensions, if the deployment registered its own IANA PEN
        /// (the extensions are `<ARC>.1` and `<ARC>.2`).
        #[arg(long, env = "MOSAIC_OID_ARC", value_name = "ARC", default_value_t = OidArc::DEVELOPMENT)]
        oid_arc: OidArc,
    },
}

pub(crate) fn run(cmd: &CertCommand) -> ExitCode {
    match cmd {
        CertCommand::Inspect {
            file,
            json,
            oid_arc,
        } => match inspect(file, &OidRegistry::new(*oid_arc)) {
            Ok(report) => {
                if *json {
                    println!("{}", report.to_json());
                } else {
                    print!("{}", report.to_text());
                }
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("mosaic cert inspect: {}: {message}", file.display());
                ExitCode::from(crate::EXIT_FAILURE)
            }
        },
    }
}

/// What `mosaic cert inspect` prints.
#[derive(Debug, serde::Serialize)]
struct CertificateReport {
    grant_id: String,
    subject_user_id: String,
    /// Lowercase hex of the serial number's magnitude (no DER sign byte, no separators).
    serial: String,
    /// RFC 4514 form, as x509-cert prints a `Name`.
    subject: String,
    /// RFC 3339, UTC.
    not_before: String,
    /// RFC 3339, UTC.
    not_after: String,
}

impl CertificateReport {
    fn to_json(&self) -> String {
        // Serialising a struct of strings cannot fail; fall back to an empty object rather than panic.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        for (label, value) in [
            ("grant id", &self.grant_id),
            ("subject user id", &self.subject_user_id),
            ("serial", &self.serial),
            ("subject", &self.subject),
            ("not before", &self.not_before),
            ("not after", &self.not_after),
        ] {
            let _ = writeln!(out, "{:<16} {value}", format!("{label}:"));
        }
        out
    }
}

/// Reads and checks the certificate; the error is one line for stderr.
fn inspect(file: &std::path::Path, registry: &OidRegistry) -> Result<CertificateReport, String> {
    let bytes = read_limited(file)?;
    let one_line = |e: mosaic_oid::Error| format!("{e} (to fix: {})", e.remediation());
    let der = mosaic_oid::certificate_der(&bytes).map_err(one_line)?;
    // The strict walk first: it explains a malformed certificate or extension most precisely.
    let identity = FederationIdentity::from_der(&der, registry).map_err(one_line)?;
    let cert = Certificate::from_der(&der)
        .map_err(|e| format!("not a well-formed X.509 certificate: {e}"))?;
    let tbs = cert.tbs_certificate();
    let validity = tbs.validity();
    Ok(CertificateReport {
        grant_id: identity.grant_id.to_string(),
        subject_user_id: identity.subject_user_id.to_string(),
        serial: serial_hex(tbs.serial_number().as_bytes()),
        subject: tbs.subject().to_string(),
        not_before: rfc3339(validity.not_before)?,
        not_after: rfc3339(validity.not_after)?,
    })
}

fn read_limited(file: &std::path::Path) -> Result<Vec<u8>, String> {
    let cannot_read = |e: std::io::Error| format!("cannot read the file: {e}");
    let handle = std::fs::File::open(file).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_CERTIFICATE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CERTIFICATE_FILE {
        return Err(format!(
            "the file is larger than {MAX_CERTIFICATE_FILE} bytes; a certificate is a few KiB (to fix: pass the certificate file itself)"
        ));
    }
    Ok(bytes)
}

/// Hex of a DER INTEGER's magnitude: the sign byte DER adds before a high bit is dropped.
fn serial_hex(bytes: &[u8]) -> String {
    let magnitude = match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => bytes,
    };
    magnitude
        .iter()
        .fold(String::with_capacity(magnitude.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn rfc3339(time: Time) -> Result<String, String> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| format!("validity time {time} is out of range"))?;
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .ok_or_else(|| format!("validity time {time} cannot be written as RFC 3339"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn serial_hex_drops_only_the_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x9b, 0x01]), "9b01");
        assert_eq!(serial_hex(&[0x44, 0x00]), "4400");
        assert_eq!(serial_hex(&[0x00]), "00");
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let time =
            Time::try_from(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_256_000))
                .unwrap();
        assert_eq!(rfc3339(time).unwrap(), "2026-12-03T00:00:00Z");
    }
}
