//! The two on-disk formats: legacy (the TypeScript gateway's) and the v1 envelope.
//!
//! Both are encoded and decoded here; the byte layouts are documented in the crate README.

use aes_gcm::{
    AeadInOut, Aes256Gcm,
    aead::{Nonce, Tag},
};
// `base64-simd` rather than the scalar `base64` crate: at 250 B, scalar base64 alone cost ~0.4x the raw
// AES-GCM primitive, which broke the crate's overhead budget (see the README's figures). Both decoders
// are strict: canonical trailing bits, exact padding, no whitespace.
use base64_simd::{Base64, Out, STANDARD, URL_SAFE_NO_PAD};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    KeyId, Plaintext, SealError,
    key::{AAD_CHECK_LEN, KEY_ID_LEN, SealKey},
};

/// The text prefix of every versioned value. `$` is outside both base64 alphabets, so no legacy value
/// (standard base64) can start with it.
pub const V1_PREFIX: &str = "$mosaic-seal$";

/// The version byte of the v1 envelope.
pub(crate) const VERSION_1: u8 = 1;
/// AES-GCM nonce length (both formats).
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length (both formats).
pub(crate) const TAG_LEN: usize = 16;

/// v1: version(1) ‖ key id(8) ‖ AAD check(4).
const V1_HEADER_LEN: usize = 1 + KEY_ID_LEN + AAD_CHECK_LEN;
/// v1: where the ciphertext starts (after the header and the nonce).
const V1_CIPHERTEXT_AT: usize = V1_HEADER_LEN + NONCE_LEN;
/// v1: the shortest valid value (empty plaintext).
const V1_MIN_LEN: usize = V1_CIPHERTEXT_AT + TAG_LEN;
/// legacy: where the ciphertext starts (after IV and tag).
const LEGACY_CIPHERTEXT_AT: usize = NONCE_LEN + TAG_LEN;

/// Associated data up to this length is concatenated with the header on the stack.
const STACK_AAD_LEN: usize = 256;

/// The formats a sealed value can be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The TypeScript gateway's format: standard base64 of `iv ‖ tag ‖ ciphertext`, key = SHA-256(secret),
    /// no associated data, no key id.
    Legacy,
    /// The versioned envelope, version 1: `$mosaic-seal$` ‖ base64url(version ‖ key id ‖ AAD check ‖ nonce
    /// ‖ ciphertext ‖ tag).
    V1,
}

/// A sealed value, decoded but not yet opened.
pub(crate) enum Decoded {
    /// Legacy bytes: `iv(12) ‖ tag(16) ‖ ciphertext`.
    Legacy(Zeroizing<Vec<u8>>),
    /// v1 bytes, whole (header included), and the key id read from the header.
    V1 {
        key_id: KeyId,
        bytes: Zeroizing<Vec<u8>>,
    },
}

/// Decodes the text of a sealed value, checking its framing (not its authenticity).
pub(crate) fn decode(sealed: &str) -> Result<Decoded, SealError> {
    if let Some(body) = sealed.strip_prefix(V1_PREFIX) {
        let bytes = decode_base64(
            &URL_SAFE_NO_PAD,
            body,
            "the text after `$mosaic-seal$` is not unpadded base64url",
        )?;
        let version = *bytes.first().ok_or(SealError::Malformed {
            reason: "nothing follows the `$mosaic-seal$` prefix",
        })?;
        if version != VERSION_1 {
            return Err(SealError::UnsupportedVersion { version });
        }
        if bytes.len() < V1_MIN_LEN {
            return Err(SealError::Malformed {
                reason: "too short for a v1 header, nonce and tag",
            });
        }
        let key_id = bytes
            .get(1..=KEY_ID_LEN)
            .and_then(|id| <[u8; KEY_ID_LEN]>::try_from(id).ok())
            .map(KeyId::from_bytes)
            .ok_or(SealError::Malformed {
                reason: "too short for a v1 header, nonce and tag",
            })?;
        Ok(Decoded::V1 { key_id, bytes })
    } else if sealed.starts_with('$') {
        Err(SealError::Malformed {
            reason: "starts with `$` but not with the `$mosaic-seal$` prefix",
        })
    } else {
        let bytes = decode_base64(
            &STANDARD,
            sealed,
            "neither a v1 value (`$mosaic-seal$…`) nor standard padded base64 (legacy)",
        )?;
        if bytes.len() < LEGACY_CIPHERTEXT_AT {
            return Err(SealError::Malformed {
                reason: "too short for a legacy IV and tag",
            });
        }
        Ok(Decoded::Legacy(bytes))
    }
}

