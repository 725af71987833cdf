//! [`ServerCa`]: an in-process root that signs a service's own TLS server certificates.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use der::{DecodePem, EncodePem, pem::LineEnding};
use p256::{
    ecdsa::SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey},
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::{
    csr::CertNames,
    error::{CaError, shorten},
    local::{
        BACKDATE, CA_VALIDITY, Kind, Profile, der_of, new_key, plain_name, sign_cert, spki_of,
        validity,
    },
};

/// A root certificate and its key that sign TLS **server** certificates directly (root → server leaf),
/// for a service whose clients trust it by pinning the root, not through a public PKI.
///
/// The Mosaic gateway uses one for its HTTPS endpoint: enrollment URLs carry the root's SHA-256
/// fingerprint, so an enrolling peer trusts the server without a leap of faith. step-ca's `mosaic-fed`
/// provisioner and [`LocalCa`](crate::LocalCa) issue federation *client* certificates only.
///
/// Profile of a server certificate: P-256 key made fresh for it, `keyUsage` digitalSignature,
/// `extKeyUsage` serverAuth, the given DNS names and IP addresses as SANs, issued by the root (CA,
/// `pathLenConstraint` 0). Every certificate is verified with webpki as a server certificate for each of
/// its names before it is returned. `Debug` never prints the key.
///
/// ```
/// use std::time::Duration;
/// use mosaic_ca_client::ServerCa;
///
/// let ca = ServerCa::generate("Example server identity root")?;
/// let server = ca.issue_server_certificate(
///     "Example gateway",
///     &["gw.example.org", "127.0.0.1"],
///     Duration::from_secs(90 * 24 * 60 * 60),
/// )?;
/// assert_eq!(server.chain_der().len(), 2); // the leaf, then the root
///
/// // Save the root and its key (seal the key: it is a secret), and load them back later.
/// let again = ServerCa::from_pem(&ca.root_pem()?, &ca.root_key_pem()?)?;
/// assert_eq!(again.root_der(), ca.root_der());
/// # Ok::<(), mosaic_ca_client::CaError>(())
/// ```
pub struct ServerCa {
    root: Certificate,
    root_der: Vec<u8>,
    key: SigningKey,
}

impl fmt::Debug for ServerCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCa")
            .field(
                "root_subject",
                &self.root.tbs_certificate().subject().to_string(),
            )
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A server certificate made by [`ServerCa::issue_server_certificate`], with its fresh private key.
/// `Debug` never prints the key.
pub struct ServerCertificate {
    chain_der: Vec<Vec<u8>>,
    key_pkcs8_der: Zeroizing<Vec<u8>>,
    not_after: SystemTime,
}

impl fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain_len", &self.chain_der.len())
            .field("not_after", &self.not_after)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ServerCertificate {
    /// The chain to present, DER: the server certificate, then the root (sent so that a client that
    /// pinned the root's fingerprint can find it).
    #[must_use]
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The server certificate's private key, PKCS#8 DER. A secret: keep it in memory.
    #[must_use]
    pub fn key_pkcs8_der(&self) -> &[u8] {
        &self.key_pkcs8_der
    }

    /// When the server certificate expires.
    #[must_use]
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }
}

impl ServerCa {
    /// A fresh root named `common_name` (its only subject attribute), with a fresh P-256 key, valid ten
    /// years.
    ///
    /// # Errors
    /// [`CaError::InvalidName`] for an unusable name, [`CaError::Internal`] if the RNG fails.
    pub fn generate(common_name: &str) -> Result<Self, CaError> {
        let key = new_key()?;
        let name = plain_name(common_name)?;
        let now = SystemTime::now();
        let root = sign_cert(
            Profile {
                kind: Kind::Root { path_len: 0 },
                subject: name.clone(),
                issuer: name,
            },
            validity(now - BACKDATE, now + CA_VALIDITY)?,
            spki_of(&key)?,
            &key,
        )?;
        Self::assemble(root, key)
    }

    /// A CA from saved parts: the root certificate (PEM) and its PKCS#8 private key (PEM). Checks that
    /// the key belongs to the root and that the root is a usable trust anchor.
    ///
    /// # Errors
    /// [`CaError::Config`] when a part is malformed or the two do not belong together.
    pub fn from_pem(root_pem: &str, root_key_pem: &str) -> Result<Self, CaError> {
        let root = Certificate::from_pem(root_pem)
            .map_err(|e| CaError::Config(format!("the server CA's root certificate: {e}")))?;
        let key = SigningKey::from_pkcs8_pem(root_key_pem).map_err(|_| {
            CaError::Config("the server CA's root key is not a P-256 PKCS#8 PEM key".into())
        })?;
        if spki_of(&key)? != *root.tbs_certificate().subject_public_key_info() {
            return Err(CaError::Config(
                "the server CA's root key does not belong to its root certificate".into(),
            ));
        }
        Self::assemble(root, key)
    }

