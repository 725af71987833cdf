//! `GrantId` and `SubjectUserId`: UUIDs carried as a DER UTF8String.
//!
//! The encoding is fixed: `0C 24` followed by the 36 ASCII bytes of the lowercase hyphenated UUID, 38
//! bytes in all. Decoding accepts exactly that and nothing else; each way of deviating from it is its
//! own [`Error`] variant.

use core::{fmt, str::FromStr};

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::{Decode, EncodeValue, FixedTag, Length, Reader, Tag, Writer, asn1::OctetString};
use uuid::Uuid;
use x509_cert::{
    ext::{Criticality, Extension},
    name::Name,
};

use crate::{
    Error,
    registry::{ExtensionId, FederationField, OidRegistry},
};

/// The length of a hyphenated UUID: the UTF8String's length byte, `0x24`.
pub const UUID_TEXT_LEN: usize = 36;

/// The length of an encoded value: tag, length, 36 bytes.
pub const ENCODED_VALUE_LEN: usize = 2 + UUID_TEXT_LEN;

/// ASN.1 universal tag of UTF8String.
const UTF8_STRING_TAG: u8 = 0x0C;

/// The UTF8String tag with the constructed bit set: a BER-only form.
const UTF8_STRING_CONSTRUCTED_TAG: u8 = 0x2C;

/// Encodes a UUID as the 38-byte DER UTF8String `0C 24 <lowercase hyphenated UUID>`.
#[must_use]
pub fn encode_uuid_value(uuid: &Uuid) -> [u8; ENCODED_VALUE_LEN] {
    let mut out = [0u8; ENCODED_VALUE_LEN];
    out[0] = UTF8_STRING_TAG;
    out[1] = 0x24;
    uuid.hyphenated().encode_lower(&mut out[2..]);
    out
}

/// Decodes one extension value strictly: exactly a DER UTF8String of a canonical UUID, no more bytes.
///
/// `extension` is named in any error.
///
/// # Errors
/// One [`Error`] variant per way the value deviates from `0C 24 <36 bytes of a canonical UUID>`.
pub fn decode_uuid_value(bytes: &[u8], extension: ExtensionId) -> Result<Uuid, Error> {
    let mut rest = bytes.iter();
    read_header(extension, || rest.next().copied())?;
    let body = rest.as_slice();
    let Some((text, trailing)) = body.split_first_chunk::<UUID_TEXT_LEN>() else {
        return Err(Error::Truncated {
            extension,
            declared: 36,
            available: body.len(),
        });
    };
    if !trailing.is_empty() {
        return Err(Error::TrailingBytes {
            extension,
            count: trailing.len(),
        });
    }
    parse_canonical_uuid(text).map_err(|reason| Error::NotCanonicalUuid { extension, reason })
}

/// Reads the tag and length of the value and checks they are `0C 24`, byte by byte, so it serves
/// both slices and `der::Reader`s.
///
/// Hand-written rather than `der::Header::decode` because each deviation must become its own error
/// (PrintableString vs. zero length vs. BER long form ...), which der folds into a few generic kinds.
fn read_header(extension: ExtensionId, mut next: impl FnMut() -> Option<u8>) -> Result<(), Error> {
    let not_der = |reason| Error::NotDer { extension, reason };
    let Some(tag) = next() else {
        return Err(Error::EmptyValue { extension });
    };
    match tag {
        UTF8_STRING_TAG => {}
        UTF8_STRING_CONSTRUCTED_TAG => {
            return Err(not_der(
                "constructed UTF8String (tag 0x2C) is BER; DER requires the primitive form (tag 0x0C)",
            ));
        }
        _ => return Err(Error::WrongStringTag { extension, tag }),
    }
    let Some(first) = next() else {
        return Err(not_der("the value ends after the tag, before the length"));
    };
    let declared: u64 = match first {
        0x00..=0x7F => u64::from(first),
        0x80 => {
            return Err(not_der(
                "indefinite length (0x80) is BER; DER requires a definite length",
            ));
        }
        0x81..=0x88 => {
            let count = first & 0x7F;
            let mut value: u64 = 0;
            for index in 0..count {
                let Some(byte) = next() else {
                    return Err(not_der("the long-form length is cut short"));
                };
                if index == 0 && byte == 0 {
                    return Err(not_der(
                        "the long-form length has a leading zero byte; DER requires the minimum number of length bytes",
                    ));
                }
                value = (value << 8) | u64::from(byte);
            }
            if value < 0x80 {
                return Err(not_der(
                    "long-form length (for example 0x81 0x24) for a value shorter than 128 bytes is BER; \
                     DER requires the one-byte short form (0x24)",
                ));
            }
            value
        }
        _ => return Err(not_der("the length field is longer than 8 bytes")),
    };
    match declared {
        0 => Err(Error::ZeroLength { extension }),
        36 => Ok(()),
        length => Err(Error::WrongLength { extension, length }),
    }
}

