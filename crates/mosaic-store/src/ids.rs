//! Identifiers owned by the store: peer ids and certificate serials.
//!
//! Grant and subject user ids come from `mosaic-oid` ([`mosaic_oid::GrantId`], [`mosaic_oid::SubjectUserId`]),
//! because they are what a peer certificate carries.

use std::fmt;

use uuid::Uuid;

use crate::error::StoreError;

/// The id of a row of `federation_peers`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PeerId(Uuid);

impl PeerId {
    /// A new random (version 4) id.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The UUID.
    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for PeerId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<PeerId> for Uuid {
    fn from(id: PeerId) -> Self {
        id.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A certificate serial number in canonical form: lowercase hex of the magnitude, without leading zeros
/// (`0` for zero).
///
/// DER encodes a positive serial with a leading `00` byte when its top bit is set, and tools print serials
/// with colons or in upper case; all of those denote the same number, so they all compare equal here.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertSerial(String);

impl CertSerial {
    /// At most 20 octets (RFC 5280 §4.1.2.2), with one octet of slack for a sign byte.
    const MAX_BYTES: usize = 21;

    /// From the big-endian bytes of the serial's INTEGER content (as `x509-cert`'s `SerialNumber::as_bytes`
    /// gives them). Leading zero bytes are ignored.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_BYTES {
            return Err(StoreError::InvalidInput {
                field: "certificate serial",
                reason: format!("a serial has 1 to 20 bytes, this one has {}", bytes.len()),
            });
        }
        let hex = hex::encode(bytes);
        Ok(Self::canonical(&hex))
    }

    /// From hex text: any case, optional `0x` prefix, optional `:` separators (as openssl prints them).
    pub fn parse_hex(text: &str) -> Result<Self, StoreError> {
        let trimmed = text.trim();
        let body = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        let digits: String = body.chars().filter(|c| *c != ':').collect();
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StoreError::InvalidInput {
                field: "certificate serial",
                reason: "expected hexadecimal digits, optionally separated by ':'".to_owned(),
            });
        }
        if digits.len() > Self::MAX_BYTES * 2 {
            return Err(StoreError::InvalidInput {
                field: "certificate serial",
                reason: format!(
                    "a serial has at most 20 bytes, this one has {} hex digits",
                    digits.len()
                ),
            });
        }
        Ok(Self::canonical(&digits.to_ascii_lowercase()))
    }

    fn canonical(lower_hex: &str) -> Self {
        let stripped = lower_hex.trim_start_matches('0');
        if stripped.is_empty() {
            Self("0".to_owned())
        } else {
            Self(stripped.to_owned())
        }
    }

    /// The canonical hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CertSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertSerial({})", self.0)
    }
}

impl fmt::Display for CertSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CertSerial {
    type Error = StoreError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse_hex(&text)
    }
}

impl From<CertSerial> for String {
    fn from(serial: CertSerial) -> Self {
        serial.0
    }
}

/// Serializes an id through its `Display` form (the ids of `mosaic-oid` have no serde support of their own).
pub(crate) fn serialize_display<T: fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// [`serialize_display`] for optional ids.
pub(crate) fn serialize_display_option<T: fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::CertSerial;

    #[test]
    fn serial_forms_are_canonical() {
        let a = CertSerial::from_be_bytes(&[0x00, 0x8f, 0x01]).unwrap();
        let b = CertSerial::parse_hex("8F:01").unwrap();
        let c = CertSerial::parse_hex("0x008f01").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert_eq!(a.as_str(), "8f01");
        assert_eq!(CertSerial::from_be_bytes(&[0]).unwrap().as_str(), "0");
    }

    #[test]
    fn serial_rejects_garbage() {
        assert!(CertSerial::parse_hex("").is_err());
        assert!(CertSerial::parse_hex("xyz").is_err());
        assert!(CertSerial::parse_hex(&"1".repeat(43)).is_err());
        assert!(CertSerial::from_be_bytes(&[]).is_err());
        assert!(CertSerial::from_be_bytes(&[1; 22]).is_err());
    }
}
