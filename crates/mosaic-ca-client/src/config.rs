//! [`StepCaConfig`]: where the CA is, which root to trust, and the provisioner key (decrypted once).

use std::{fmt, path::PathBuf, sync::Arc, time::Duration};

use der::{Decode, DecodePem};
use mosaic_oid::OidRegistry;
use sha2::{Digest, Sha256};
use url::Url;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::{
    error::CaError,
    jwe::{self, KeyMaterial},
    jwk::ProvisionerKey,
    request::{DEFAULT_MAX_VALIDITY, DEFAULT_MIN_VALIDITY},
};

/// The environment variable with the CA's base URL (`https://...`).
pub const ENV_URL: &str = "STEP_CA_URL";
/// The environment variable with the provisioner key: a JWK, or a JWE encrypted with the password.
pub const ENV_PROVISIONER_KEY_JSON: &str = "STEP_CA_PROVISIONER_KEY_JSON";
/// The environment variable with the password the provisioner key is encrypted with.
pub const ENV_PROVISIONER_PASSWORD: &str = "STEP_CA_PROVISIONER_PASSWORD";
/// The environment variable with the path of the CA's root certificate (PEM or DER).
pub const ENV_ROOT_CERT_PATH: &str = "STEP_CA_ROOT_CERT_PATH";
/// Optional: the root certificate's SHA-256 fingerprint (hex, colons allowed) to pin.
pub const ENV_ROOT_FINGERPRINT: &str = "STEP_CA_ROOT_FINGERPRINT";
/// Optional: the JWK provisioner's name (default [`DEFAULT_PROVISIONER`]).
pub const ENV_PROVISIONER_NAME: &str = "STEP_CA_PROVISIONER_NAME";

/// The provisioner the setup guide creates.
pub const DEFAULT_PROVISIONER: &str = "mosaic-fed";
/// Default connect timeout and per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A complete, checked configuration for [`StepCaClient`](crate::StepCaClient).
///
/// Built by [`StepCaConfig::from_env`] or [`StepCaConfig::builder`]. Construction does all the slow
/// and failure-prone work once: it reads and checks the root, decrypts the provisioner key
/// (PBKDF2 with the key file's iteration count) and checks the key's halves agree. Cloning is cheap
/// (the key is shared). `Debug` shows no secret.
#[derive(Clone)]
pub struct StepCaConfig {
    pub(crate) url: Url,
    pub(crate) provisioner: String,
    pub(crate) key: Arc<ProvisionerKey>,
    pub(crate) root_der: Arc<Vec<u8>>,
    pub(crate) root_fingerprint: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) min_validity: Duration,
    pub(crate) max_validity: Duration,
    pub(crate) registry: OidRegistry,
}

impl fmt::Debug for StepCaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCaConfig")
            .field("url", &self.url.as_str())
            .field("provisioner", &self.provisioner)
            .field("key", &self.key)
            .field("root_fingerprint", &self.root_fingerprint)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("validity_bounds", &(self.min_validity, self.max_validity))
            .field("oid_arc", &self.registry.arc())
            .finish()
    }
}

impl StepCaConfig {
    /// A builder; see [`StepCaConfigBuilder`].
    #[must_use]
    pub fn builder() -> StepCaConfigBuilder {
        StepCaConfigBuilder::default()
    }

