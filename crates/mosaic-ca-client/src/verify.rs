//! Verification of an issued certificate before anyone sees it: the chain, the key, the names and the
//! federation identity. Shared by [`StepCaClient`](crate::StepCaClient) and [`LocalCa`](crate::LocalCa).

use std::time::{SystemTime, UNIX_EPOCH};

use der::{Decode, Encode, EncodePem, pem::LineEnding};
use mosaic_oid::{FederationIdentity, OidRegistry};
use rustls_pki_types::{CertificateDer, UnixTime, pem::PemObject};
use x509_cert::{Certificate, ext::pkix::SubjectAltName};

use crate::{IssuedCertificate, csr::CertNames, error::CaError};

/// What the certificate must say.
pub(crate) struct Expected<'a> {
    pub(crate) identity: FederationIdentity,
    pub(crate) names: &'a CertNames,
    /// The CSR's SubjectPublicKeyInfo, DER.
    pub(crate) spki_der: &'a [u8],
    pub(crate) registry: &'a OidRegistry,
}

/// Verifies `leaf_der` (issued with `intermediates_der`) against `root_der` and `expected`, and
/// assembles the [`IssuedCertificate`] only when everything holds.
pub(crate) fn verify_issued(
    root_der: &[u8],
    leaf_der: &[u8],
    intermediates_der: &[Vec<u8>],
    expected: &Expected<'_>,
    now: SystemTime,
) -> Result<IssuedCertificate, CaError> {
    let leaf = Certificate::from_der(leaf_der)
        .map_err(|e| CaError::CertParse(format!("the certificate: {e}")))?;
    let intermediates = intermediates_der
        .iter()
        .map(|der| {
            Certificate::from_der(der)
                .map_err(|e| CaError::CertParse(format!("a chain certificate: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    // 1. The chain, with rustls-webpki: signatures up to the configured root, validity at `now`,
    //    basic constraints, key usage for client authentication, and no unknown critical extension.
    let root = CertificateDer::from(root_der);
    let anchor = webpki::anchor_from_trusted_cert(&root).map_err(|e| {
        CaError::Config(format!(
            "the configured root is not a usable trust anchor: {e}"
        ))
    })?;
    let leaf_cert = CertificateDer::from(leaf_der);
    let end_entity = webpki::EndEntityCert::try_from(&leaf_cert).map_err(|e| match e {
        webpki::Error::BadDer | webpki::Error::BadDerTime => {
            CaError::CertParse(format!("the certificate is not DER webpki can read: {e}"))
        }
        other => CaError::ChainInvalid(describe_webpki(&other)),
    })?;
    let chain: Vec<CertificateDer<'_>> = intermediates_der
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let since_epoch = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CaError::Internal("the system clock is before 1970".into()))?;
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &chain,
            UnixTime::since_unix_epoch(since_epoch),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| CaError::ChainInvalid(describe_webpki(&e)))?;

    // 2. The key: exactly the CSR's.
    let leaf_spki = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| CaError::CertParse(format!("the certificate's public key: {e}")))?;
    if leaf_spki != expected.spki_der {
        return Err(CaError::KeyMismatch);
    }

    // 3. The names: the CN and exactly the SANs asked for.
    let san = leaf
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| CaError::CertParse(format!("the certificate's subjectAltName: {e}")))?
        .map(|(_critical, san)| san);
    expected
        .names
        .check(
            leaf.tbs_certificate().subject(),
            san.as_ref(),
            "the certificate",
        )
        .map_err(CaError::SubjectMismatch)?;

    // 4. The federation identity, strictly (mosaic-oid), equal to what was asked.
    let identity =
        FederationIdentity::from_der(leaf_der, expected.registry).map_err(identity_error)?;
    if identity.grant_id != expected.identity.grant_id {
        return Err(CaError::OidMismatch {
            name: mosaic_oid::GRANT_ID_NAME.into(),
            expected: expected.identity.grant_id.to_string(),
            actual: identity.grant_id.to_string(),
        });
    }
    if identity.subject_user_id != expected.identity.subject_user_id {
        return Err(CaError::OidMismatch {
            name: mosaic_oid::SUBJECT_USER_ID_NAME.into(),
            expected: expected.identity.subject_user_id.to_string(),
            actual: identity.subject_user_id.to_string(),
        });
    }

    let pem = |c: &Certificate| {
        c.to_pem(LineEnding::LF)
            .map_err(|e| CaError::Internal(format!("encoding a certificate as PEM: {e}")))
    };
    let cert_pem = pem(&leaf)?;
    let mut chain_pem = String::new();
    for c in &intermediates {
        chain_pem.push_str(&pem(c)?);
    }
    let validity = leaf.tbs_certificate().validity();
    Ok(IssuedCertificate {
        cert_pem,
        chain_pem,
        cert_der: leaf_der.to_vec(),
        serial: hex::encode(leaf.tbs_certificate().serial_number().as_bytes()),
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
        identity,
        key: None,
    })
}

/// The DER of every `CERTIFICATE` block of a PEM text, in order; other blocks are skipped. `what`
/// names the text in errors.
///
/// PEM framing is rustls-pki-types' (the parser rustls itself uses), not hand-written.
pub(crate) fn certificates_from_pem(pem: &str, what: &str) -> Result<Vec<Vec<u8>>, CaError> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|item| {
            item.map(|cert| cert.as_ref().to_vec())
                .map_err(|e| CaError::CertParse(format!("{what}: {}", describe_pem(&e))))
        })
        .collect()
}

