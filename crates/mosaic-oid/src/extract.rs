//! Strict extraction of the federation identity from a certificate.
//!
//! The fast path ([`FederationIdentity::from_der`]) walks the certificate's DER with a small strict
//! TLV cursor (`tlv.rs`, which says why it is not `der::SliceReader`) to the extensions, skipping
//! every other field without decoding it and without allocating. The framing it walks over is still
//! checked: every TLV must have the tag RFC 5280 puts there and a DER length (no indefinite or
//! non-minimal lengths), and no byte may follow the certificate or any of its parts.

use std::borrow::Cow;

use const_oid::AssociatedOid;
use x509_cert::{
    Certificate,
    ext::Extension,
    request::{CertReq, ExtensionReq},
};

use crate::{
    Error,
    registry::{FederationField, OidRegistry},
    tlv::Cursor,
    value::{GrantId, SubjectUserId, decode_uuid_value},
};

/// The identity a federation certificate carries: which grant authorises it, on whose behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FederationIdentity {
    /// `mosaic.federation.grantId`.
    pub grant_id: GrantId,
    /// `mosaic.federation.subjectUserId`.
    pub subject_user_id: SubjectUserId,
}

/// Extracts the identity from a DER certificate with the development registry.
///
/// Shorthand for [`FederationIdentity::from_der`] with [`OidRegistry::DEVELOPMENT`].
///
/// # Errors
/// See [`FederationIdentity::from_der`].
pub fn extract_identity(cert_der: &[u8]) -> Result<FederationIdentity, Error> {
    FederationIdentity::from_der(cert_der, &OidRegistry::DEVELOPMENT)
}

impl FederationIdentity {
    /// Extracts both ids from a DER certificate, strictly and without allocating on success.
    ///
    /// # Errors
    /// - [`Error::MalformedCertificate`] if the input is not one DER certificate;
    /// - for each federation extension, in OID order: [`Error::MissingExtension`],
    ///   [`Error::DuplicateExtension`], or the value's own error ([`Error::WrongStringTag`],
    ///   [`Error::ZeroLength`], [`Error::WrongLength`], [`Error::NotDer`], [`Error::Truncated`],
    ///   [`Error::TrailingBytes`], [`Error::EmptyValue`], [`Error::NotCanonicalUuid`]).
    pub fn from_der(cert_der: &[u8], registry: &OidRegistry) -> Result<Self, Error> {
        let found = walk_to_federation_extensions(cert_der, registry)?;
        Self::from_found(&found, registry)
    }

    /// Extracts both ids from the first `CERTIFICATE` block of a PEM input (text before it, and
    /// further blocks such as the issuing chain after it, are ignored).
    ///
    /// # Errors
    /// [`Error::Pem`] if there is no well-formed `CERTIFICATE` block, then as [`Self::from_der`].
    pub fn from_pem(pem: &[u8], registry: &OidRegistry) -> Result<Self, Error> {
        let der = certificate_der_from_pem(pem)?;
        Self::from_der(&der, registry)
    }

    /// Extracts both ids from a certificate given as DER or PEM (DER starts with a SEQUENCE tag,
    /// `0x30`; anything else is read as PEM).
    ///
    /// # Errors
    /// As [`Self::from_der`] or [`Self::from_pem`].
    pub fn from_pem_or_der(bytes: &[u8], registry: &OidRegistry) -> Result<Self, Error> {
        Self::from_der(&certificate_der(bytes)?, registry)
    }

    /// Extracts both ids from an already decoded certificate, with the same strictness.
    ///
    /// # Errors
    /// As [`Self::from_der`], except that [`Error::MalformedCertificate`] cannot occur.
    pub fn from_certificate(cert: &Certificate, registry: &OidRegistry) -> Result<Self, Error> {
        let extensions = cert
            .tbs_certificate()
            .extensions()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Self::from_extensions(extensions, registry)
    }

    /// Extracts both ids from the extensions a certification request (CSR) asks for, with the same
    /// strictness, e.g. for an issuer that checks a CSR before signing it.
    ///
    /// # Errors
    /// [`Error::MalformedCertificate`] if the `extensionRequest` attribute cannot be decoded or
    /// appears more than once, then as [`Self::from_extensions`].
    pub fn from_csr(csr: &CertReq, registry: &OidRegistry) -> Result<Self, Error> {
        let mut requested = csr
            .info
            .attributes
            .iter()
            .filter(|attribute| attribute.oid == ExtensionReq::OID);
        let Some(attribute) = requested.next() else {
            return Self::from_extensions(&[], registry);
        };
        if requested.next().is_some() || attribute.values.len() != 1 {
            return Err(Error::malformed(
                "the CSR has more than one extensionRequest attribute or value",
            ));
        }
        let mut extensions = Vec::new();
        for value in attribute.values.iter() {
            let request: Vec<Extension> = value.decode_as().map_err(|e| {
                Error::malformed(format!(
                    "the CSR's extensionRequest is not a list of extensions: {e}"
                ))
            })?;
            extensions.extend(request);
        }
        Self::from_extensions(&extensions, registry)
    }

