//! The crate's one error type.

use crate::registry::{ExtensionId, FederationField};

/// What went wrong while reading or writing a federation identity.
///
/// Every variant about an extension names its OID and symbolic name (through [`ExtensionId`]) and
/// says what is wrong; [`Error::remediation`] says what to do about it, and [`Error::code`] is a
/// stable machine-readable name for callers that branch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The certificate has no extension with this OID.
    #[error("certificate has no extension {extension}")]
    MissingExtension {
        /// The extension that was looked for.
        extension: ExtensionId,
    },

    /// The certificate carries the extension more than once (RFC 5280 forbids it).
    #[error("certificate carries extension {extension} {count} times; it must appear exactly once")]
    DuplicateExtension {
        /// The repeated extension.
        extension: ExtensionId,
        /// How many times it appears.
        count: usize,
    },

    /// The extension value is an ASN.1 string (or other value) with the wrong tag.
    #[error(
        "extension {extension}: value is {} (tag 0x{tag:02X}), expected a UTF8String (tag 0x0C)",
        tag_name(*tag)
    )]
    WrongStringTag {
        /// The extension.
        extension: ExtensionId,
        /// The tag byte found.
        tag: u8,
    },

    /// The UTF8String is empty.
    #[error("extension {extension}: UTF8String has length 0, expected the 36 characters of a UUID")]
    ZeroLength {
        /// The extension.
        extension: ExtensionId,
    },

    /// The UTF8String has a length other than 36.
    #[error(
        "extension {extension}: UTF8String has length {length}, expected 36 (a hyphenated UUID)"
    )]
    WrongLength {
        /// The extension.
        extension: ExtensionId,
        /// The declared length.
        length: u64,
    },

    /// The value is encoded with BER rules DER forbids (long-form length for a short value,
    /// indefinite length, constructed string, explicit DEFAULT value ...).
    #[error("extension {extension}: encoding is not DER: {reason}")]
    NotDer {
        /// The extension.
        extension: ExtensionId,
        /// What is not DER.
        reason: &'static str,
    },

    /// The UTF8String declares more bytes than the extension value holds.
    #[error(
        "extension {extension}: value is truncated: the UTF8String declares {declared} bytes but {available} follow"
    )]
    Truncated {
        /// The extension.
        extension: ExtensionId,
        /// The declared length.
        declared: u64,
        /// The bytes present after the header.
        available: usize,
    },

    /// Bytes follow the UTF8String inside the extension value.
    #[error("extension {extension}: {count} trailing byte(s) after the UTF8String")]
    TrailingBytes {
        /// The extension.
        extension: ExtensionId,
        /// How many bytes follow.
        count: usize,
    },

    /// The extension value is empty: not even a tag.
    #[error("extension {extension}: the extension value is empty, expected a DER UTF8String")]
    EmptyValue {
        /// The extension.
        extension: ExtensionId,
    },

    /// The 36 characters are not a canonical (lowercase, hyphenated) UUID.
    #[error("extension {extension}: value is not a canonical UUID: {reason}")]
    NotCanonicalUuid {
        /// The extension.
        extension: ExtensionId,
        /// What is wrong with the text.
        reason: &'static str,
    },

    /// Text parsed as a [`GrantId`](crate::GrantId) or [`SubjectUserId`](crate::SubjectUserId)
    /// (`FromStr`) is not the canonical form their `Display` prints.
    #[error("{field} {value:?} is not a canonical UUID: {reason}")]
    InvalidIdText {
        /// Which id the text was meant to be.
        field: FederationField,
        /// The text as given, shortened to at most 40 characters (`…` marks a cut).
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The input is not a DER X.509 certificate (the walk to the extensions failed).
    #[error("not a DER-encoded X.509 certificate: {detail}")]
    MalformedCertificate {
        /// What is wrong, and where.
        detail: String,
    },

    /// The input is not a PEM `CERTIFICATE` block.
    #[error("not a PEM certificate: {detail}")]
    Pem {
        /// What is wrong.
        detail: String,
    },

    /// An OID arc for the registry is not usable.
    #[error("invalid OID arc {arc}: {detail}")]
    InvalidArc {
        /// The arc as given.
        arc: String,
        /// What is wrong.
        detail: String,
    },

    /// Encoding failed (for example, an output buffer is too small).
    #[error("DER encoding failed: {0}")]
    Encode(der::Error),

    /// A `der` reader failed outside a federation value (for example, bytes left over after
    /// `der::Decode::from_der_partial` input, or an input too large for a reader).
    #[error("DER decoding failed: {0}")]
    Der(#[from] der::Error),
}

impl Error {
    pub(crate) fn invalid_arc(arc: String, e: const_oid::Error) -> Self {
        Error::InvalidArc {
            arc,
            detail: e.to_string(),
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Error::MalformedCertificate {
            detail: detail.into(),
        }
    }

    /// A stable, machine-readable name of the error kind, e.g. `"missing_extension"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingExtension { .. } => "missing_extension",
            Error::DuplicateExtension { .. } => "duplicate_extension",
            Error::WrongStringTag { .. } => "wrong_string_tag",
            Error::ZeroLength { .. } => "zero_length",
            Error::WrongLength { .. } => "wrong_length",
            Error::NotDer { .. } => "not_der",
            Error::Truncated { .. } => "truncated",
            Error::TrailingBytes { .. } => "trailing_bytes",
            Error::EmptyValue { .. } => "empty_value",
            Error::NotCanonicalUuid { .. } => "not_canonical_uuid",
            Error::InvalidIdText { .. } => "invalid_id_text",
            Error::MalformedCertificate { .. } => "malformed_certificate",
            Error::Pem { .. } => "pem",
            Error::InvalidArc { .. } => "invalid_arc",
            Error::Encode(_) => "encode",
            Error::Der(_) => "der",
        }
    }

    /// The extension the error is about, if any.
    #[must_use]
    pub fn extension(&self) -> Option<&ExtensionId> {
        match self {
            Error::MissingExtension { extension }
            | Error::DuplicateExtension { extension, .. }
            | Error::WrongStringTag { extension, .. }
            | Error::ZeroLength { extension }
            | Error::WrongLength { extension, .. }
            | Error::NotDer { extension, .. }
            | Error::Truncated { extension, .. }
            | Error::TrailingBytes { extension, .. }
            | Error::EmptyValue { extension }
            | Error::NotCanonicalUuid { extension, .. } => Some(extension),
            Error::InvalidIdText { .. }
            | Error::MalformedCertificate { .. }
            | Error::Pem { .. }
            | Error::InvalidArc { .. }
            | Error::Encode(_)
            | Error::Der(_) => None,
        }
    }

    /// What the user can do about it.
    #[must_use]
    pub fn remediation(&self) -> &'static str {
        match self {
            Error::MissingExtension { .. } => {
                "issue the certificate through the step-ca provisioner that uses \
                 infra/step-ca/templates/federation.tpl with a token carrying the mosaic_grant_id and \
                 mosaic_subject_user_id claims; if your deployment uses its own PEN, configure the same \
                 arc in the template and in OidRegistry"
            }
            Error::DuplicateExtension { .. } => {
                "the issuer added the extension twice: fix the certificate template (each federation \
                 OID must appear once) and re-issue the certificate"
            }
            Error::WrongStringTag { .. }
            | Error::ZeroLength { .. }
            | Error::WrongLength { .. }
            | Error::NotDer { .. }
            | Error::Truncated { .. }
            | Error::TrailingBytes { .. }
            | Error::EmptyValue { .. } => {
                "the issuer encoded the extension wrongly: the value must be exactly 0C 24 followed by the \
                 36 ASCII bytes of the UUID; fix the template (printf \"\\x0c%c%s\" (len X) X | b64enc) \
                 or the issuing code and re-issue the certificate"
            }
            Error::NotCanonicalUuid { .. } => {
                "put a lowercase hyphenated UUID (8-4-4-4-12 hex digits, as crypto.randomUUID() and \
                 uuid::Uuid print it) into the token claim and re-issue the certificate"
            }
            Error::InvalidIdText { .. } => {
                "write the id exactly as Mosaic prints it: 36 characters, lowercase hex digits with \
                 hyphens at 8-4-4-4-12 (for example 0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70); no \
                 uppercase, no braces, no urn:uuid: prefix, no surrounding spaces"
            }
            Error::MalformedCertificate { .. } => {
                "pass the certificate itself, DER-encoded, or as a PEM block starting with \
                 -----BEGIN CERTIFICATE-----; check the file is complete and not a key or a CSR"
            }
            Error::Pem { .. } => {
                "pass a PEM file with a -----BEGIN CERTIFICATE----- block, or the DER bytes of the \
                 certificate"
            }
            Error::InvalidArc { .. } => {
                "use a dotted OID such as 1.3.6.1.4.1.<your IANA PEN>, short enough that <arc>.2 fits in \
                 39 DER bytes"
            }
            Error::Encode(_) => "give the encoder a buffer of at least 38 bytes",
            Error::Der(_) => "pass exactly one DER-encoded value, with nothing before or after it",
        }
    }
}

/// The ASN.1 name of a universal tag byte, for messages.
pub(crate) fn tag_name(tag: u8) -> &'static str {
    match tag {
        0x01 => "a BOOLEAN",
        0x02 => "an INTEGER",
        0x03 => "a BIT STRING",
        0x04 => "an OCTET STRING",
        0x05 => "a NULL",
        0x06 => "an OBJECT IDENTIFIER",
        0x0C => "a UTF8String",
        0x12 => "a NumericString",
        0x13 => "a PrintableString",
        0x14 => "a TeletexString",
        0x16 => "an IA5String",
        0x17 => "a UTCTime",
        0x18 => "a GeneralizedTime",
        0x1A => "a VisibleString",
        0x1B => "a GeneralString",
        0x1C => "a UniversalString",
        0x1E => "a BMPString",
        0x30 => "a SEQUENCE",
        0x31 => "a SET",
        _ => "not a UTF8String",
    }
}
