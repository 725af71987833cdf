//! The one error type of this crate, with a stable [`CaError::code`] and a [`CaError::remediation`].

use std::time::Duration;

/// Everything that can go wrong while configuring the client, issuing or verifying a certificate.
///
/// Every variant has a stable machine-readable [`code`](CaError::code) for callers to branch on and a
/// [`remediation`](CaError::remediation) that tells a person what to do. No variant ever carries the
/// provisioner password, a private key or a token: messages name *what* was wrong, never the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// The grant id is not a canonical (lowercase, hyphenated, 36-character) UUID.
    #[error("grant id {value:?} is not a canonical UUID: {reason}")]
    InvalidGrantId {
        /// The offending value, shortened to at most 64 characters.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The subject user id is not a canonical (lowercase, hyphenated, 36-character) UUID.
    #[error("subject user id {value:?} is not a canonical UUID: {reason}")]
    InvalidSubjectUserId {
        /// The offending value, shortened to at most 64 characters.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate name (CN) or a subject alternative name is unusable.
    #[error("invalid certificate name: {0}")]
    InvalidName(String),
    /// The requested validity is outside the provisioner's bounds.
    #[error(
        "requested validity of {requested:?} is outside the provisioner's bounds ({min:?} to {max:?})"
    )]
    InvalidValidity {
        /// What was asked.
        requested: Duration,
        /// The shortest validity the provisioner allows.
        min: Duration,
        /// The longest validity the provisioner allows.
        max: Duration,
    },
    /// A caller-supplied CSR is malformed, badly signed or does not match the request.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// The client configuration is incomplete or wrong.
    #[error("configuration error: {0}")]
    Config(String),
    /// The configured root certificate's SHA-256 fingerprint is not the pinned one.
    #[error("the root certificate's SHA-256 fingerprint is {actual}, but {expected} was pinned")]
    RootFingerprintMismatch {
        /// The pinned fingerprint (hex).
        expected: String,
        /// The fingerprint of the configured root (hex).
        actual: String,
    },
    /// The provisioner key could not be decrypted or is not a usable P-256 JWK.
    #[error("provisioner key: {0}")]
    KeyDecrypt(String),
    /// The CA could not be reached (connection refused, DNS, timeout, reset).
    #[error("step-ca at {url} is unreachable: {reason}")]
    CaUnreachable {
        /// The CA URL (never contains credentials).
        url: String,
        /// What happened.
        reason: String,
    },
    /// The TLS handshake with the CA failed (wrong root, name mismatch, ...).
    #[error("TLS to step-ca at {url} failed: {reason}")]
    CaTls {
        /// The CA URL (never contains credentials).
        url: String,
        /// The TLS library's explanation.
        reason: String,
    },
    /// The CA refused the token (HTTP 401): wrong key, wrong provisioner, expired or reused token.
    #[error("step-ca refused the token (HTTP {status}): {message}")]
    CaUnauthorized {
        /// The HTTP status.
        status: u16,
        /// The CA's own `message`.
        message: String,
    },
    /// The CA refused to sign (HTTP 400, 403, 5xx): template failure, validity, SANs, ...
    #[error("step-ca refused to sign (HTTP {status}): {message}")]
    CaRejected {
        /// The HTTP status.
        status: u16,
        /// The CA's own `message`.
        message: String,
    },
    /// The CA answered with something that is not a step-ca sign response.
    #[error("step-ca sent an unexpected response: {0}")]
    CaBadResponse(String),
    /// A returned certificate could not be parsed.
    #[error("could not parse the issued certificate: {0}")]
    CertParse(String),
    /// A federation extension is missing from the issued certificate.
    #[error("the issued certificate lacks the {name} extension ({oid})")]
    OidMissing {
        /// The extension's OID.
        oid: String,
        /// Its symbolic name.
        name: String,
    },
    /// A federation extension is present but not well formed.
    #[error("the issued certificate's {name} extension ({oid}) is malformed: {reason}")]
    OidMalformed {
        /// The extension's OID.
        oid: String,
        /// Its symbolic name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A federation extension carries a different value from the one requested.
    #[error("the issued certificate's {name} is {actual}, but {expected} was requested")]
    OidMismatch {
        /// Its symbolic name.
        name: String,
        /// The requested value.
        expected: String,
        /// The value in the certificate.
        actual: String,
    },
    /// The certificate does not chain to the configured root, or is outside its validity.
    #[error("the issued certificate does not verify against the configured root: {0}")]
    ChainInvalid(String),
    /// The certificate's public key is not the CSR's.
    #[error("the issued certificate's public key is not the one in the CSR")]
    KeyMismatch,
    /// The certificate's subject or SANs are not what was requested.
    #[error("the issued certificate's names are not the requested ones: {0}")]
    SubjectMismatch(String),
    /// The local machine failed (random number generator, encoding).
    #[error("internal error: {0}")]
    Internal(String),
}

