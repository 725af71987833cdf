//! The gateway's server identity: a small persistent CA in the data directory whose root signs the
//! HTTPS server certificate. Enrollment URLs carry this root's SHA-256 fingerprint, so the enrolling
//! gateway trusts the server without a leap of faith.
//!
//! Why not step-ca: its `mosaic-fed` provisioner issues federation *client* certificates only (the
//! template sets `extKeyUsage clientAuth` and refuses to sign without grant claims), and a TLS client
//! refuses a server certificate without `serverAuth`. Why not `LocalCa`: it issues that same
//! client-certificate profile. So the server identity has its own root, on every tier: a
//! [`mosaic_ca_client::ServerCa`], which this module only stores and loads:
//!
//! ```text
//! <data dir>/server-ca/root.pem          the root certificate (public)
//! <data dir>/server-ca/root-key.sealed   its P-256 key, PKCS#8, sealed with BETTER_AUTH_SECRET
//! ```
//!
//! The server certificate itself is made afresh, with a fresh key, each time the server starts: no
//! server key is ever written to disk.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use mosaic_ca_client::CaError;
use mosaic_seal::Keyring;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::{data_dir::write_private, tls::RootFingerprint};

/// Associated data of the sealed root key: a sealed value copied anywhere else does not open.
const ROOT_KEY_AAD: &[u8] = b"mosaic-gateway/server-ca/root-key";
/// The subject of the server identity root.
const ROOT_NAME: &str = "Mosaic gateway server identity root";
/// The subject of every server certificate.
const SERVER_NAME: &str = "Mosaic gateway";
/// How long a server certificate is valid (a new one is made at every start).
const SERVER_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// What can go wrong with the server identity.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ServerIdentityError {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The sealed root key does not open with the configured secrets.
    #[error("the server identity root key {path} does not open with BETTER_AUTH_SECRET: {source}")]
    Unseal {
        /// The file.
        path: PathBuf,
        /// What mosaic-seal said.
        #[source]
        source: mosaic_seal::SealError,
    },
    /// Sealing the new root key failed.
    #[error("sealing the server identity root key failed: {0}")]
    Seal(#[source] mosaic_seal::SealError),
    /// A stored file is not what it should be.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Making a key or certificate failed.
    #[error("could not make the {what}: {source}")]
    Build {
        /// What.
        what: &'static str,
        /// What mosaic-ca-client said.
        #[source]
        source: CaError,
    },
    /// A server name is unusable in a certificate.
    #[error("a server name cannot go in a certificate: {0}")]
    BadServerName(#[source] CaError),
}

impl ServerIdentityError {
    /// How the operator can fix it.
    pub(crate) fn remediation(&self) -> &'static str {
        match self {
            Self::Io { .. } => {
                "check that the data directory (--data-dir or MOSAIC_DATA_DIR) is writable by this user"
            }
            Self::Unseal { .. } => {
                "set BETTER_AUTH_SECRET to the secret this data directory was created with (previous secrets \
                 go in MOSAIC_SEAL_PREVIOUS_SECRETS_FILE); or move the server-ca directory away to create a new \
                 root, and hand peers new enrollment URLs"
            }
            Self::Damaged { .. } => {
                "restore the server-ca directory from a backup, or move it away to create a new root (peers \
                 then need new enrollment URLs)"
            }
            Self::Seal(_) | Self::Build { .. } => {
                "this is a bug or a broken random number generator; report it"
            }
            Self::BadServerName(_) => {
                "pass host names like gw.example.org or IP addresses like 10.0.0.5"
            }
        }
    }
}

/// The server identity CA of one data directory.
pub(crate) struct ServerCa {
    ca: mosaic_ca_client::ServerCa,
}

