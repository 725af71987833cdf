//! The gateway's server identity: a small persistent CA in the data directory whose root signs the
//! HTTPS server certificate. Enrollment URLs carry this root's SHA-256 fingerprint, so the enrolling
//! gateway trusts the server without a leap of faith.
//!
//! Why not step-ca: its `mosaic-fed` provisioner issues federation *client* certificates only (the
//! template sets `extKeyUsage clientAuth` and refuses to sign without grant claims), and a TLS client
//! refuses a server certificate without `serverAuth`. Why not `LocalCa`: it issues that same
//! client-certificate profile. So the server identity has its own root, on every tier:
//!
//! ```text
//! <data dir>/server-ca/root.pem          the root certificate (public)
//! <data dir>/server-ca/root-key.sealed   its P-256 key, PKCS#8, sealed with BETTER_AUTH_SECRET
//! ```
//!
//! The server certificate itself is made afresh, with a fresh key, each time the server starts: no
//! server key is ever written to disk.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    str::FromStr,
    time::{Duration, SystemTime},
};

use der::{DecodePem, Encode, EncodePem, asn1::Ia5String, pem::LineEnding};
use mosaic_seal::Keyring;
use p256::{
    ecdsa::{DerSignature, SigningKey},
    elliptic_curve::Generate,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, profile::BuilderProfile},
    certificate::TbsCertificate,
    ext::{
        Extension, ToExtension,
        pkix::{
            AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
            SubjectAltName, SubjectKeyIdentifier, name::GeneralName,
        },
    },
    name::Name,
    serial_number::SerialNumber,
    time::{Time, Validity},
};
use zeroize::Zeroizing;

use crate::{data_dir::write_private, tls::RootFingerprint};

/// Associated data of the sealed root key: a sealed value copied anywhere else does not open.
const ROOT_KEY_AAD: &[u8] = b"mosaic-gateway/server-ca/root-key";
/// How long the server identity root is valid.
const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// How long a server certificate is valid (a new one is made at every start).
const SERVER_CERT_VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// Clock skew allowance for notBefore.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

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
    #[error("could not make the {what}: {reason}")]
    Build {
        /// What.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A server name is unusable in a certificate.
    #[error("the server name {0:?} cannot go in a certificate (use a DNS name or an IP address)")]
    BadServerName(String),
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
    root: Certificate,
    root_der: Vec<u8>,
    key: SigningKey,
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
        let ca = Self::generate()?;
        let sealed = keyring
            .seal(ca.key_pem()?.as_bytes(), ROOT_KEY_AAD)
            .map_err(ServerIdentityError::Seal)?;
        let root_pem = ca
            .root
            .to_pem(LineEnding::LF)
            .map_err(|e| build_error("root certificate", e))?;
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
        Ok(ca)
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
        let root = Certificate::from_pem(root_pem.as_bytes()).map_err(|e| {
            ServerIdentityError::Damaged {
                path: cert_path.to_owned(),
                reason: format!("not a PEM certificate: {e}"),
            }
        })?;
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
        let key =
            SigningKey::from_pkcs8_pem(key_text).map_err(|_| ServerIdentityError::Damaged {
                path: key_path.to_owned(),
                reason: "the sealed value is not a P-256 PKCS#8 key".to_owned(),
            })?;
        let spki = spki_of(&key)?;
        if &spki != root.tbs_certificate().subject_public_key_info() {
            return Err(ServerIdentityError::Damaged {
                path: key_path.to_owned(),
                reason: "the key does not belong to root.pem".to_owned(),
            });
        }
        let root_der = root
            .to_der()
            .map_err(|e| build_error("root certificate", e))?;
        Ok(Self {
            root,
            root_der,
            key,
        })
    }

    fn generate() -> Result<Self, ServerIdentityError> {
        let key = new_key()?;
        let name = Name::from_str("CN=Mosaic gateway server identity root")
            .map_err(|e| build_error("root name", e))?;
        let now = SystemTime::now();
        let root = sign(
            Profile {
                kind: Kind::Root,
                subject: name.clone(),
                issuer: name,
            },
            validity(now - BACKDATE, now + ROOT_VALIDITY)?,
            spki_of(&key)?,
            &key,
        )?;
        let root_der = root
            .to_der()
            .map_err(|e| build_error("root certificate", e))?;
        Ok(Self {
            root,
            root_der,
            key,
        })
    }

    fn key_pem(&self) -> Result<Zeroizing<String>, ServerIdentityError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| Zeroizing::new(pem.as_str().to_owned()))
            .map_err(|e| build_error("root key encoding", e))
    }

    /// The root's SHA-256 fingerprint, for enrollment URLs.
    pub(crate) fn fingerprint(&self) -> RootFingerprint {
        RootFingerprint::of(&self.root_der)
    }

    /// A fresh server certificate for `names` (DNS names or IP addresses), with a fresh key.
    pub(crate) fn issue_server_certificate(
        &self,
        names: &[String],
    ) -> Result<ServerCertificate, ServerIdentityError> {
        let sans = names
            .iter()
            .map(|name| general_name(name))
            .collect::<Result<Vec<_>, _>>()?;
        let key = new_key()?;
        let subject =
            Name::from_str("CN=Mosaic gateway").map_err(|e| build_error("server name", e))?;
        let now = SystemTime::now();
        let leaf = sign(
            Profile {
                kind: Kind::Server(SubjectAltName(sans)),
                subject,
                issuer: self.root.tbs_certificate().subject().clone(),
            },
            validity(now - BACKDATE, now + SERVER_CERT_VALIDITY)?,
            spki_of(&key)?,
            &self.key,
        )?;
        let leaf_der = leaf
            .to_der()
            .map_err(|e| build_error("server certificate", e))?;
        let key_der = key
            .to_pkcs8_der()
            .map_err(|e| build_error("server key", e))?;
        Ok(ServerCertificate {
            chain: vec![
                CertificateDer::from(leaf_der),
                CertificateDer::from(self.root_der.clone()),
            ],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.as_bytes().to_vec())),
        })
    }
}