/// Hex digit values, `0xFF` for anything that is not a lowercase hex digit.
const LOWER_HEX: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut digit: u8 = 0;
    while digit < 16 {
        let ascii = if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        };
        table[ascii as usize] = digit;
        digit += 1;
    }
    table
};

/// Offsets of the 16 two-digit groups in `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
const HEX_PAIRS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// Parses exactly the canonical text form: 8-4-4-4-12 lowercase hex digits with hyphens.
///
/// Hand-written rather than `Uuid::try_parse_ascii` because that also accepts uppercase, braces,
/// `urn:uuid:` and the 32-digit simple form, and we must refuse every non-canonical spelling (the same
/// UUID must always be the same bytes). Validation and hex decoding happen in one table-driven pass;
/// only a refused text is looked at again, to say what is wrong with it.
fn parse_canonical_uuid(text: &[u8; UUID_TEXT_LEN]) -> Result<Uuid, &'static str> {
    if text[8] != b'-' || text[13] != b'-' || text[18] != b'-' || text[23] != b'-' {
        return Err(non_canonical_reason(text));
    }
    let mut out = [0u8; 16];
    let mut invalid = 0u8;
    for (byte, &at) in out.iter_mut().zip(&HEX_PAIRS) {
        let high = LOWER_HEX[usize::from(text[at])];
        let low = LOWER_HEX[usize::from(text[at + 1])];
        invalid |= high | low;
        *byte = (high << 4) | low;
    }
    if invalid & 0xF0 != 0 {
        return Err(non_canonical_reason(text));
    }
    Ok(Uuid::from_bytes(out))
}

/// Why a 36-byte text is not a canonical UUID (the first problem, scanning left to right).
#[cold]
fn non_canonical_reason(text: &[u8; UUID_TEXT_LEN]) -> &'static str {
    for (position, &byte) in text.iter().enumerate() {
        let hyphen_here = matches!(position, 8 | 13 | 18 | 23);
        match byte {
            b'-' if hyphen_here => {}
            b'0'..=b'9' | b'a'..=b'f' if !hyphen_here => {}
            b'A'..=b'F' => {
                return "uppercase hex digits; the canonical form (and what Mosaic writes) is lowercase";
            }
            0x80..=0xFF => return non_ascii_reason(text),
            b'-' | b'0'..=b'9' | b'a'..=b'f' => {
                return "hyphens missing or misplaced; expected 8-4-4-4-12 hex digits";
            }
            _ => return "contains a character that is not a hex digit or a hyphen",
        }
    }
    "not a canonical UUID"
}

fn non_ascii_reason(text: &[u8]) -> &'static str {
    if core::str::from_utf8(text).is_err() {
        "the bytes are not valid UTF-8, which a UTF8String must be"
    } else {
        "contains non-ASCII characters; a UUID is ASCII hex digits and hyphens"
    }
}

/// The most characters of a refused text quoted back in [`Error::InvalidIdText`].
const MAX_QUOTED_CHARS: usize = 40;