    /// Extracts both ids from a list of decoded extensions (of a certificate or a CSR).
    ///
    /// # Errors
    /// For each federation extension, in OID order: [`Error::MissingExtension`],
    /// [`Error::DuplicateExtension`], or the value's own error.
    pub fn from_extensions(
        extensions: &[Extension],
        registry: &OidRegistry,
    ) -> Result<Self, Error> {
        let mut found = [Found::default(); 2];
        for ext in extensions {
            for (slot, field) in found.iter_mut().zip(FederationField::ALL) {
                if ext.extn_id == registry.oid(field) {
                    // `der` already refused a non-DER `critical` BOOLEAN while decoding.
                    slot.record(ext.extn_value.as_bytes(), false);
                }
            }
        }
        Self::from_found(&found, registry)
    }

    /// The two non-critical extensions for a certificate or CSR builder, under the registry's OIDs.
    ///
    /// # Errors
    /// [`Error::Encode`] only if an OCTET STRING cannot be formed (it always can).
    pub fn extensions(&self, registry: &OidRegistry) -> Result<[Extension; 2], Error> {
        Ok([
            self.grant_id.extension(registry)?,
            self.subject_user_id.extension(registry)?,
        ])
    }

    fn from_found(found: &[Found<'_>; 2], registry: &OidRegistry) -> Result<Self, Error> {
        let [grant, subject] = found;
        Ok(FederationIdentity {
            grant_id: GrantId::new(grant.decode(registry, FederationField::GrantId)?),
            subject_user_id: SubjectUserId::new(
                subject.decode(registry, FederationField::SubjectUserId)?,
            ),
        })
    }
}

/// What the walk found for one federation OID.
#[derive(Clone, Copy, Default)]
struct Found<'a> {
    /// The first occurrence's `extnValue` contents.
    value: Option<&'a [u8]>,
    /// How many extensions carry the OID.
    count: usize,
    /// The first occurrence encoded its `critical` BOOLEAN in a way DER forbids.
    critical_not_der: bool,
}

impl<'a> Found<'a> {
    fn record(&mut self, value: &'a [u8], critical_not_der: bool) {
        if self.value.is_none() {
            self.value = Some(value);
            self.critical_not_der = critical_not_der;
        }
        self.count = self.count.saturating_add(1);
    }

    fn decode(&self, registry: &OidRegistry, field: FederationField) -> Result<uuid::Uuid, Error> {
        let extension = registry.extension_id(field);
        match (self.value, self.count) {
            (None, _) | (_, 0) => Err(Error::MissingExtension { extension }),
            (Some(_), count) if count > 1 => Err(Error::DuplicateExtension { extension, count }),
            (Some(_), _) if self.critical_not_der => Err(Error::NotDer {
                extension,
                reason: "the critical flag is an explicit FALSE or a non-canonical BOOLEAN; DER omits \
                         the DEFAULT FALSE and encodes TRUE as 0xFF",
            }),
            (Some(value), _) => decode_uuid_value(value, extension),
        }
    }
}

/// Reads one TLV that must have `tag` (a DER identifier octet), returning its contents.
#[inline]
fn take<'a>(c: &mut Cursor<'a>, tag: u8, what: &'static str) -> Result<Cursor<'a>, Error> {
    let offset = c.offset();
    let tlv = c
        .next_tlv()
        .map_err(|e| Error::malformed(format!("{what}: {} (at byte {})", e.reason, e.offset)))?;
    if tlv.tag != tag {
        return Err(Error::malformed(format!(
            "expected {what} (tag 0x{tag:02X}) at byte {offset}, found tag 0x{:02X}",
            tlv.tag
        )));
    }
    Ok(tlv.contents)
}

fn finish(c: Cursor<'_>, what: &'static str) -> Result<(), Error> {
    if c.is_empty() {
        Ok(())
    } else {
        Err(Error::malformed(format!(
            "{} unexpected byte(s) after {what} (at byte {})",
            c.len(),
            c.offset()
        )))
    }
}

// DER identifier octets of the fields the walk passes.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const OBJECT_IDENTIFIER: u8 = 0x06;
const VERSION: u8 = 0xA0; // [0] EXPLICIT
const ISSUER_UNIQUE_ID: u8 = 0x81; // [1] IMPLICIT
const SUBJECT_UNIQUE_ID: u8 = 0x82; // [2] IMPLICIT
const EXTENSIONS: u8 = 0xA3; // [3] EXPLICIT