fn build_error(what: &'static str, e: impl std::fmt::Display) -> ServerIdentityError {
    ServerIdentityError::Build {
        what,
        reason: e.to_string(),
    }
}

fn general_name(name: &str) -> Result<GeneralName, ServerIdentityError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(GeneralName::from(ip));
    }
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid {
        return Err(ServerIdentityError::BadServerName(name.to_owned()));
    }
    Ia5String::new(&name.to_ascii_lowercase())
        .map(GeneralName::DnsName)
        .map_err(|_| ServerIdentityError::BadServerName(name.to_owned()))
}

fn new_key() -> Result<SigningKey, ServerIdentityError> {
    SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
        .map_err(|e| build_error("P-256 key", e))
}

fn spki_of(key: &SigningKey) -> Result<SubjectPublicKeyInfoOwned, ServerIdentityError> {
    SubjectPublicKeyInfoOwned::from_key(key.verifying_key())
        .map_err(|e| build_error("public key", e))
}

fn validity(
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Validity, ServerIdentityError> {
    let time = |t: SystemTime| Time::try_from(t).map_err(|e| build_error("validity", e));
    Ok(Validity::new(time(not_before)?, time(not_after)?))
}

fn random_serial() -> Result<SerialNumber, ServerIdentityError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| build_error("serial number", e))?;
    // Positive, without a leading zero byte.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::new(&bytes).map_err(|e| build_error("serial number", e))
}

enum Kind {
    Root,
    Server(SubjectAltName),
}

struct Profile {
    kind: Kind,
    subject: Name,
    issuer: Name,
}

impl BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let mut exts: Vec<Extension> = Vec::new();
        match &self.kind {
            Kind::Root => {
                exts.push(
                    BasicConstraints {
                        ca: true,
                        path_len_constraint: Some(0),
                    }
                    .to_extension(subject, &exts)?,
                );
                exts.push(
                    KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
                        .to_extension(subject, &exts)?,
                );
            }
            Kind::Server(sans) => {
                exts.push(
                    KeyUsage(KeyUsages::DigitalSignature.into()).to_extension(subject, &exts)?,
                );
                exts.push(
                    ExtendedKeyUsage(vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH])
                        .to_extension(subject, &exts)?,
                );
                exts.push(sans.to_extension(subject, &exts)?);
                let issuer_ski = SubjectKeyIdentifier::try_from(issuer_spk)?;
                exts.push(
                    AuthorityKeyIdentifier {
                        key_identifier: Some(issuer_ski.0),
                        ..Default::default()
                    }
                    .to_extension(subject, &exts)?,
                );
            }
        }
        exts.push(SubjectKeyIdentifier::try_from(spk)?.to_extension(subject, &exts)?);
        Ok(exts)
    }
}

fn sign(
    profile: Profile,
    validity: Validity,
    spki: SubjectPublicKeyInfoOwned,
    signer: &SigningKey,
) -> Result<Certificate, ServerIdentityError> {
    let builder = CertificateBuilder::new(profile, random_serial()?, validity, spki)
        .map_err(|e| build_error("certificate", e))?;
    builder
        .build::<_, DerSignature>(signer)
        .map_err(|e| build_error("certificate signature", e))
}

/// Reads a certificate's DER back, for tests.
#[cfg(test)]
fn decode(der: &[u8]) -> Certificate {
    use der::Decode as _;
    #[allow(clippy::unwrap_used)]
    Certificate::from_der(der).unwrap()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
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
        let leaf = decode(server.chain[0].as_ref());
        assert_eq!(
            leaf.tbs_certificate().issuer(),
            first.root.tbs_certificate().subject()
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
        assert!(general_name("gw.example.org").is_ok());
        assert!(general_name("::1").is_ok());
        for bad in ["", "has space", "-lead.example", "a..b", "under_score"] {
            assert!(general_name(bad).is_err(), "{bad:?}");
        }
    }
}