/// Parses the canonical text form (what `Display` prints) for `FromStr`, with the same rules as the
/// DER side: exactly 36 characters, lowercase hex digits, hyphens at 8-4-4-4-12. Uppercase is refused
/// here too, so that text and DER accept exactly the same spellings.
fn parse_canonical_text(text: &str, field: FederationField) -> Result<Uuid, Error> {
    let refuse = |reason: String| Error::InvalidIdText {
        field,
        value: quoted(text),
        reason,
    };
    match <&[u8; UUID_TEXT_LEN]>::try_from(text.as_bytes()) {
        Ok(bytes) => parse_canonical_uuid(bytes).map_err(|reason| refuse(reason.to_owned())),
        Err(_) => Err(refuse(wrong_length_reason(text))),
    }
}

/// Why a text that is not 36 bytes long is not a canonical UUID, naming the usual other spellings.
#[cold]
fn wrong_length_reason(text: &str) -> String {
    let bare = text.trim();
    let hex_only = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if text.is_empty() {
        "it is empty".to_owned()
    } else if !text.is_ascii() {
        "it contains non-ASCII characters; a UUID is ASCII hex digits and hyphens".to_owned()
    } else if bare.len() != text.len() {
        "it has leading or trailing whitespace".to_owned()
    } else if bare.starts_with('{') && bare.ends_with('}') {
        "it is wrapped in braces; write the UUID without them".to_owned()
    } else if bare
        .get(..9)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("urn:uuid:"))
    {
        "it has a urn:uuid: prefix; write the bare UUID".to_owned()
    } else if bare.len() == 32 && hex_only(bare) {
        "it is the 32-digit form without hyphens; write it with hyphens at 8-4-4-4-12".to_owned()
    } else {
        format!(
            "it has {} characters, expected {UUID_TEXT_LEN}",
            text.chars().count()
        )
    }
}