    fn assemble(root: Certificate, key: SigningKey) -> Result<Self, CaError> {
        let root_der = der_of(&root)?;
        webpki::anchor_from_trusted_cert(&CertificateDer::from(root_der.as_slice())).map_err(
            |e| CaError::Config(format!("the server CA's root is not a trust anchor: {e}")),
        )?;
        Ok(Self {
            root,
            root_der,
            key,
        })
    }

    /// The root certificate, DER: what clients trust or pin.
    #[must_use]
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root certificate, PEM, to save it.
    ///
    /// # Errors
    /// [`CaError::Internal`] if encoding fails.
    pub fn root_pem(&self) -> Result<String, CaError> {
        self.root
            .to_pem(LineEnding::LF)
            .map_err(|e| CaError::Internal(format!("encoding the root certificate: {e}")))
    }

    /// The root's private key, PKCS#8 PEM, to save it for [`from_pem`](Self::from_pem). A secret: seal
    /// it (e.g. with mosaic-seal) before writing it anywhere.
    ///
    /// # Errors
    /// [`CaError::Internal`] if encoding fails.
    pub fn root_key_pem(&self) -> Result<Zeroizing<String>, CaError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| Zeroizing::new(pem.as_str().to_owned()))
            .map_err(|e| CaError::Internal(format!("encoding the root key: {e}")))
    }

    /// A server certificate for `names` (DNS names or IP addresses, at least one), with subject
    /// `CN=<common_name>`, valid for `lifetime` (backdated a minute for clock skew), with a fresh key.
    ///
    /// # Errors
    /// [`CaError::InvalidName`] for an empty list, a name that is neither a DNS name nor an IP address
    /// (as TLS clients check them), or a name listed twice; [`CaError::ChainInvalid`] if the certificate
    /// does not verify as a server certificate for each name (a bug, reported rather than returned).
    pub fn issue_server_certificate<S: AsRef<str>>(
        &self,
        common_name: &str,
        names: &[S],
        lifetime: Duration,
    ) -> Result<ServerCertificate, CaError> {
        let names: Vec<String> = names.iter().map(|n| n.as_ref().to_owned()).collect();
        if names.is_empty() {
            return Err(CaError::InvalidName(
                "a server certificate needs at least one DNS name or IP address".into(),
            ));
        }
        for name in &names {
            // The validator rustls clients use, so a name accepted here is one they can connect to;
            // plus RFC 5280's rule that a dNSName has no trailing dot (webpki would not match it).
            if name.ends_with('.') || ServerName::try_from(name.as_str()).is_err() {
                return Err(CaError::InvalidName(format!(
                    "server name {:?} is neither a DNS name (without a trailing dot) nor an IP address",
                    shorten(name)
                )));
            }
        }
        let names = CertNames::new(common_name, Some(&names))?;
        let key = new_key()?;
        let now = SystemTime::now();
        let not_after = now + lifetime;
        let leaf = sign_cert(
            Profile {
                kind: Kind::Server {
                    names: names.clone(),
                },
                subject: names.subject()?,
                issuer: self.root.tbs_certificate().subject().clone(),
            },
            validity(now - BACKDATE, not_after)?,
            spki_of(&key)?,
            &self.key,
        )?;
        let leaf_der = der_of(&leaf)?;
        self.verify_server_certificate(&leaf_der, &names.sans, now)?;
        let key_pkcs8_der = key
            .to_pkcs8_der()
            .map_err(|e| CaError::Internal(format!("encoding the server key: {e}")))?;
        Ok(ServerCertificate {
            chain_der: vec![leaf_der, self.root_der.clone()],
            key_pkcs8_der: Zeroizing::new(key_pkcs8_der.as_bytes().to_vec()),
            not_after: leaf.tbs_certificate().validity().not_after.to_system_time(),
        })
    }

    /// Checks with webpki that `leaf_der` chains to the root for server authentication, now, and is
    /// valid for every name.
    fn verify_server_certificate(
        &self,
        leaf_der: &[u8],
        names: &[String],
        now: SystemTime,
    ) -> Result<(), CaError> {
        let root = CertificateDer::from(self.root_der.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&root)
            .map_err(|e| CaError::Config(format!("the server CA's root: {e}")))?;
        let leaf = CertificateDer::from(leaf_der);
        let cert = webpki::EndEntityCert::try_from(&leaf)
            .map_err(|e| CaError::ChainInvalid(format!("the server certificate: {e}")))?;
        let since_epoch = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| CaError::Internal("the system clock is before 1970".into()))?;
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            UnixTime::since_unix_epoch(since_epoch),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| CaError::ChainInvalid(format!("the server certificate: {e}")))?;
        for name in names {
            let server_name = ServerName::try_from(name.as_str())
                .map_err(|_| CaError::InvalidName(format!("server name {:?}", shorten(name))))?;
            cert.verify_is_valid_for_subject_name(&server_name)
                .map_err(|e| {
                    CaError::ChainInvalid(format!(
                        "the server certificate is not valid for {:?}: {e}",
                        shorten(name)
                    ))
                })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use der::Decode;
    use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage};

    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    #[test]
    fn issues_server_certificates_that_webpki_accepts_for_each_name() {
        let ca = ServerCa::generate("unit server root").unwrap();
        let server = ca
            .issue_server_certificate("unit gateway", &["gw.example.org", "127.0.0.1", "::1"], DAY)
            .unwrap();
        let chain = server.chain_der();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1], ca.root_der());
        let leaf = Certificate::from_der(&chain[0]).unwrap();
        let (_, eku) = leaf
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .unwrap()
            .unwrap();
        assert_eq!(eku.0, vec![const_oid::db::rfc5280::ID_KP_SERVER_AUTH]);
        assert_eq!(
            leaf.tbs_certificate().subject().to_string(),
            "CN=unit gateway"
        );
        // The key is the certificate's.
        let key = SigningKey::from_pkcs8_der(server.key_pkcs8_der()).unwrap();
        assert_eq!(
            &spki_of(&key).unwrap(),
            leaf.tbs_certificate().subject_public_key_info()
        );
        let root = Certificate::from_der(ca.root_der()).unwrap();
        let (_, constraints) = root
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .unwrap()
            .unwrap();
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
        let lifetime = server
            .not_after()
            .duration_since(SystemTime::now())
            .unwrap();
        assert!(lifetime <= DAY && lifetime > DAY - Duration::from_secs(60));
        assert!(!format!("{server:?} {ca:?}").contains("PRIVATE"));
    }

    #[test]
    fn saved_parts_load_back_and_mismatched_parts_are_refused() {
        let ca = ServerCa::generate("unit server root").unwrap();
        let other = ServerCa::generate("another root").unwrap();
        let again =
            ServerCa::from_pem(&ca.root_pem().unwrap(), &ca.root_key_pem().unwrap()).unwrap();
        assert_eq!(again.root_der(), ca.root_der());
        again
            .issue_server_certificate("gw", &["localhost"], DAY)
            .unwrap();

        let err = ServerCa::from_pem(&ca.root_pem().unwrap(), &other.root_key_pem().unwrap())
            .unwrap_err();
        assert!(matches!(err, CaError::Config(_)), "{err}");
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = ServerCa::from_pem("not pem", &ca.root_key_pem().unwrap()).unwrap_err();
        assert!(matches!(err, CaError::Config(_)), "{err}");
        let err = ServerCa::from_pem(&ca.root_pem().unwrap(), "not a key").unwrap_err();
        assert!(matches!(err, CaError::Config(_)), "{err}");
        assert!(!err.to_string().contains("PRIVATE"));
    }

    #[test]
    fn server_names_are_checked_as_tls_clients_check_them() {
        let ca = ServerCa::generate("unit server root").unwrap();
        for bad in [
            "",
            "has space",
            "-lead.example",
            "a..b",
            "*.example.org",
            "gw.example.org.",
        ] {
            let err = ca.issue_server_certificate("gw", &[bad], DAY).unwrap_err();
            assert!(matches!(err, CaError::InvalidName(_)), "{bad:?}: {err}");
        }
        let none: [&str; 0] = [];
        let err = ca.issue_server_certificate("gw", &none, DAY).unwrap_err();
        assert!(matches!(err, CaError::InvalidName(_)), "{err}");
        let err = ca
            .issue_server_certificate("gw", &["gw.example.org", "gw.example.org"], DAY)
            .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
