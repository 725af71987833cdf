//! [`CertificateRequest`]: a fresh key and CSR made here, and the verification of the certificate
//! someone else issued for it (a peer gateway's enrollment endpoint, a CA reached another way).

use std::{fmt, time::SystemTime};

use mosaic_oid::{FederationIdentity, OidRegistry};
use zeroize::Zeroizing;

use crate::{
    IssueRequest, IssuedCertificate,
    csr::{self, CertNames, PreparedCsr},
    error::CaError,
    verify::{self, Expected},
};

/// A fresh P-256 key and a PKCS#10 request for a common name and SANs, made exactly as
/// [`StepCaClient`](crate::StepCaClient) and [`LocalCa`](crate::LocalCa) make theirs, for a
/// certificate that comes back through another channel; and [`verify_issued`](Self::verify_issued),
/// which checks that certificate exactly as the issuers of this crate check their own.
///
/// Names are classified the way step-ca classifies a token's `sans` (IP address, URI, e-mail address,
/// otherwise DNS name), which is also how an issuer of this crate validates a caller's CSR
/// ([`IssueRequest::with_csr`]); so a request made here is accepted there for the same names.
///
/// `Debug` never shows the private key; the key lives in a [`Zeroizing`] string.
pub struct CertificateRequest {
    names: CertNames,
    csr: PreparedCsr,
    key_pem: Zeroizing<String>,
}

impl fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateRequest")
            .field("common_name", &self.names.common_name)
            .field("sans", &self.names.sans)
            .field("csr_pem", &self.csr.pem)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

impl CertificateRequest {
    /// A fresh P-256 key and a CSR (ecdsa-with-SHA256) whose subject is `CN=<common_name>` and whose
    /// subjectAltName lists exactly `sans`, or only the common name when `sans` is empty (as step-ca
    /// does).
    ///
    /// # Errors
    /// [`CaError::InvalidName`] for an unusable name (empty, longer than 64 characters, control
    /// characters, a SAN listed twice, ...); [`CaError::Internal`] if the random number generator
    /// or an encoder fails.
    pub fn generate<S: Into<String>>(
        common_name: &str,
        sans: impl IntoIterator<Item = S>,
    ) -> Result<Self, CaError> {
        let sans: Vec<String> = sans.into_iter().map(Into::into).collect();
        let names = CertNames::new(common_name, Some(&sans))?;
        let mut csr = csr::generate(&names)?;
        let key_pem = csr
            .key_pem
            .take()
            .ok_or_else(|| CaError::Internal("the CSR generator returned no key".into()))?;
        Ok(Self {
            names,
            csr,
            key_pem,
        })
    }

    /// The common name.
    #[must_use]
    pub fn common_name(&self) -> &str {
        &self.names.common_name
    }

    /// The SANs the CSR lists, as given (the common name alone when none were given).
    #[must_use]
    pub fn sans(&self) -> &[String] {
        &self.names.sans
    }

    /// The CSR, PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    #[must_use]
    pub fn csr_pem(&self) -> &str {
        &self.csr.pem
    }

    /// The CSR, DER.
    #[must_use]
    pub fn csr_der(&self) -> &[u8] {
        &self.csr.der
    }

    /// The public key, as the DER SubjectPublicKeyInfo the issued certificate must carry.
    #[must_use]
    pub fn public_key_der(&self) -> &[u8] {
        &self.csr.spki_der
    }

    /// The private key, PKCS#8 PEM, in a string that is zeroized when dropped.
    #[must_use]
    pub fn private_key_pem(&self) -> &Zeroizing<String> {
        &self.key_pem
    }

    /// An [`IssueRequest`] for this CSR on behalf of `identity`, for an issuer of this crate (the
    /// granting side, when both sides run in one process, or a test).
    #[must_use]
    pub fn issue_request(&self, identity: FederationIdentity) -> IssueRequest {
        IssueRequest::for_identity(identity, self.names.common_name.clone())
            .with_sans(self.names.sans.iter().cloned())
            .with_csr(self.csr.der.clone())
    }