/// At most [`MAX_QUOTED_CHARS`] characters of `text`, with `…` where it was cut.
fn quoted(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Reads one value from a `der::Reader` (used by the `der::Decode` impls).
fn decode_from_reader<'a, R: Reader<'a>>(
    reader: &mut R,
    extension: ExtensionId,
) -> Result<Uuid, Error> {
    read_header(extension, || reader.read_byte().ok())?;
    let available = usize::try_from(reader.remaining_len()).unwrap_or(usize::MAX);
    let mut text = [0u8; UUID_TEXT_LEN];
    reader.read_into(&mut text).map_err(|_| Error::Truncated {
        extension,
        declared: 36,
        available,
    })?;
    parse_canonical_uuid(&text).map_err(|reason| Error::NotCanonicalUuid { extension, reason })
}

macro_rules! federation_value {
    ($(#[$doc:meta])* $name:ident, $field:expr, $oid:expr) => {
        $(#[$doc])*
        ///
        /// Encodes as a DER UTF8String of the lowercase hyphenated UUID (`der::Encode`), decodes
        /// strictly (`der::Decode`, with this crate's [`Error`]), and becomes a non-critical
        /// extension: `builder.add_extension(&value)` on the development arc (through
        /// `AssociatedOid` and `Criticality`), or [`Self::extension`] for a registry's arc.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Which field this type is.
            pub const FIELD: FederationField = $field;

            /// Wraps a UUID.
            #[must_use]
            pub const fn new(uuid: Uuid) -> Self {
                $name(uuid)
            }

            /// The UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The UUID, by value.
            #[must_use]
            pub const fn into_uuid(self) -> Uuid {
                self.0
            }

            /// The 38-byte DER UTF8String, without allocating.
            #[must_use]
            pub fn to_der_bytes(&self) -> [u8; ENCODED_VALUE_LEN] {
                encode_uuid_value(&self.0)
            }

            /// Decodes a DER value strictly, naming the registry's OID in errors.
            ///
            /// # Errors
            /// One [`Error`] variant per malformed case (wrong tag, zero or wrong length, BER,
            /// trailing bytes, non-canonical UUID ...).
            pub fn from_der_in(bytes: &[u8], registry: &OidRegistry) -> Result<Self, Error> {
                decode_uuid_value(bytes, registry.extension_id(Self::FIELD)).map($name)
            }

            /// The non-critical X.509 extension carrying this value under the registry's OID, for
            /// `CertificateBuilder::add_extension` and `RequestBuilder::add_extension`.
            ///
            /// # Errors
            /// [`Error::Encode`] only if the OCTET STRING cannot be formed (it always can).
            pub fn extension(&self, registry: &OidRegistry) -> Result<Extension, Error> {
                Ok(Extension {
                    extn_id: registry.oid(Self::FIELD),
                    critical: false,
                    extn_value: OctetString::new(self.to_der_bytes().as_slice())
                        .map_err(Error::Encode)?,
                })
            }

            fn development_extension_id() -> ExtensionId {
                OidRegistry::DEVELOPMENT.extension_id(Self::FIELD)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                $name(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(value: $name) -> Uuid {
                value.0
            }
        }

        impl fmt::Display for $name {
            /// The canonical lowercase hyphenated form.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        /// Parses exactly the text [`Display`](fmt::Display) prints: the 36-character lowercase
        /// hyphenated UUID. Like the DER decoder, it refuses every other spelling (uppercase, braces,
        /// `urn:uuid:`, the 32-digit form, surrounding whitespace) with [`Error::InvalidIdText`], so one
        /// id always has one text.
        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                parse_canonical_text(text, Self::FIELD).map($name)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FixedTag for $name {
            const TAG: Tag = Tag::Utf8String;
        }

        impl EncodeValue for $name {
            fn value_len(&self) -> der::Result<Length> {
                Ok(Length::new(36))
            }

            fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
                let mut text = [0u8; UUID_TEXT_LEN];
                self.0.hyphenated().encode_lower(&mut text);
                writer.write(&text)
            }
        }

        /// Strict decoding. Errors name the development-arc OID, the type's `AssociatedOid`; use
        #[doc = concat!("[`", stringify!($name), "::from_der_in`]")]
        /// to name a registry's OID.
        impl<'a> Decode<'a> for $name {
            type Error = Error;

            fn decode<R: Reader<'a>>(reader: &mut R) -> Result<Self, Error> {
                decode_from_reader(reader, Self::development_extension_id()).map($name)
            }

            /// Overrides der's default so that trailing bytes get their own error variant.
            fn from_der(bytes: &'a [u8]) -> Result<Self, Error> {
                decode_uuid_value(bytes, Self::development_extension_id()).map($name)
            }
        }

        /// The development-arc OID; see [`OidRegistry`] for a deployment's own arc.
        impl AssociatedOid for $name {
            const OID: ObjectIdentifier = $oid;
        }

        /// Always non-critical: rustls/webpki rejects certificates with unknown critical extensions.
        impl Criticality for $name {
            fn criticality(&self, _subject: &Name, _extensions: &[Extension]) -> bool {
                false
            }
        }
    };
}

federation_value!(
    /// UUID of the `federation_grants` row that authorises a certificate
    /// (`mosaic.federation.grantId`).
    GrantId,
    FederationField::GrantId,
    crate::registry::GRANT_ID
);

federation_value!(
    /// UUID of the local user on whose behalf a certificate is issued
    /// (`mosaic.federation.subjectUserId`).
    SubjectUserId,
    FederationField::SubjectUserId,
    crate::registry::SUBJECT_USER_ID
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use der::Encode;

    use super::*;

    const TEXT: &str = "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70";

    fn ext() -> ExtensionId {
        OidRegistry::DEVELOPMENT.extension_id(FederationField::GrantId)
    }

    fn value(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0x0C, u8::try_from(body.len()).unwrap()];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn encodes_the_guide_bytes() {
        let id = GrantId::new(Uuid::parse_str(TEXT).unwrap());
        let der = id.to_der().unwrap();
        assert_eq!(der, value(TEXT.as_bytes()));
        assert_eq!(der.as_slice(), id.to_der_bytes().as_slice());
        assert_eq!(der.len(), ENCODED_VALUE_LEN);
        assert_eq!(id.to_string(), TEXT);
        assert_eq!(format!("{id:?}"), format!("GrantId({TEXT})"));
        assert_eq!(GrantId::from_der(&der).unwrap(), id);
        assert_eq!(
            SubjectUserId::from_der(&der).unwrap().into_uuid(),
            *id.as_uuid()
        );
    }

    #[test]
    fn decodes_through_a_der_reader() {
        let mut two = value(TEXT.as_bytes());
        two.extend_from_slice(&value(TEXT.as_bytes()));
        let mut reader = der::SliceReader::new(&two).unwrap();
        let a = GrantId::decode(&mut reader).unwrap();
        let b = SubjectUserId::decode(&mut reader).unwrap();
        assert_eq!(a.as_uuid(), b.as_uuid());
        assert!(reader.is_finished());
        // Truncated inside a reader.
        let short = &two[..20];
        let mut reader = der::SliceReader::new(short).unwrap();
        let err = GrantId::decode(&mut reader).unwrap_err();
        assert_eq!(err.code(), "truncated", "{err}");
    }

    #[test]
    fn each_malformed_value_has_its_own_error() {
        let good = value(TEXT.as_bytes());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty_value"),
            (
                [&[0x13, 0x24], TEXT.as_bytes()].concat(),
                "wrong_string_tag",
            ),
            (
                [&[0x16, 0x24], TEXT.as_bytes()].concat(),
                "wrong_string_tag",
            ),
            (vec![0x0C, 0x00], "zero_length"),
            (value(&TEXT.as_bytes()[..35]), "wrong_length"),
            ([&[0x0C, 0x81, 0x24], TEXT.as_bytes()].concat(), "not_der"),
            (
                [&[0x0C, 0x80], TEXT.as_bytes(), &[0, 0]].concat(),
                "not_der",
            ),
            ([&[0x2C, 0x24], TEXT.as_bytes()].concat(), "not_der"),
            (
                [&[0x0C, 0x82, 0x00, 0x24], TEXT.as_bytes()].concat(),
                "not_der",
            ),
            (vec![0x0C], "not_der"),
            (vec![0x0C, 0x82, 0x01], "not_der"),
            (vec![0x0C, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9], "not_der"),
            (vec![0x0C, 0x82, 0x01, 0x00], "wrong_length"),
            (good[..30].to_vec(), "truncated"),
            ([good.as_slice(), &[0x00]].concat(), "trailing_bytes"),
            (value(TEXT.to_uppercase().as_bytes()), "not_canonical_uuid"),
            (
                value(b"0b9a2f4e07c1d-4e8a-9f3b-2d6c5a1e8f70"),
                "not_canonical_uuid",
            ),
            (
                value(b"0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f7g"),
                "not_canonical_uuid",
            ),
            (
                value(b"{b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f7}"),
                "not_canonical_uuid",
            ),
            (
                value(format!("{}é", &TEXT[..34]).as_bytes()),
                "not_canonical_uuid",
            ),
            (value(&[0xFF; 36]), "not_canonical_uuid"),
            (
                value(b"0b9a2f4e7c1d4e8a9f3b2d6c5a1e8f70----"),
                "not_canonical_uuid",
            ),
        ];
        for (bytes, code) in cases {
            let err = decode_uuid_value(&bytes, ext()).unwrap_err();
            assert_eq!(err.code(), code, "{bytes:02X?}: {err}");
            let text = err.to_string();
            assert!(text.contains("1.3.6.1.4.1.99999.1"), "{text}");
            assert!(text.contains("mosaic.federation.grantId"), "{text}");
            assert!(!err.remediation().is_empty());
            assert_eq!(err.extension(), Some(&ext()));
            // The der::Decode impl agrees.
            assert_eq!(GrantId::from_der(&bytes).unwrap_err(), err);
        }
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let printable = [&[0x13, 0x24], TEXT.as_bytes()].concat();
        let err = decode_uuid_value(&printable, ext()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extension 1.3.6.1.4.1.99999.1 (mosaic.federation.grantId): value is a PrintableString \
             (tag 0x13), expected a UTF8String (tag 0x0C)"
        );
        let err = decode_uuid_value(&value(&TEXT.as_bytes()[..35]), ext()).unwrap_err();
        assert!(err.to_string().contains("length 35, expected 36"), "{err}");
        let err = decode_uuid_value(&value(TEXT.to_uppercase().as_bytes()), ext()).unwrap_err();
        assert!(err.to_string().contains("uppercase"), "{err}");
    }

    #[test]
    fn text_round_trips_through_display_and_from_str() {
        let grant: GrantId = TEXT.parse().unwrap();
        assert_eq!(grant.to_string(), TEXT);
        assert_eq!(grant.to_string().parse::<GrantId>().unwrap(), grant);
        let subject = SubjectUserId::from_str(TEXT).unwrap();
        assert_eq!(subject.into_uuid(), grant.into_uuid());
        for edge in [Uuid::nil(), Uuid::from_bytes([0xFF; 16])] {
            let id = SubjectUserId::new(edge);
            assert_eq!(id.to_string().parse::<SubjectUserId>().unwrap(), id);
        }
    }

    #[test]
    fn from_str_refuses_every_other_spelling_and_says_why() {
        let upper = TEXT.to_uppercase();
        let braces = format!("{{{TEXT}}}");
        let urn = format!("urn:uuid:{TEXT}");
        let upper_urn = format!("URN:UUID:{TEXT}");
        let simple = TEXT.replace('-', "");
        let padded = format!(" {TEXT}");
        let long = format!("{TEXT}0");
        let accented = format!("{}é", &TEXT[..35]);
        let huge = "x".repeat(10_000);
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            (&TEXT[..35], "35 characters, expected 36"),
            (long.as_str(), "37 characters, expected 36"),
            (upper.as_str(), "uppercase"),
            (braces.as_str(), "braces"),
            (urn.as_str(), "urn:uuid:"),
            (upper_urn.as_str(), "urn:uuid:"),
            (simple.as_str(), "32-digit form"),
            (padded.as_str(), "whitespace"),
            (accented.as_str(), "non-ASCII"),
            ("0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f7g", "not a hex digit"),
            ("0b9a2f4e07c1d-4e8a-9f3b-2d6c5a1e8f70", "hyphens"),
            ("0b9a2f4e7c1d4e8a9f3b2d6c5a1e8f70----", "hyphens"),
            (huge.as_str(), "10000 characters"),
        ];
        for (text, reason) in cases {
            let err = GrantId::from_str(text).unwrap_err();
            assert_eq!(err.code(), "invalid_id_text", "{text:?}: {err}");
            let message = err.to_string();
            assert!(message.contains(reason), "{text:?}: {message}");
            assert!(message.contains("mosaic.federation.grantId"), "{message}");
            assert!(message.len() < 300, "{message}");
            assert!(err.remediation().contains("8-4-4-4-12"));
            assert_eq!(err.extension(), None);
            let err = SubjectUserId::from_str(text).unwrap_err();
            assert!(
                err.to_string().contains("mosaic.federation.subjectUserId"),
                "{err}"
            );
        }
        // The value is quoted back, shortened.
        let err = GrantId::from_str(&huge).unwrap_err();
        let Error::InvalidIdText { value, field, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*field, FederationField::GrantId);
        assert_eq!(*value, format!("{}…", "x".repeat(40)));
    }

    #[test]
    fn text_and_der_accept_the_same_spellings() {
        for text in [
            TEXT.to_owned(),
            TEXT.to_uppercase(),
            "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8F70".to_owned(),
            "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f7 ".to_owned(),
        ] {
            let from_text = GrantId::from_str(&text).map(GrantId::into_uuid).ok();
            let from_der = decode_uuid_value(&value(text.as_bytes()), ext()).ok();
            assert_eq!(from_text, from_der, "{text:?}");
        }
    }

    #[test]
    fn extension_is_non_critical_and_uses_the_registry_arc() {
        let id = SubjectUserId::new(Uuid::parse_str(TEXT).unwrap());
        let ext = id.extension(&OidRegistry::DEVELOPMENT).unwrap();
        assert_eq!(ext.extn_id, crate::SUBJECT_USER_ID);
        assert!(!ext.critical);
        assert_eq!(ext.extn_value.as_bytes(), id.to_der_bytes().as_slice());

        let own = OidRegistry::for_private_enterprise(32473).unwrap();
        let ext = id.extension(&own).unwrap();
        assert_eq!(ext.extn_id.to_string(), "1.3.6.1.4.1.32473.2");
        let err = GrantId::from_der_in(&[0x0C, 0x00], &own).unwrap_err();
        assert!(err.to_string().contains("1.3.6.1.4.1.32473.1"), "{err}");
    }
}