impl CaError {
    /// A stable, machine-readable code (`SCREAMING_SNAKE_CASE`) for callers to branch on.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidGrantId { .. } => "INVALID_GRANT_ID",
            Self::InvalidSubjectUserId { .. } => "INVALID_SUBJECT_USER_ID",
            Self::InvalidName(_) => "INVALID_NAME",
            Self::InvalidValidity { .. } => "INVALID_VALIDITY",
            Self::InvalidCsr(_) => "INVALID_CSR",
            Self::Config(_) => "CONFIG",
            Self::RootFingerprintMismatch { .. } => "ROOT_FINGERPRINT_MISMATCH",
            Self::KeyDecrypt(_) => "KEY_DECRYPT",
            Self::CaUnreachable { .. } => "CA_UNREACHABLE",
            Self::CaTls { .. } => "CA_TLS",
            Self::CaUnauthorized { .. } => "CA_UNAUTHORIZED",
            Self::CaRejected { .. } => "CA_REJECTED",
            Self::CaBadResponse(_) => "CA_BAD_RESPONSE",
            Self::CertParse(_) => "CERT_PARSE",
            Self::OidMissing { .. } => "OID_MISSING",
            Self::OidMalformed { .. } => "OID_MALFORMED",
            Self::OidMismatch { .. } => "OID_MISMATCH",
            Self::ChainInvalid(_) => "CHAIN_INVALID",
            Self::KeyMismatch => "KEY_MISMATCH",
            Self::SubjectMismatch(_) => "SUBJECT_MISMATCH",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// What a person should do about it.
    #[must_use]
    pub fn remediation(&self) -> &'static str {
        match self {
            Self::InvalidGrantId { .. } => {
                "Pass the grant's id exactly as stored in federation_grants.id: a lowercase, hyphenated \
                 UUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301 (no braces, no urn:uuid: prefix)."
            }
            Self::InvalidSubjectUserId { .. } => {
                "Pass the local user's id as a lowercase, hyphenated UUID such as \
                 3f2504e0-4f89-41d3-9a0c-0305e82c3301 (no braces, no urn:uuid: prefix)."
            }
            Self::InvalidName(_) => {
                "Use a non-empty common name of at most 64 ASCII characters without control \
                 characters (a DNS-style name such as peer-1.example.org is best), and list only DNS \
                 names, IP addresses, e-mail addresses or URIs as SANs."
            }
            Self::InvalidValidity { .. } => {
                "Ask for a validity inside the provisioner's claims (minTLSCertDuration .. \
                 maxTLSCertDuration in step-ca's ca.json, 5m .. 24h by default), or configure the \
                 client's bounds to match the provisioner."
            }
            Self::InvalidCsr(_) => {
                "Send a PEM or DER PKCS#10 request signed with its own P-256 key (ecdsa-with-SHA256), \
                 whose CN is the requested name and whose SANs are exactly the requested SANs; or let \
                 the client generate the key and CSR."
            }
            Self::Config(_) => {
                "Set STEP_CA_URL (https://...), STEP_CA_PROVISIONER_KEY_JSON, \
                 STEP_CA_PROVISIONER_PASSWORD (when the key is encrypted) and STEP_CA_ROOT_CERT_PATH \
                 as described in the setup guide, 'Step 2: Step-CA Bootstrap'."
            }
            Self::RootFingerprintMismatch { .. } => {
                "STEP_CA_ROOT_CERT_PATH points at a different root than the pinned fingerprint: fetch \
                 the root again from the CA (certs/root_ca.crt) and compare it with `openssl x509 \
                 -noout -fingerprint -sha256`, then fix the file or the pin."
            }
            Self::KeyDecrypt(_) => {
                "Check STEP_CA_PROVISIONER_PASSWORD (the password the provisioner key was encrypted \
                 with, infra/step-ca/dev-password in development) and that \
                 STEP_CA_PROVISIONER_KEY_JSON is the complete, unmodified secrets/mosaic-fed.json \
                 (a P-256 JWK, plain or JWE-encrypted)."
            }
            Self::CaUnreachable { .. } => {
                "Start step-ca (`infra/native/up --only step-ca`, or `docker compose -f \
                 docker-compose.federated.yml --profile federated up -d step-ca`), check STEP_CA_URL's \
                 host and port, and `curl --cacert $STEP_CA_ROOT_CERT_PATH $STEP_CA_URL/health`."
            }
            Self::CaTls { .. } => {
                "STEP_CA_ROOT_CERT_PATH must be the root of the CA at STEP_CA_URL, and the URL's host \
                 must be one of the CA's dnsNames: re-extract certs/root_ca.crt from this CA."
            }
            Self::CaUnauthorized { .. } => {
                "The CA did not accept the one-time token: check that STEP_CA_PROVISIONER_KEY_JSON is \
                 the key of the `mosaic-fed` JWK provisioner of this CA, that the clocks agree within \
                 a minute, and never reuse a token (each issuance needs a fresh one)."
            }
            Self::CaRejected { .. } => {
                "Read the CA's message: a template failure means the token lacked \
                 mosaic_grant_id/mosaic_subject_user_id or the provisioner's templateFile is wrong \
                 (infra/step-ca/templates/federation.tpl); a validity or SAN refusal means the request \
                 is outside the provisioner's policy. The CA log has the details."
            }
            Self::CaBadResponse(_) => {
                "STEP_CA_URL must point at step-ca itself (not a proxy or another service); check the \
                 URL and the CA's version and log."
            }
            Self::CertParse(_) => {
                "The CA returned a certificate this client cannot parse: check the provisioner's X.509 \
                 template produces valid extensions, and report the CA version."
            }
            Self::OidMissing { .. } => {
                "The CA issued a certificate without the federation extensions: set the provisioner's \
                 options.x509.templateFile to infra/step-ca/templates/federation.tpl and restart the \
                 CA. The certificate was discarded."
            }
            Self::OidMalformed { .. } => {
                "The provisioner's template encodes a federation extension wrongly: use \
                 infra/step-ca/templates/federation.tpl (a DER UTF8String of the UUID). The \
                 certificate was discarded."
            }
            Self::OidMismatch { .. } => {
                "The CA put other identities into the certificate than requested: check the \
                 provisioner's template reads .Token.mosaic_grant_id and .Token.mosaic_subject_user_id. \
                 The certificate was discarded."
            }
            Self::ChainInvalid(_) => {
                "The issued certificate does not chain to STEP_CA_ROOT_CERT_PATH or is not valid now: \
                 check that the root file belongs to this CA, that the intermediate is not expired, and \
                 that the clocks agree. The certificate was discarded."
            }
            Self::KeyMismatch => {
                "The CA signed a different public key than the CSR's: this must never happen with \
                 step-ca; check STEP_CA_URL points at the real CA. The certificate was discarded."
            }
            Self::SubjectMismatch(_) => {
                "The CA's template changed the subject or SANs: the federation template must keep the \
                 CSR's subject and SANs. The certificate was discarded."
            }
            Self::Internal(_) => {
                "Retry; if it persists, the operating system's random number generator or memory is \
                 failing."
            }
        }
    }
}

/// Shortens a caller-supplied value for inclusion in an error message.
pub(crate) fn shorten(value: &str) -> String {
    const MAX: usize = 64;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// Describes a JSON error by kind and position only: serde_json's own messages can quote the
/// input, and the input may be a private key.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "JSON syntax error",
        serde_json::error::Category::Data => "a member has the wrong type or is missing",
        serde_json::error::Category::Eof => "the JSON ends early",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}