    /// Reads the setup guide's variables from the process environment: [`ENV_URL`],
    /// [`ENV_PROVISIONER_KEY_JSON`], [`ENV_PROVISIONER_PASSWORD`] (required when the key is
    /// encrypted), [`ENV_ROOT_CERT_PATH`], and optionally [`ENV_ROOT_FINGERPRINT`] and
    /// [`ENV_PROVISIONER_NAME`].
    ///
    /// # Errors
    /// [`CaError::Config`] naming the missing or invalid variable, [`CaError::KeyDecrypt`] for a wrong
    /// password or an unusable key, [`CaError::RootFingerprintMismatch`] for a pin that does not match.
    pub fn from_env() -> Result<Self, CaError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading the variables through `lookup` (for a
    /// configuration file merged with the environment, or tests).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CaError> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| CaError::Config(format!("{name} is not set")))
        };
        let mut builder = Self::builder()
            .url(required(ENV_URL)?)
            .provisioner_key_json(Zeroizing::new(required(ENV_PROVISIONER_KEY_JSON)?))
            .root_cert_path(required(ENV_ROOT_CERT_PATH)?);
        if let Some(password) = lookup(ENV_PROVISIONER_PASSWORD) {
            builder = builder.provisioner_password(Zeroizing::new(password));
        }
        if let Some(pin) = lookup(ENV_ROOT_FINGERPRINT).filter(|v| !v.trim().is_empty()) {
            builder = builder.root_fingerprint(pin);
        }
        if let Some(name) = lookup(ENV_PROVISIONER_NAME).filter(|v| !v.trim().is_empty()) {
            builder = builder.provisioner_name(name);
        }
        builder.build()
    }

    /// The CA's base URL.
    #[must_use]
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The provisioner name (the token's `iss`).
    #[must_use]
    pub fn provisioner(&self) -> &str {
        &self.provisioner
    }

    /// The key id the token's header names (the JWK's `kid`, or its RFC 7638 thumbprint).
    #[must_use]
    pub fn provisioner_kid(&self) -> &str {
        &self.key.kid
    }

    /// The RFC 7638 thumbprint of the provisioner's public key.
    #[must_use]
    pub fn provisioner_thumbprint(&self) -> &str {
        &self.key.thumbprint
    }

    /// The provisioner's public key as a JWK (what the CA's `ca.json` holds under `key`).
    #[must_use]
    pub fn provisioner_public_jwk(&self) -> serde_json::Value {
        self.key.public_jwk()
    }

    /// The root certificate, DER.
    #[must_use]
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root certificate's SHA-256 fingerprint, lowercase hex (the token's `sha` claim).
    #[must_use]
    pub fn root_fingerprint(&self) -> &str {
        &self.root_fingerprint
    }

    /// The OID registry the federation extensions are checked with.
    #[must_use]
    pub fn oid_registry(&self) -> &OidRegistry {
        &self.registry
    }

    /// The validity bounds requests are checked against.
    #[must_use]
    pub fn validity_bounds(&self) -> (Duration, Duration) {
        (self.min_validity, self.max_validity)
    }

    /// The connect timeout.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The per-request timeout.
    #[must_use]
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Where the root certificate comes from.
#[derive(Clone)]
enum RootSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// Builds a [`StepCaConfig`]. Only [`url`](Self::url), [`provisioner_key_json`](Self::provisioner_key_json)
/// and a root ([`root_cert_path`](Self::root_cert_path) or [`root_cert`](Self::root_cert)) are required.
#[derive(Default)]
pub struct StepCaConfigBuilder {
    url: Option<String>,
    provisioner: Option<String>,
    key_json: Option<Zeroizing<String>>,
    password: Option<Zeroizing<String>>,
    root: Option<RootSource>,
    fingerprint_pin: Option<String>,
    connect_timeout: Option<Duration>,
    request_timeout: Option<Duration>,
    bounds: Option<(Duration, Duration)>,
    registry: Option<OidRegistry>,
}

