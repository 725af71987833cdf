//! step-ca probe: `GET /health` over TLS that trusts only the configured root, and the root's fingerprint.

use std::{
    error::Error as StdError,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls_pki_types::{CertificateDer, pem::PemObject};
use sha2::{Digest, Sha256};

use crate::{DEFAULT_TIMEOUT, Probe, ProbeError, ProbeFuture, Redactor, ServerUrl};

/// Checks a step-ca server.
///
/// 1. Reads the root certificate file (PEM, or DER) and computes its SHA-256 fingerprint; when a
///    fingerprint is pinned, they must match.
/// 2. `GET /health` over TLS that trusts this root only (rustls with the ring provider), expecting
///    `{"status":"ok"}`.
/// 3. `GET /root/{fingerprint}`: the CA must serve this very root.
///
/// The detail is the root's fingerprint, ready to pin.
#[derive(Clone)]
pub struct StepCaProbe {
    base: String,
    target: String,
    root_path: PathBuf,
    pinned: Option<String>,
    timeout: Duration,
    redactor: Redactor,
}

impl StepCaProbe {
    /// A probe of the CA at `url` (`https://host:port`), trusting the root certificate in `root_cert_path`.
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when `url` is not an `https` URL.
    pub fn new(url: &str, root_cert_path: impl Into<PathBuf>) -> Result<Self, ProbeError> {
        let parsed = ServerUrl::parse("STEP_CA_URL", url)?;
        if parsed.scheme() != "https" {
            return Err(ProbeError::InvalidSetting {
                setting: "STEP_CA_URL".to_owned(),
                reason: format!(
                    "step-ca is only reached over https, not {}",
                    parsed.scheme()
                ),
            });
        }
        Ok(Self {
            base: parsed.expose_secret().trim_end_matches('/').to_owned(),
            target: parsed.target(),
            root_path: root_cert_path.into(),
            pinned: None,
            timeout: DEFAULT_TIMEOUT,
            redactor: parsed.redactor().clone(),
        })
    }

    /// Also requires the root's SHA-256 fingerprint to be `fingerprint` (hex; colons and case ignored).
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when `fingerprint` is not 64 hex digits.
    pub fn with_fingerprint(mut self, fingerprint: &str) -> Result<Self, ProbeError> {
        let normalized: String = fingerprint
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase();
        if normalized.len() != 64 || !normalized.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ProbeError::InvalidSetting {
                setting: "STEP_CA_ROOT_FINGERPRINT".to_owned(),
                reason: "a SHA-256 fingerprint is 64 hex digits (colons allowed)".to_owned(),
            });
        }
        self.pinned = Some(normalized);
        Ok(self)
    }

    /// Uses `timeout` instead of [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn root_file_error(&self, reason: impl Into<String>) -> ProbeError {
        ProbeError::CaRootFile {
            path: self.root_path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn load_root(&self) -> Result<CertificateDer<'static>, ProbeError> {
        let bytes =
            std::fs::read(&self.root_path).map_err(|e| self.root_file_error(e.to_string()))?;
        read_certificate(&bytes).map_err(|reason| self.root_file_error(reason))
    }

    fn client(&self, root: CertificateDer<'static>) -> Result<reqwest::Client, ProbeError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(root)
            .map_err(|e| self.root_file_error(format!("not a usable root certificate: {e}")))?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| ProbeError::CaTls {
            target: self.target.clone(),
            root_path: self.root_path.display().to_string(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .build()
            .map_err(|e| ProbeError::InvalidSetting {
                setting: "STEP_CA_URL".to_owned(),
                reason: error_chain(&e),
            })
    }

    fn classify(&self, error: &reqwest::Error) -> ProbeError {
        let reason = self.redactor.redact(&error_chain(error));
        if error.is_timeout() {
            return ProbeError::Timeout {
                service: "step-ca".to_owned(),
                target: self.target.clone(),
                after: self.timeout,
            };
        }
        if has_tls_error(error) {
            return ProbeError::CaTls {
                target: self.target.clone(),
                root_path: self.root_path.display().to_string(),
                reason,
            };
        }
        ProbeError::CaUnreachable {
            target: self.target.clone(),
            reason,
        }
    }

    async fn get(
        &self,
        client: &reqwest::Client,
        path: &str,
    ) -> Result<(reqwest::StatusCode, String), ProbeError> {
        let response = client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| self.classify(&e))?;
        Ok((status, body))
    }

    async fn run(&self) -> Result<Option<String>, ProbeError> {
        let root = self.load_root()?;
        let fingerprint = hex::encode(Sha256::digest(root.as_ref()));
        if let Some(pinned) = &self.pinned
            && *pinned != fingerprint
        {
            return Err(ProbeError::CaFingerprintMismatch {
                expected: pinned.clone(),
                actual: fingerprint,
            });
        }
        let client = self.client(root.clone())?;

        let (status, body) = self.get(&client, "/health").await?;
        let healthy = status.is_success()
            && serde_json::from_str::<serde_json::Value>(&body).is_ok_and(|v| v["status"] == "ok");
        if !healthy {
            return Err(ProbeError::CaUnhealthy {
                reason: self.redactor.redact(&describe(status, &body)),
            });
        }

        let (status, body) = self.get(&client, &format!("/root/{fingerprint}")).await?;
        let unknown = |reason: String| ProbeError::CaRootUnknown {
            fingerprint: fingerprint.clone(),
            reason,
        };
        if !status.is_success() {
            return Err(unknown(self.redactor.redact(&describe(status, &body))));
        }
        let served = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["ca"].as_str().map(str::to_owned))
            .ok_or_else(|| unknown("the answer has no \"ca\" certificate".to_owned()))?;
        let served = read_certificate(served.as_bytes()).map_err(unknown)?;
        if served != root {
            return Err(unknown(
                "the CA serves a different certificate under this fingerprint".to_owned(),
            ));
        }
        Ok(Some(format!("root SHA-256 {fingerprint}")))
    }

    /// The root certificate file this probe trusts.
    #[must_use]
    pub fn root_cert_path(&self) -> &Path {
        &self.root_path
    }
}

