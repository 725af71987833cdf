//! What to issue ([`IssueRequest`]), what comes back ([`IssuedCertificate`]), and the checks both
//! issuers run before any key is generated or any request is sent.

use std::{fmt, time::Duration, time::SystemTime};

use mosaic_oid::{FederationIdentity, GrantId, SubjectUserId};
use zeroize::Zeroizing;

use crate::{
    csr::{self, CertNames, PreparedCsr},
    error::{CaError, shorten},
};

/// step-ca's default bounds for a TLS certificate's validity (`minTLSCertDuration`,
/// `maxTLSCertDuration`), used unless configured otherwise.
pub const DEFAULT_MIN_VALIDITY: Duration = Duration::from_secs(5 * 60);
/// See [`DEFAULT_MIN_VALIDITY`].
pub const DEFAULT_MAX_VALIDITY: Duration = Duration::from_secs(24 * 60 * 60);

/// A certificate to issue: the federation identity, the name, and optionally SANs, the caller's own
/// CSR and a validity.
///
/// The ids are kept as given and checked by the issuer *before* anything else happens (no key is
/// generated, no request sent): a value that is not a canonical UUID gives
/// [`CaError::InvalidGrantId`] or [`CaError::InvalidSubjectUserId`].
#[derive(Clone, Debug)]
pub struct IssueRequest {
    grant_id: String,
    subject_user_id: String,
    common_name: String,
    sans: Vec<String>,
    csr: Option<Vec<u8>>,
    validity: Option<Duration>,
}

impl IssueRequest {
    /// A request for `common_name` on behalf of the grant and user (ids as canonical UUID text).
    ///
    /// Without [`with_sans`](Self::with_sans) the certificate's only SAN is the common name, as
    /// step-ca does; without [`with_csr`](Self::with_csr) the issuer generates a fresh P-256 key.
    pub fn new(
        grant_id: impl Into<String>,
        subject_user_id: impl Into<String>,
        common_name: impl Into<String>,
    ) -> Self {
        Self {
            grant_id: grant_id.into(),
            subject_user_id: subject_user_id.into(),
            common_name: common_name.into(),
            sans: Vec::new(),
            csr: None,
            validity: None,
        }
    }

    /// A request for an identity that is already typed.
    pub fn for_identity(identity: FederationIdentity, common_name: impl Into<String>) -> Self {
        Self::new(
            identity.grant_id.to_string(),
            identity.subject_user_id.to_string(),
            common_name,
        )
    }

    /// The exact SANs (DNS names, IP addresses, e-mail addresses, URIs). The CSR must list exactly
    /// these.
    #[must_use]
    pub fn with_sans<S: Into<String>>(mut self, sans: impl IntoIterator<Item = S>) -> Self {
        self.sans = sans.into_iter().map(Into::into).collect();
        self
    }

    /// Use the caller's own PKCS#10 request (PEM or DER) instead of generating a key. It must be
    /// self-signed with P-256/SHA-256 and name exactly the requested CN and SANs.
    #[must_use]
    pub fn with_csr(mut self, csr_pem_or_der: impl Into<Vec<u8>>) -> Self {
        self.csr = Some(csr_pem_or_der.into());
        self
    }

    /// The validity to ask for; without it the provisioner's default applies (24 h for step-ca).
    #[must_use]
    pub fn with_validity(mut self, validity: Duration) -> Self {
        self.validity = Some(validity);
        self
    }

    /// The grant id as given.
    #[must_use]
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }

    /// The subject user id as given.
    #[must_use]
    pub fn subject_user_id(&self) -> &str {
        &self.subject_user_id
    }

    /// The common name.
    #[must_use]
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// The requested validity, if any.
    #[must_use]
    pub fn validity(&self) -> Option<Duration> {
        self.validity
    }
}