impl fmt::Debug for StepCaConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCaConfigBuilder")
            .field("url", &self.url)
            .field("provisioner", &self.provisioner)
            .field("key_json", &self.key_json.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl StepCaConfigBuilder {
    /// The CA's base URL; must be `https://`.
    #[must_use]
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The JWK provisioner's name (default [`DEFAULT_PROVISIONER`]).
    #[must_use]
    pub fn provisioner_name(mut self, name: impl Into<String>) -> Self {
        self.provisioner = Some(name.into());
        self
    }

    /// The provisioner key: a private P-256 JWK, or a PBES2 JWE of one (compact or JSON).
    #[must_use]
    pub fn provisioner_key_json(mut self, json: impl Into<Zeroizing<String>>) -> Self {
        self.key_json = Some(json.into());
        self
    }

    /// The password the provisioner key is encrypted with.
    #[must_use]
    pub fn provisioner_password(mut self, password: impl Into<Zeroizing<String>>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Read the root certificate (PEM or DER) from this file.
    #[must_use]
    pub fn root_cert_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.root = Some(RootSource::Path(path.into()));
        self
    }

    /// The root certificate itself (PEM or DER).
    #[must_use]
    pub fn root_cert(mut self, pem_or_der: impl Into<Vec<u8>>) -> Self {
        self.root = Some(RootSource::Bytes(pem_or_der.into()));
        self
    }

    /// Pin the root's SHA-256 fingerprint (hex; colons and case are ignored).
    #[must_use]
    pub fn root_fingerprint(mut self, hex: impl Into<String>) -> Self {
        self.fingerprint_pin = Some(hex.into());
        self
    }

    /// The TCP+TLS connect timeout (default 5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The timeout of each whole request (default 5 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// The provisioner's validity bounds (default 5 minutes to 24 hours, step-ca's defaults).
    #[must_use]
    pub fn validity_bounds(mut self, min: Duration, max: Duration) -> Self {
        self.bounds = Some((min, max));
        self
    }

    /// The OID registry (default: the development arc `1.3.6.1.4.1.99999`). It must match the
    /// OIDs the provisioner's template writes.
    #[must_use]
    pub fn oid_registry(mut self, registry: OidRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Checks everything, reads the root and decrypts the key.
    ///
    /// # Errors
    /// [`CaError::Config`], [`CaError::KeyDecrypt`] or [`CaError::RootFingerprintMismatch`].
    pub fn build(self) -> Result<StepCaConfig, CaError> {
        let url = parse_url(
            self.url
                .as_deref()
                .ok_or_else(|| CaError::Config(format!("{ENV_URL} is not set")))?,
        )?;
        let (root_der, root_fingerprint) = load_root(
            self.root
                .as_ref()
                .ok_or_else(|| CaError::Config(format!("{ENV_ROOT_CERT_PATH} is not set")))?,
        )?;
        if let Some(pin) = &self.fingerprint_pin {
            let expected: String = pin
                .chars()
                .filter(|c| *c != ':' && !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(CaError::Config(format!(
                    "{ENV_ROOT_FINGERPRINT} must be 64 hex digits (a SHA-256 fingerprint)"
                )));
            }
            if expected != root_fingerprint {
                return Err(CaError::RootFingerprintMismatch {
                    expected,
                    actual: root_fingerprint,
                });
            }
        }
        let key_json = self
            .key_json
            .ok_or_else(|| CaError::Config(format!("{ENV_PROVISIONER_KEY_JSON} is not set")))?;
        let key = decode_key(&key_json, self.password.as_ref())?;
        let (min_validity, max_validity) = self
            .bounds
            .unwrap_or((DEFAULT_MIN_VALIDITY, DEFAULT_MAX_VALIDITY));
        if min_validity > max_validity || max_validity.is_zero() {
            return Err(CaError::Config(
                "the validity bounds are empty (min > max, or max is 0)".into(),
            ));
        }
        let provisioner = self
            .provisioner
            .unwrap_or_else(|| DEFAULT_PROVISIONER.to_owned());
        if provisioner.is_empty() {
            return Err(CaError::Config("the provisioner name is empty".into()));
        }
        Ok(StepCaConfig {
            url,
            provisioner,
            key: Arc::new(key),
            root_der: Arc::new(root_der),
            root_fingerprint,
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_TIMEOUT),
            request_timeout: self.request_timeout.unwrap_or(DEFAULT_TIMEOUT),
            min_validity,
            max_validity,
            registry: self.registry.unwrap_or_default(),
        })
    }
}

fn parse_url(text: &str) -> Result<Url, CaError> {
    let url = Url::parse(text.trim())
        .map_err(|e| CaError::Config(format!("{ENV_URL} is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(CaError::Config(format!(
            "{ENV_URL} must use https (got {}://); step-ca only speaks TLS and the token must not travel in clear",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CaError::Config(format!(
            "{ENV_URL} must not carry credentials"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CaError::Config(format!("{ENV_URL} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CaError::Config(format!(
            "{ENV_URL} must not have a query or fragment"
        )));
    }
    Ok(url)
}

/// Reads the root (one certificate, PEM or DER) and checks webpki accepts it as a trust anchor.
fn load_root(source: &RootSource) -> Result<(Vec<u8>, String), CaError> {
    let bytes = match source {
        RootSource::Bytes(b) => b.clone(),
        RootSource::Path(path) => std::fs::read(path).map_err(|e| {
            CaError::Config(format!(
                "cannot read the root certificate {} ({ENV_ROOT_CERT_PATH}): {e}",
                path.display()
            ))
        })?,
    };
    let der = root_der_from_bytes(&bytes)?;
    let cert_der = rustls_pki_types::CertificateDer::from(der.as_slice());
    webpki::anchor_from_trusted_cert(&cert_der).map_err(|e| {
        CaError::Config(format!(
            "the root certificate is not usable as a trust anchor: {e}"
        ))
    })?;
    let fingerprint = hex::encode(Sha256::digest(&der));
    Ok((der, fingerprint))
}

/// One certificate from PEM or DER; a PEM file with several certificates is refused, because a root
/// file that also holds intermediates would silently trust them.
pub(crate) fn root_der_from_bytes(bytes: &[u8]) -> Result<Vec<u8>, CaError> {
    use der::Encode;
    let trimmed = bytes.trim_ascii_start();
    if trimmed.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(trimmed)
            .map_err(|_| CaError::Config("the root certificate PEM is not text".into()))?;
        let count = text.matches("-----BEGIN").count();
        if count != 1 {
            return Err(CaError::Config(format!(
                "the root certificate file holds {count} PEM blocks; it must hold exactly the root"
            )));
        }
        let cert = Certificate::from_pem(text).map_err(|e| {
            CaError::Config(format!(
                "the root certificate is not a PEM CERTIFICATE: {e}"
            ))
        })?;
        cert.to_der()
            .map_err(|e| CaError::Config(format!("the root certificate cannot be re-encoded: {e}")))
    } else {
        Certificate::from_der(bytes).map_err(|e| {
            CaError::Config(format!("the root certificate is neither PEM nor DER: {e}"))
        })?;
        Ok(bytes.to_vec())
    }
}

/// Decodes the provisioner key: a plain JWK, or a JWE decrypted with the password.
fn decode_key(text: &str, password: Option<&Zeroizing<String>>) -> Result<ProvisionerKey, CaError> {
    match jwe::classify(text)? {
        KeyMaterial::PlainJwk(json) => ProvisionerKey::from_jwk_json(json),
        KeyMaterial::JsonJwe(_) | KeyMaterial::CompactJwe(_) => {
            let password = password.filter(|p| !p.is_empty()).ok_or_else(|| {
                CaError::Config(format!(
                    "{ENV_PROVISIONER_KEY_JSON} is encrypted (a JWE) but {ENV_PROVISIONER_PASSWORD} is not set"
                ))
            })?;
            let plaintext = jwe::decrypt(text, password.as_bytes())?;
            ProvisionerKey::from_jwk_json(&plaintext)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;
    use crate::LocalCa;

    const NODE_VECTOR: &str = include_str!("../tests/vectors/node-pbes2-jwe.json");

    fn vector() -> serde_json::Value {
        serde_json::from_str(NODE_VECTOR).unwrap()
    }

    fn vars(root: &std::path::Path, key: &str, password: Option<&str>) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert(ENV_URL.into(), "https://localhost:9000".into());
        m.insert(ENV_PROVISIONER_KEY_JSON.into(), key.into());
        m.insert(ENV_ROOT_CERT_PATH.into(), root.display().to_string());
        if let Some(p) = password {
            m.insert(ENV_PROVISIONER_PASSWORD.into(), p.into());
        }
        m
    }

    fn root_file() -> (tempfile::TempDir, PathBuf, String) {
        let ca = LocalCa::generate("config test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.crt");
        std::fs::write(&path, ca.root_pem()).unwrap();
        (dir, path, hex::encode(Sha256::digest(ca.root_der())))
    }

    #[test]
    fn encrypted_key_from_env_decrypts_once_and_matches_node_kid() {
        let v = vector();
        let (_dir, root, fingerprint) = root_file();
        let env = vars(&root, &v["jwe_json"].to_string(), v["password"].as_str());
        let config = StepCaConfig::from_vars(|k| env.get(k).cloned()).unwrap();
        // Node computed the RFC 7638 thumbprint independently and put it in the JWK as kid.
        assert_eq!(config.provisioner_kid(), v["jwk"]["kid"].as_str().unwrap());
        assert_eq!(
            config.provisioner_thumbprint(),
            v["jwk"]["kid"].as_str().unwrap()
        );
        assert_eq!(config.provisioner(), DEFAULT_PROVISIONER);
        assert_eq!(config.root_fingerprint(), fingerprint);
        assert_eq!(config.connect_timeout(), Duration::from_secs(5));
        assert_eq!(config.provisioner_public_jwk()["x"], v["jwk"]["x"]);
        let debug = format!("{config:?}");
        assert!(!debug.contains(v["jwk"]["d"].as_str().unwrap()));
        assert!(!debug.contains(v["password"].as_str().unwrap()));
    }

    #[test]
    fn plain_and_compact_keys_work_too() {
        let v = vector();
        let (_dir, root, _) = root_file();
        let env = vars(&root, &v["jwk"].to_string(), None);
        StepCaConfig::from_vars(|k| env.get(k).cloned()).unwrap();
        let env = vars(
            &root,
            v["jwe_compact"].as_str().unwrap(),
            v["password"].as_str(),
        );
        StepCaConfig::from_vars(|k| env.get(k).cloned()).unwrap();
    }

    #[test]
    fn every_config_error_names_the_problem() {
        let v = vector();
        let (_dir, root, fingerprint) = root_file();
        let jwe = v["jwe_json"].to_string();
        let good = vars(&root, &jwe, v["password"].as_str());

        type Mutation = Box<dyn Fn(&mut HashMap<String, String>)>;
        let cases: Vec<(&str, Mutation, &str, &str)> = vec![
            (
                "no url",
                Box::new(|m| {
                    m.remove(ENV_URL);
                }),
                "CONFIG",
                ENV_URL,
            ),
            (
                "http url",
                Box::new(|m| {
                    m.insert(ENV_URL.into(), "http://localhost:9000".into());
                }),
                "CONFIG",
                "https",
            ),
            (
                "creds in url",
                Box::new(|m| {
                    m.insert(ENV_URL.into(), "https://u:p@localhost:9000".into());
                }),
                "CONFIG",
                "credentials",
            ),
            (
                "no key",
                Box::new(|m| {
                    m.remove(ENV_PROVISIONER_KEY_JSON);
                }),
                "CONFIG",
                ENV_PROVISIONER_KEY_JSON,
            ),
            (
                "no password",
                Box::new(|m| {
                    m.remove(ENV_PROVISIONER_PASSWORD);
                }),
                "CONFIG",
                ENV_PROVISIONER_PASSWORD,
            ),
            (
                "wrong password",
                Box::new(|m| {
                    m.insert(ENV_PROVISIONER_PASSWORD.into(), "wrong-password-123".into());
                }),
                "KEY_DECRYPT",
                "wrong password",
            ),
            (
                "no root",
                Box::new(|m| {
                    m.remove(ENV_ROOT_CERT_PATH);
                }),
                "CONFIG",
                ENV_ROOT_CERT_PATH,
            ),
            (
                "missing root file",
                Box::new(|m| {
                    m.insert(ENV_ROOT_CERT_PATH.into(), "/nonexistent/root.crt".into());
                }),
                "CONFIG",
                "/nonexistent/root.crt",
            ),
            (
                "bad pin",
                Box::new(|m| {
                    m.insert(ENV_ROOT_FINGERPRINT.into(), "00".repeat(32));
                }),
                "ROOT_FINGERPRINT_MISMATCH",
                "pinned",
            ),
            (
                "malformed pin",
                Box::new(|m| {
                    m.insert(ENV_ROOT_FINGERPRINT.into(), "xyz".into());
                }),
                "CONFIG",
                ENV_ROOT_FINGERPRINT,
            ),
        ];
        for (case, mutate, code, needle) in cases {
            let mut env = good.clone();
            mutate(&mut env);
            let err = StepCaConfig::from_vars(|k| env.get(k).cloned()).unwrap_err();
            assert_eq!(err.code(), code, "{case}: {err}");
            assert!(err.to_string().contains(needle), "{case}: {err}");
            assert!(!err.remediation().is_empty());
            assert!(
                !err.to_string().contains(v["password"].as_str().unwrap()),
                "{case}"
            );
        }
        // The right pin, with colons and uppercase, is accepted.
        let mut env = good.clone();
        let pin = fingerprint
            .to_ascii_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        env.insert(ENV_ROOT_FINGERPRINT.into(), pin);
        StepCaConfig::from_vars(|k| env.get(k).cloned()).unwrap();
    }

    #[test]
    fn a_root_file_with_two_certificates_is_refused() {
        let a = LocalCa::generate("a").unwrap();
        let b = LocalCa::generate("b").unwrap();
        let both = format!("{}{}", a.root_pem(), b.root_pem());
        let err = root_der_from_bytes(both.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "CONFIG");
        assert!(err.to_string().contains("2 PEM blocks"), "{err}");
        // DER is accepted.
        assert_eq!(root_der_from_bytes(a.root_der()).unwrap(), a.root_der());
    }
}