/// The first certificate of a PEM file, or the whole input when it is DER.
fn read_certificate(bytes: &[u8]) -> Result<CertificateDer<'static>, String> {
    match CertificateDer::pem_slice_iter(bytes).next() {
        Some(Ok(cert)) => Ok(cert),
        Some(Err(e)) => Err(format!("not a PEM certificate: {e}")),
        None if bytes.first() == Some(&0x30) => Ok(CertificateDer::from(bytes.to_vec())),
        None => Err("holds no certificate (expected PEM with BEGIN CERTIFICATE)".to_owned()),
    }
}

fn describe(status: reqwest::StatusCode, body: &str) -> String {
    let body: String = body.trim().chars().take(200).collect();
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    }
}

/// The error and all its sources, `a: b: c`, without repeats.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// Whether a rustls error is somewhere in the chain. `io::Error::source` skips the error it wraps (and
/// reqwest nests an `io::Error` in another), so wrapped errors are also followed through `get_ref`.
fn has_tls_error(error: &(dyn StdError + 'static)) -> bool {
    let mut pending: Vec<&(dyn StdError + 'static)> = vec![error];
    while let Some(e) = pending.pop() {
        if e.is::<rustls::Error>() {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            pending.push(inner);
        }
        pending.extend(e.source());
    }
    false
}

impl fmt::Debug for StepCaProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCaProbe")
            .field("target", &self.target)
            .field("root_path", &self.root_path)
            .field("pinned", &self.pinned)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Probe for StepCaProbe {
    fn name(&self) -> &str {
        "step-ca"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_is_accepted() {
        let err = StepCaProbe::new("http://localhost:9000", "/tmp/root.crt").unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(err.to_string().contains("only reached over https"), "{err}");
        let probe = StepCaProbe::new("https://localhost:9000/", "/tmp/root.crt").unwrap();
        assert_eq!(probe.target(), "localhost:9000");
    }

    #[test]
    fn fingerprints_are_normalized_and_checked() {
        let probe = StepCaProbe::new("https://localhost:9000", "/tmp/root.crt").unwrap();
        let hex = "AB:".repeat(31) + "AB";
        let probe = probe.with_fingerprint(&hex).unwrap();
        assert_eq!(probe.pinned.as_deref(), Some("ab".repeat(32).as_str()));
        let err = probe.with_fingerprint("abc").unwrap_err();
        assert!(
            err.to_string().contains("STEP_CA_ROOT_FINGERPRINT"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_root_file_is_reported_with_its_path() {
        let probe =
            StepCaProbe::new("https://127.0.0.1:9", "/nonexistent/mosaic-root.crt").unwrap();
        let err = probe.run().await.unwrap_err();
        assert_eq!(err.code(), "CA_ROOT_FILE");
        assert!(
            err.to_string().contains("/nonexistent/mosaic-root.crt"),
            "{err}"
        );
        assert!(err.remediation().contains("STEP_CA_ROOT_CERT_PATH"));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(read_certificate(b"hello").is_err());
        assert!(
            read_certificate(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
