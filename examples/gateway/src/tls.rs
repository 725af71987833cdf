//! rustls configurations of the gateway: the server (client certificates optional at the TLS level,
//! required per route) and the client that trusts a peer's server only through the root fingerprint it
//! was given out of band (in the enrollment URL).

use std::{fmt, str::FromStr, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use sha2::{Digest, Sha256};

/// The one crypto provider of the gateway: ring.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What went wrong while building a TLS configuration or reading its material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum TlsError {
    /// A PEM input holds no certificate, or a malformed one.
    #[error("{what} holds no readable PEM certificate: {detail}")]
    Certificates {
        /// Which input.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// A PEM private key could not be read.
    #[error("{what} is not a readable PEM private key: {detail}")]
    PrivateKey {
        /// Which input.
        what: &'static str,
        /// The parser's message.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("the TLS configuration was refused: {0}")]
    Config(String),
    /// A root fingerprint is not 64 hex digits.
    #[error(
        "{0:?} is not a SHA-256 fingerprint (64 hexadecimal digits, optionally separated by ':')"
    )]
    Fingerprint(String),
}

/// The SHA-256 of a certificate's DER: how an enrollment URL names the root a gateway's server
/// certificate chains to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RootFingerprint([u8; 32]);

impl RootFingerprint {
    /// The fingerprint of a DER certificate.
    pub(crate) fn of(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    fn matches(&self, cert: &CertificateDer<'_>) -> bool {
        Self::of(cert.as_ref()) == *self
    }
}

impl fmt::Display for RootFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for RootFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootFingerprint({self})")
    }
}

impl FromStr for RootFingerprint {
    type Err = TlsError;

    /// 64 hex digits, any case, optionally separated by `:` (as openssl prints fingerprints).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes)
            .map_err(|_| TlsError::Fingerprint(text.to_owned()))?;
        Ok(Self(bytes))
    }
}

/// Every certificate of a PEM text, in order.
pub(crate) fn certificates_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificates {
            what,
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Certificates {
            what,
            detail: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

/// A PKCS#8 (or SEC1) PEM private key.
pub(crate) fn private_key_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::PrivateKey {
        what,
        detail: e.to_string(),
    })
}

fn config_error(e: impl fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// The HTTP versions the server speaks, for ALPN.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The server side: `chain` (leaf first, then the issuers to send) with `key`; client certificates are
/// verified against `client_roots` when presented, and may be absent at the TLS level because the
/// enrollment endpoint shares the listener. Routes that need one refuse requests without it.
pub(crate) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_roots: &[CertificateDer<'static>],
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for root in client_roots {
        roots.add(root.clone()).map_err(config_error)?;
    }
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(config_error)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// The client side: the server must present a chain that contains the root with fingerprint `pin` and
/// that verifies up to it (for server authentication, for the host name asked for). With `identity`
/// (certificate chain and key), the client authenticates itself.
pub(crate) fn client_config(
    pin: RootFingerprint,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = Arc::new(PinnedRootVerifier {
        pin,
        provider: provider.clone(),
    });
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(config_error)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// The server's chain does not contain the pinned root.
#[derive(Debug)]
struct PinNotPresented(RootFingerprint);

impl fmt::Display for PinNotPresented {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's certificate chain does not include the root with SHA-256 fingerprint {} named in \
             the enrollment URL",
            self.0
        )
    }
}

impl std::error::Error for PinNotPresented {}

/// Trusts exactly one root, known by its fingerprint: the server sends it at the end of its chain, and
/// this verifier takes it as the only trust anchor when (and only when) its SHA-256 is the pinned one.
/// Everything else (signatures, validity, server-auth usage, the host name) is rustls' own
/// `WebPkiServerVerifier`, built per handshake around that root. Hand-written because rustls has no
/// "trust the root with this fingerprint" option; the checks themselves are not hand-written.
#[derive(Debug)]
struct PinnedRootVerifier {
    pin: RootFingerprint,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedRootVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(position) = intermediates.iter().position(|c| self.pin.matches(c)) else {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(PinNotPresented(
                    self.pin,
                )))),
            ));
        };
        let mut roots = RootCertStore::empty();
        if let Some(root) = intermediates.get(position) {
            roots.add(root.clone().into_owned())?;
        }
        let others: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .enumerate()
            .filter(|(index, _)| *index != position)
            .map(|(_, c)| c.clone())
            .collect();
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &others, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fingerprints_parse_in_the_usual_spellings() {
        let fp = RootFingerprint::of(b"not really a certificate");
        let text = fp.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<RootFingerprint>().unwrap(), fp);
        assert_eq!(text.to_uppercase().parse::<RootFingerprint>().unwrap(), fp);
        let colons: Vec<String> = text
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        assert_eq!(colons.join(":").parse::<RootFingerprint>().unwrap(), fp);
        assert!("abc".parse::<RootFingerprint>().is_err());
        assert!(format!("{text}00").parse::<RootFingerprint>().is_err());
        assert!(
            text.replacen('a', "g", 1)
                .parse::<RootFingerprint>()
                .is_err()
                || !text.contains('a')
        );
    }
}