/// Walks `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }` down to
/// `tbsCertificate.extensions` and records every extension with one of the registry's OIDs.
fn walk_to_federation_extensions<'a>(
    cert_der: &'a [u8],
    registry: &OidRegistry,
) -> Result<[Found<'a>; 2], Error> {
    if cert_der.is_empty() {
        return Err(Error::malformed("the input is empty"));
    }
    let mut outer = Cursor::new(cert_der);
    let mut cert = take(&mut outer, SEQUENCE, "Certificate")?;
    finish(outer, "the Certificate")?;

    let mut tbs = take(&mut cert, SEQUENCE, "tbsCertificate")?;
    take(&mut cert, SEQUENCE, "signatureAlgorithm")?;
    take(&mut cert, BIT_STRING, "signatureValue")?;
    finish(cert, "signatureValue")?;

    if tbs.peek_tag() == Some(VERSION) {
        take(&mut tbs, VERSION, "version [0]")?;
    }
    take(&mut tbs, INTEGER, "serialNumber")?;
    take(&mut tbs, SEQUENCE, "signature")?;
    take(&mut tbs, SEQUENCE, "issuer")?;
    take(&mut tbs, SEQUENCE, "validity")?;
    take(&mut tbs, SEQUENCE, "subject")?;
    take(&mut tbs, SEQUENCE, "subjectPublicKeyInfo")?;
    if tbs.peek_tag() == Some(ISSUER_UNIQUE_ID) {
        take(&mut tbs, ISSUER_UNIQUE_ID, "issuerUniqueID [1]")?;
    }
    if tbs.peek_tag() == Some(SUBJECT_UNIQUE_ID) {
        take(&mut tbs, SUBJECT_UNIQUE_ID, "subjectUniqueID [2]")?;
    }
    let oids = FederationField::ALL.map(|field| registry.oid(field));
    let mut found = [Found::default(); 2];
    if tbs.peek_tag() == Some(EXTENSIONS) {
        let mut explicit = take(&mut tbs, EXTENSIONS, "extensions [3]")?;
        let mut list = take(&mut explicit, SEQUENCE, "Extensions")?;
        finish(explicit, "Extensions")?;
        while !list.is_empty() {
            let mut extension = take(&mut list, SEQUENCE, "Extension")?;
            let oid = take(&mut extension, OBJECT_IDENTIFIER, "extnID")?;
            let critical = if extension.peek_tag() == Some(BOOLEAN) {
                Some(take(&mut extension, BOOLEAN, "critical")?)
            } else {
                None
            };
            let value = take(&mut extension, OCTET_STRING, "extnValue")?;
            finish(extension, "an Extension")?;
            for (slot, registered) in found.iter_mut().zip(&oids) {
                if oid.as_slice() == registered.as_bytes() {
                    // DER: DEFAULT FALSE is omitted, TRUE is exactly 0xFF.
                    let critical_not_der = critical.is_some_and(|c| c.as_slice() != [0xFF]);
                    slot.record(value.as_slice(), critical_not_der);
                }
            }
        }
    }
    finish(tbs, "tbsCertificate")?;
    Ok(found)
}

/// The DER bytes of the first `CERTIFICATE` block in a PEM input.
///
/// Explanatory text before the block and anything after it (for example the rest of a chain) is
/// ignored; the block itself is decoded with RFC 7468's strict grammar.
///
/// # Errors
/// [`Error::Pem`] if there is no `CERTIFICATE` block or it is not well-formed.
pub fn certificate_der_from_pem(pem: &[u8]) -> Result<Vec<u8>, Error> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    // Locating the block is hand-written: pem-rfc7468 decodes one whole document, while certificate
    // files routinely carry the chain after the leaf.
    let Some(start) = find(pem, BEGIN) else {
        let detail = match der::pem::decode_label(pem) {
            Ok(label) => format!("found a PEM block labelled {label:?}, expected CERTIFICATE"),
            Err(_) => "no -----BEGIN CERTIFICATE----- line found".to_owned(),
        };
        return Err(Error::Pem { detail });
    };
    let block = pem.get(start..).unwrap_or_default();
    let Some(end) = find(block, END) else {
        return Err(Error::Pem {
            detail: "the CERTIFICATE block has no -----END CERTIFICATE----- line".to_owned(),
        });
    };
    let block = block
        .get(..end.saturating_add(END.len()))
        .unwrap_or_default();
    let (label, der) = der::pem::decode_vec(block).map_err(|e| Error::Pem {
        detail: format!("the CERTIFICATE block is not valid PEM: {e}"),
    })?;
    debug_assert_eq!(label, "CERTIFICATE");
    Ok(der)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The DER bytes of a certificate given as DER or PEM (DER starts with a SEQUENCE tag, `0x30`;
/// anything else is read as PEM, see [`certificate_der_from_pem`]). DER input is borrowed as is.
///
/// # Errors
/// [`Error::MalformedCertificate`] if the input is empty, [`Error::Pem`] if it is neither DER nor a
/// PEM certificate.
pub fn certificate_der(bytes: &[u8]) -> Result<Cow<'_, [u8]>, Error> {
    if bytes.is_empty() {
        return Err(Error::malformed("the input is empty"));
    }
    if bytes.first() == Some(&0x30) {
        Ok(Cow::Borrowed(bytes))
    } else {
        certificate_der_from_pem(bytes).map(Cow::Owned)
    }
}