/// Decodes base64 into a zeroizing buffer sized once (it will hold the plaintext after opening, so it
/// must never reallocate and leave an unzeroed copy behind).
fn decode_base64(
    engine: &Base64,
    text: &str,
    reason: &'static str,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let malformed = |_| SealError::Malformed { reason };
    let len = engine.decoded_length(text.as_bytes()).map_err(malformed)?;
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    let decoded = engine
        .decode(text.as_bytes(), Out::from_slice(bytes.as_mut_slice()))
        .map_err(malformed)?
        .len();
    bytes.truncate(decoded);
    Ok(bytes)
}

/// Fills a nonce from the operating system's random number generator.
fn fill_nonce(nonce: &mut [u8]) -> Result<(), SealError> {
    getrandom::fill(nonce).map_err(SealError::Randomness)
}

fn nonce_ref(bytes: &[u8]) -> Result<&Nonce<Aes256Gcm>, SealError> {
    <&Nonce<Aes256Gcm>>::try_from(bytes).map_err(|_| SealError::Malformed {
        reason: "too short for a nonce",
    })
}

fn tag_ref(bytes: &[u8]) -> Result<&Tag<Aes256Gcm>, SealError> {
    <&Tag<Aes256Gcm>>::try_from(bytes).map_err(|_| SealError::Malformed {
        reason: "too short for a tag",
    })
}

const fn too_short() -> SealError {
    SealError::Malformed {
        reason: "too short for its format",
    }
}

/// Runs `f` with the AES-GCM associated data of a v1 value: `header ‖ aad`. The header has a fixed length,
/// so the concatenation is unambiguous. Short AAD is joined on the stack to keep sealing allocation-free
/// apart from the output.
fn with_v1_associated_data<R>(header: &[u8], aad: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    let total = header.len().saturating_add(aad.len());
    if total <= STACK_AAD_LEN {
        let mut joined = [0u8; STACK_AAD_LEN];
        let (head, tail) = joined.split_at_mut(header.len());
        head.copy_from_slice(header);
        if let Some(slot) = tail.get_mut(..aad.len()) {
            slot.copy_from_slice(aad);
        }
        f(joined.get(..total).unwrap_or_default())
    } else {
        let mut joined = Vec::with_capacity(total);
        joined.extend_from_slice(header);
        joined.extend_from_slice(aad);
        f(&joined)
    }
}

/// Seals `plaintext` in the v1 envelope under `key`, binding `aad`.
pub(crate) fn seal_v1(key: &SealKey, plaintext: &[u8], aad: &[u8]) -> Result<String, SealError> {
    let total = V1_MIN_LEN
        .checked_add(plaintext.len())
        .ok_or(SealError::TooLong)?;
    // One buffer, sized once: header ‖ nonce ‖ plaintext, encrypted in place, then the tag appended.
    let mut bytes = Zeroizing::new(Vec::with_capacity(total));
    bytes.push(VERSION_1);
    bytes.extend_from_slice(key.id.as_bytes());
    bytes.extend_from_slice(&key.aad_check(aad));
    bytes.resize(V1_CIPHERTEXT_AT, 0);
    bytes.extend_from_slice(plaintext);

    let tag = {
        let (head, body) = bytes
            .split_at_mut_checked(V1_CIPHERTEXT_AT)
            .ok_or_else(too_short)?;
        let (header, nonce) = head.split_at_mut(V1_HEADER_LEN);
        fill_nonce(nonce)?;
        let nonce = nonce_ref(nonce)?;
        with_v1_associated_data(header, aad, |associated_data| {
            key.v1
                .encrypt_inout_detached(nonce, associated_data, body.into())
        })
        .map_err(|_| SealError::TooLong)?
    };
    bytes.extend_from_slice(&tag);
    // The plaintext was overwritten in place and the buffer never reallocated: from here it holds only
    // public data (header, nonce, ciphertext, tag), so it leaves the zeroizing wrapper without the cost
    // of zeroing it.
    let bytes = core::mem::take(&mut *bytes);

    let encoded_len = URL_SAFE_NO_PAD.encoded_length(total);
    let mut sealed = String::with_capacity(V1_PREFIX.len().saturating_add(encoded_len));
    sealed.push_str(V1_PREFIX);
    URL_SAFE_NO_PAD.encode_append(&bytes, &mut sealed);
    Ok(sealed)
}