/// The DER of the one `CERTIFICATE` block of a PEM text.
pub(crate) fn single_certificate_from_pem(pem: &str, what: &str) -> Result<Vec<u8>, CaError> {
    let mut certs = certificates_from_pem(pem, what)?;
    match certs.len() {
        1 => Ok(certs.remove(0)),
        0 => Err(CaError::CertParse(format!(
            "{what}: no PEM CERTIFICATE block (-----BEGIN CERTIFICATE-----)"
        ))),
        n => Err(CaError::CertParse(format!(
            "{what}: {n} PEM CERTIFICATE blocks, expected exactly one (the leaf; intermediates belong \
             in the chain)"
        ))),
    }
}

/// The intermediates of a chain, without any copy of the root (some CAs list it).
pub(crate) fn intermediates_without_root(chain: Vec<Vec<u8>>, root_der: &[u8]) -> Vec<Vec<u8>> {
    chain
        .into_iter()
        .filter(|der| der.as_slice() != root_der)
        .collect()
}

/// A sentence for a PEM framing error, without quoting the input.
fn describe_pem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => {
            "a PEM block has no matching -----END ...----- line".into()
        }
        Error::IllegalSectionStart { .. } => "a -----BEGIN ...----- line is malformed".into(),
        Error::Base64Decode(_) => "a PEM block's body is not valid base64".into(),
        Error::SectionTooLarge => "a PEM block is larger than 256 MB".into(),
        other => format!("not PEM: {other}"),
    }
}

/// Maps mosaic-oid's strict extraction errors onto this crate's codes.
fn identity_error(e: mosaic_oid::Error) -> CaError {
    match (&e, e.extension()) {
        (mosaic_oid::Error::MissingExtension { .. }, Some(ext)) => CaError::OidMissing {
            oid: ext.oid.to_string(),
            name: ext.field.symbolic_name().into(),
        },
        (_, Some(ext)) => CaError::OidMalformed {
            oid: ext.oid.to_string(),
            name: ext.field.symbolic_name().into(),
            reason: e.to_string(),
        },
        (_, None) => CaError::CertParse(e.to_string()),
    }
}

/// A sentence for a webpki error (its `Display` is terse).
fn describe_webpki(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => {
            "it is not signed by the configured root or by an intermediate that chains to it (unknown issuer)".into()
        }
        webpki::Error::CertExpired { .. } => format!("it has expired ({e})"),
        webpki::Error::CertNotValidYet { .. } => format!("it is not valid yet ({e})"),
        webpki::Error::UnsupportedCriticalExtension => {
            "it carries a critical extension the verifier does not know (federation extensions must be non-critical)".into()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            format!("its extended key usage does not allow client authentication ({e})")
        }
        other => other.to_string(),
    }
}