impl std::fmt::Debug for ServerCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCa")
            .field("root_fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// A server certificate chain and its key, ready for rustls.
pub(crate) struct ServerCertificate {
    /// Leaf first, then the root (sent so that the client can find the root it pinned).
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub(crate) key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ServerCa {
    /// Loads the CA of `data_dir`, creating it on first use.
    pub(crate) fn load_or_create(
        data_dir: &Path,
        keyring: &Keyring,
    ) -> Result<Self, ServerIdentityError> {
        let dir = data_dir.join("server-ca");
        let cert_path = dir.join("root.pem");
        let key_path = dir.join("root-key.sealed");
        if cert_path.exists() || key_path.exists() {
            return Self::load(&cert_path, &key_path, keyring);
        }
        let ca = mosaic_ca_client::ServerCa::generate(ROOT_NAME)
            .map_err(|source| build_error("server identity root", source))?;
        let key_pem = ca
            .root_key_pem()
            .map_err(|source| build_error("server identity root", source))?;
        let sealed = keyring
            .seal(key_pem.as_bytes(), ROOT_KEY_AAD)
            .map_err(ServerIdentityError::Seal)?;
        let root_pem = ca
            .root_pem()
            .map_err(|source| build_error("server identity root", source))?;
        // The key first: a directory with a certificate but no key would be "damaged".
        write_private(&key_path, sealed.as_bytes()).map_err(|source| ServerIdentityError::Io {
            action: "writing",
            path: key_path.clone(),
            source,
        })?;
        write_private(&cert_path, root_pem.as_bytes()).map_err(|source| {
            ServerIdentityError::Io {
                action: "writing",
                path: cert_path.clone(),
                source,
            }
        })?;
        Ok(Self { ca })
    }

    fn load(
        cert_path: &Path,
        key_path: &Path,
        keyring: &Keyring,
    ) -> Result<Self, ServerIdentityError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| ServerIdentityError::Io {
                action: "reading",
                path: path.to_owned(),
                source,
            })
        };
        let root_pem = read(cert_path)?;
        let sealed = Zeroizing::new(read(key_path)?);
        let key_pem = keyring
            .open(sealed.trim(), ROOT_KEY_AAD)
            .map_err(|source| ServerIdentityError::Unseal {
                path: key_path.to_owned(),
                source,
            })?;
        let key_text = key_pem
            .as_str()
            .map_err(|source| ServerIdentityError::Unseal {
                path: key_path.to_owned(),
                source,
            })?;
        let ca = mosaic_ca_client::ServerCa::from_pem(&root_pem, key_text).map_err(|e| {
            ServerIdentityError::Damaged {
                path: cert_path.parent().unwrap_or(cert_path).to_owned(),
                reason: e.to_string(),
            }
        })?;
        Ok(Self { ca })
    }

    /// The root's SHA-256 fingerprint, for enrollment URLs.
    pub(crate) fn fingerprint(&self) -> RootFingerprint {
        RootFingerprint::of(self.ca.root_der())
    }

    /// A fresh server certificate for `names` (DNS names or IP addresses), with a fresh key.
    pub(crate) fn issue_server_certificate(
        &self,
        names: &[String],
    ) -> Result<ServerCertificate, ServerIdentityError> {
        let issued = self
            .ca
            .issue_server_certificate(SERVER_NAME, names, SERVER_CERT_VALIDITY)
            .map_err(|e| match e {
                CaError::InvalidName(_) => ServerIdentityError::BadServerName(e),
                other => build_error("server certificate", other),
            })?;
        Ok(ServerCertificate {
            chain: issued
                .chain_der()
                .iter()
                .map(|der| CertificateDer::from(der.clone()))
                .collect(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key_pkcs8_der().to_vec())),
        })
    }
}

fn build_error(what: &'static str, source: CaError) -> ServerIdentityError {
    ServerIdentityError::Build { what, source }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use der::Decode as _;

    use super::*;

    fn keyring(secret: &str) -> Keyring {
        Keyring::from_secrets(secret, std::iter::empty::<&str>()).unwrap()
    }

    #[test]
    fn the_root_persists_sealed_and_signs_server_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ring = keyring("a-long-random-secret-of-at-least-32-bytes!");
        let first = ServerCa::load_or_create(dir.path(), &ring).unwrap();
        let again = ServerCa::load_or_create(dir.path(), &ring).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let sealed = std::fs::read_to_string(dir.path().join("server-ca/root-key.sealed")).unwrap();
        assert!(
            !sealed.contains("PRIVATE KEY"),
            "the root key is stored sealed"
        );

        let server = again
            .issue_server_certificate(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        assert_eq!(server.chain.len(), 2);
        assert_eq!(
            RootFingerprint::of(server.chain[1].as_ref()),
            first.fingerprint()
        );
        let leaf = x509_cert::Certificate::from_der(server.chain[0].as_ref()).unwrap();
        let root = x509_cert::Certificate::from_der(server.chain[1].as_ref()).unwrap();
        assert_eq!(
            leaf.tbs_certificate().issuer(),
            root.tbs_certificate().subject()
        );
    }

    #[test]
    fn a_wrong_secret_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        ServerCa::load_or_create(
            dir.path(),
            &keyring("a-long-random-secret-of-at-least-32-bytes!"),
        )
        .unwrap();
        let err = ServerCa::load_or_create(
            dir.path(),
            &keyring("another-long-random-secret-of-32-bytes!!"),
        )
        .unwrap_err();
        assert!(matches!(err, ServerIdentityError::Unseal { .. }), "{err}");
        assert!(err.remediation().contains("BETTER_AUTH_SECRET"));
    }

    #[test]
    fn server_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ServerCa::load_or_create(
            dir.path(),
            &keyring("a-long-random-secret-of-at-least-32-bytes!"),
        )
        .unwrap();
        assert!(
            ca.issue_server_certificate(&["gw.example.org".into(), "::1".into()])
                .is_ok()
        );
        for bad in ["", "has space", "-lead.example", "a..b"] {
            let err = ca.issue_server_certificate(&[bad.into()]).unwrap_err();
            assert!(
                matches!(err, ServerIdentityError::BadServerName(_)),
                "{bad:?}: {err}"
            );
            assert!(err.remediation().contains("host names"), "{err}");
        }
    }

    #[test]
    fn a_root_key_that_is_not_the_roots_is_reported_as_damage() {
        let ring = keyring("a-long-random-secret-of-at-least-32-bytes!");
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ServerCa::load_or_create(one.path(), &ring).unwrap();
        ServerCa::load_or_create(two.path(), &ring).unwrap();
        std::fs::copy(
            two.path().join("server-ca/root.pem"),
            one.path().join("server-ca/root.pem"),
        )
        .unwrap();
        let err = ServerCa::load_or_create(one.path(), &ring).unwrap_err();
        assert!(matches!(err, ServerIdentityError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("does not belong"), "{err}");
    }
}