/// A certificate that has passed verification: it chains to the configured root and is valid now,
/// its key is the CSR's, its names are the requested ones and it carries both federation
/// extensions with the requested values.
///
/// `Debug` never shows the private key.
#[non_exhaustive]
pub struct IssuedCertificate {
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The intermediate certificate(s) between the leaf and the root, PEM, leaf-side first. The root
    /// itself is not included.
    pub chain_pem: String,
    /// The leaf certificate, DER.
    pub cert_der: Vec<u8>,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// The identity the certificate carries (equal to the requested one).
    pub identity: FederationIdentity,
    /// The private key as PKCS#8 PEM, when the issuer generated it (not when the caller sent a CSR).
    pub key: Option<Zeroizing<String>>,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("identity", &self.identity)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// What is wrong with an id's text, from mosaic-oid's `FromStr` (the one parser of id text).
fn id_text_reason(error: mosaic_oid::Error) -> String {
    match error {
        mosaic_oid::Error::InvalidIdText { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Checks both ids: exactly the canonical lowercase hyphenated text (`GrantId`'s `FromStr`).
pub(crate) fn parse_identity(
    grant_id: &str,
    subject_user_id: &str,
) -> Result<FederationIdentity, CaError> {
    let grant = grant_id
        .parse::<GrantId>()
        .map_err(|e| CaError::InvalidGrantId {
            value: shorten(grant_id),
            reason: id_text_reason(e),
        })?;
    let subject =
        subject_user_id
            .parse::<SubjectUserId>()
            .map_err(|e| CaError::InvalidSubjectUserId {
                value: shorten(subject_user_id),
                reason: id_text_reason(e),
            })?;
    Ok(FederationIdentity {
        grant_id: grant,
        subject_user_id: subject,
    })
}

/// A request whose every part has been checked, with its CSR.
pub(crate) struct CheckedRequest {
    pub(crate) identity: FederationIdentity,
    pub(crate) names: CertNames,
    pub(crate) csr: PreparedCsr,
    pub(crate) validity: Option<Duration>,
}

/// The checks both issuers run first, in this order: the ids, the names, the validity, then the CSR
/// (validated, or generated with a fresh key).
pub(crate) fn check(
    request: &IssueRequest,
    bounds: (Duration, Duration),
) -> Result<CheckedRequest, CaError> {
    let identity = parse_identity(&request.grant_id, &request.subject_user_id)?;
    let names = CertNames::new(&request.common_name, Some(&request.sans))?;
    if let Some(requested) = request.validity {
        let (min, max) = bounds;
        if requested < min || requested > max {
            return Err(CaError::InvalidValidity {
                requested,
                min,
                max,
            });
        }
    }
    let csr = match &request.csr {
        Some(bytes) => csr::validate(bytes, &names)?,
        None => csr::generate(&names)?,
    };
    Ok(CheckedRequest {
        identity,
        names,
        csr,
        validity: request.validity,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const GRANT: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const USER: &str = "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11";

    #[test]
    fn only_canonical_uuids_pass() {
        parse_identity(GRANT, USER).unwrap();
        for bad in [
            "",
            "not-a-uuid",
            "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
            "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
            "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "3f2504e04f8941d39a0c0305e82c3301",
            "3f2504e0-4f89-41d3-9a0c-0305e82c330",
            "3f2504e0-4f89-41d3-9a0c-0305e82c33011",
            "3f2504e0_4f89_41d3_9a0c_0305e82c3301",
            "3f2504e0-4f89-41d3-9a0c-0305e82c33\u{e9}",
        ] {
            let err = parse_identity(bad, USER).unwrap_err();
            assert_eq!(err.code(), "INVALID_GRANT_ID", "{bad:?}");
            assert!(!err.remediation().is_empty());
            let err = parse_identity(GRANT, bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_SUBJECT_USER_ID", "{bad:?}");
        }
    }

    #[test]
    fn checks_run_in_order_and_bounds_apply() {
        let bounds = (DEFAULT_MIN_VALIDITY, DEFAULT_MAX_VALIDITY);
        // Both ids bad: the grant id is reported first.
        let err = check(&IssueRequest::new("x", "y", ""), bounds)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_GRANT_ID");
        let err = check(&IssueRequest::new(GRANT, USER, ""), bounds)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(err.code(), "INVALID_NAME");
        let err = check(
            &IssueRequest::new(GRANT, USER, "peer").with_validity(Duration::from_secs(60)),
            bounds,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_VALIDITY");
        let err = check(
            &IssueRequest::new(GRANT, USER, "peer").with_validity(Duration::from_secs(25 * 3600)),
            bounds,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_VALIDITY");
        let err = check(
            &IssueRequest::new(GRANT, USER, "peer").with_csr(b"junk".to_vec()),
            bounds,
        )
        .map(|_| ())
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_CSR");
        let ok = check(
            &IssueRequest::new(GRANT, USER, "peer").with_validity(DEFAULT_MIN_VALIDITY),
            bounds,
        )
        .unwrap();
        assert_eq!(ok.identity.grant_id.to_string(), GRANT);
        assert!(ok.csr.key_pem.is_some());
    }
}