    /// Verifies a certificate issued for this request through another channel, exactly as
    /// [`StepCaClient`](crate::StepCaClient) and [`LocalCa`](crate::LocalCa) verify their own
    /// issuances, and returns it with this request's private key attached
    /// ([`IssuedCertificate::key`]).
    ///
    /// - `certificate_pem`: exactly one `CERTIFICATE` block, the leaf;
    /// - `chain_pem`: the intermediates between it and the root, any number of `CERTIFICATE` blocks
    ///   (empty when the root signed the leaf; a copy of the root among them is ignored);
    /// - `root_der`: the one root to trust, DER.
    ///
    /// The checks, in order: the chain signs up to `root_der` and the certificate is valid now, for
    /// client authentication, with no unknown critical extension (rustls-webpki); its key is this
    /// request's; its CN and SANs are exactly this request's; both federation extensions are present
    /// under `registry`'s OIDs, strictly DER-encoded (mosaic-oid), and equal to `identity`.
    ///
    /// # Errors
    /// [`CaError::CertParse`] when a PEM or a certificate cannot be read (or `certificate_pem` does
    /// not hold exactly one certificate), [`CaError::Config`] when `root_der` is not a usable trust
    /// anchor, [`CaError::ChainInvalid`], [`CaError::KeyMismatch`], [`CaError::SubjectMismatch`],
    /// [`CaError::OidMissing`], [`CaError::OidMalformed`] or [`CaError::OidMismatch`].
    pub fn verify_issued(
        &self,
        certificate_pem: &str,
        chain_pem: &str,
        root_der: &[u8],
        identity: &FederationIdentity,
        registry: &OidRegistry,
    ) -> Result<IssuedCertificate, CaError> {
        let leaf_der = verify::single_certificate_from_pem(certificate_pem, "the certificate")?;
        let intermediates = verify::intermediates_without_root(
            verify::certificates_from_pem(chain_pem, "the chain")?,
            root_der,
        );
        let expected = Expected {
            identity: *identity,
            names: &self.names,
            spki_der: &self.csr.spki_der,
            registry,
        };
        let mut issued = verify::verify_issued(
            root_der,
            &leaf_der,
            &intermediates,
            &expected,
            SystemTime::now(),
        )?;
        issued.key = Some(self.key_pem.clone());
        Ok(issued)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use mosaic_oid::{GrantId, SubjectUserId};

    use super::*;
    use crate::LocalCa;

    fn identity() -> FederationIdentity {
        FederationIdentity {
            grant_id: "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
                .parse::<GrantId>()
                .unwrap(),
            subject_user_id: "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11"
                .parse::<SubjectUserId>()
                .unwrap(),
        }
    }

    #[test]
    fn generates_a_request_the_crate_accepts_and_redacts_the_key() {
        let request = CertificateRequest::generate("10.0.0.1", Vec::<String>::new()).unwrap();
        assert_eq!(request.sans(), ["10.0.0.1"]);
        assert!(
            request
                .csr_pem()
                .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
        );
        assert!(
            request
                .private_key_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        // The same validator the issuers run on a caller's CSR accepts it, IP SAN included.
        let names = CertNames::new("10.0.0.1", None).unwrap();
        let validated = csr::validate(request.csr_der(), &names).unwrap();
        assert_eq!(validated.spki_der, request.public_key_der());
        let debug = format!("{request:?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");

        let err = CertificateRequest::generate("", ["x"]).unwrap_err();
        assert_eq!(err.code(), "INVALID_NAME");
        let err = CertificateRequest::generate("peer", ["a", "a"]).unwrap_err();
        assert_eq!(err.code(), "INVALID_NAME");
    }

    #[test]
    fn a_copy_of_the_root_in_the_chain_is_ignored() {
        let ca = LocalCa::generate("test").unwrap();
        let request = CertificateRequest::generate("peer-1.example", ["peer-1.example"]).unwrap();
        let issued = ca.issue_now(&request.issue_request(identity())).unwrap();
        let chain = format!("{}{}", issued.chain_pem, ca.root_pem());
        let verified = request
            .verify_issued(
                &issued.cert_pem,
                &chain,
                ca.root_der(),
                &identity(),
                &OidRegistry::DEVELOPMENT,
            )
            .unwrap();
        assert_eq!(verified.serial, issued.serial);
    }
}