/// Opens decoded v1 bytes with `key` (the key the header names), checking `aad`.
pub(crate) fn open_v1(
    key: &SealKey,
    mut bytes: Zeroizing<Vec<u8>>,
    aad: &[u8],
) -> Result<Plaintext, SealError> {
    let ciphertext_len = bytes.len().checked_sub(V1_MIN_LEN).ok_or_else(too_short)?;
    let ciphertext_end = V1_CIPHERTEXT_AT + ciphertext_len;
    {
        let (head, rest) = bytes
            .split_at_mut_checked(V1_CIPHERTEXT_AT)
            .ok_or_else(too_short)?;
        let (ciphertext, tag) = rest
            .split_at_mut_checked(ciphertext_len)
            .ok_or_else(too_short)?;
        let (header, nonce) = head.split_at(V1_HEADER_LEN);
        let nonce = nonce_ref(nonce)?;
        let tag = tag_ref(tag)?;
        let opened = with_v1_associated_data(header, aad, |associated_data| {
            key.v1
                .decrypt_inout_detached(nonce, associated_data, ciphertext.into(), tag)
        });
        if opened.is_err() {
            // The tag check failed. The key is the one the header names, so tell a wrong AAD from an
            // alteration by the AAD check (see `SealError` for what this can and cannot prove).
            let recorded = header.get(1 + KEY_ID_LEN..).unwrap_or_default();
            let matches: bool = key.aad_check(aad).as_slice().ct_eq(recorded).into();
            return Err(if matches {
                SealError::Tampered { key_id: key.id }
            } else {
                SealError::BadAssociatedData { key_id: key.id }
            });
        }
    }
    bytes.copy_within(V1_CIPHERTEXT_AT..ciphertext_end, 0);
    bytes.truncate(ciphertext_len);
    Ok(Plaintext::new(bytes))
}

/// Seals `plaintext` in the legacy format under `key` (no associated data, no key id).
pub(crate) fn seal_legacy(key: &SealKey, plaintext: &[u8]) -> Result<String, SealError> {
    let total = LEGACY_CIPHERTEXT_AT
        .checked_add(plaintext.len())
        .ok_or(SealError::TooLong)?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(total));
    bytes.resize(LEGACY_CIPHERTEXT_AT, 0);
    bytes.extend_from_slice(plaintext);
    {
        let (head, body) = bytes
            .split_at_mut_checked(LEGACY_CIPHERTEXT_AT)
            .ok_or_else(too_short)?;
        let (nonce, tag_slot) = head.split_at_mut(NONCE_LEN);
        fill_nonce(nonce)?;
        let nonce = nonce_ref(nonce)?;
        // The legacy layout puts the tag before the ciphertext: encrypt detached and write the tag into
        // its slot, so nothing is moved.
        let tag = key
            .legacy
            .encrypt_inout_detached(nonce, &[], body.into())
            .map_err(|_| SealError::TooLong)?;
        tag_slot.copy_from_slice(&tag);
    }
    // Only public data (IV, tag, ciphertext) is left: no need to zero it (see `seal_v1`).
    let bytes = core::mem::take(&mut *bytes);
    let mut sealed = String::with_capacity(STANDARD.encoded_length(total));
    STANDARD.encode_append(&bytes, &mut sealed);
    Ok(sealed)
}

/// Tries to open decoded legacy bytes with `key`, in place. On success the buffer holds
/// `iv ‖ tag ‖ plaintext`; on failure it is unchanged (AES-GCM checks the tag before decrypting), so the
/// next key can be tried on the same buffer.
pub(crate) fn try_open_legacy_in_place(key: &SealKey, bytes: &mut [u8]) -> bool {
    let Some((head, ciphertext)) = bytes.split_at_mut_checked(LEGACY_CIPHERTEXT_AT) else {
        return false;
    };
    let (nonce, tag) = head.split_at(NONCE_LEN);
    let (Ok(nonce), Ok(tag)) = (nonce_ref(nonce), tag_ref(tag)) else {
        return false;
    };
    key.legacy
        .decrypt_inout_detached(nonce, &[], ciphertext.into(), tag)
        .is_ok()
}

/// Moves the plaintext of legacy bytes opened in place to the front of the buffer.
pub(crate) fn finish_legacy(mut bytes: Zeroizing<Vec<u8>>) -> Plaintext {
    let len = bytes.len().saturating_sub(LEGACY_CIPHERTEXT_AT);
    if len > 0 {
        bytes.copy_within(LEGACY_CIPHERTEXT_AT.., 0);
    }
    bytes.truncate(len);
    Plaintext::new(bytes)
}

/// The format of a sealed value, after checking its framing (not its authenticity).
///
/// # Errors
/// [`SealError::Malformed`] or [`SealError::UnsupportedVersion`] when the value is not a sealed value this
/// build can read.
pub fn format_of(sealed: &str) -> Result<Format, SealError> {
    Ok(match decode(sealed)? {
        Decoded::Legacy(_) => Format::Legacy,
        Decoded::V1 { .. } => Format::V1,
    })
}

/// The key id a sealed value names: `Some` for v1, `None` for legacy values, which carry none (use
/// [`Keyring::open_with_details`](crate::Keyring::open_with_details) to learn which key opens them).
///
/// For counting how many stored values are under which key during a rotation. Reads the framing only.
///
/// # Errors
/// [`SealError::Malformed`] or [`SealError::UnsupportedVersion`] when the value is not a sealed value this
/// build can read.
pub fn key_id_of(sealed: &str) -> Result<Option<KeyId>, SealError> {
    Ok(match decode(sealed)? {
        Decoded::Legacy(_) => None,
        Decoded::V1 { key_id, .. } => Some(key_id),
    })
}
