//! Keys derived from a secret, and their public ids.

use core::{fmt, str::FromStr};

use aes_gcm::{Aes256Gcm, Key, KeyInit};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::SealError;

/// HKDF salt for every v1 subkey.
const HKDF_SALT: &[u8] = b"mosaic-seal v1";
/// HKDF info of the v1 AES-256-GCM key.
const INFO_ENCRYPTION_KEY: &[u8] = b"mosaic-seal v1 encryption key";
/// HKDF info of the key id.
const INFO_KEY_ID: &[u8] = b"mosaic-seal v1 key id";
/// HKDF info of the HMAC key for the AAD check.
const INFO_AAD_CHECK_KEY: &[u8] = b"mosaic-seal v1 aad check key";

/// Length of a [`KeyId`] in bytes.
pub(crate) const KEY_ID_LEN: usize = 8;
/// Length of the AAD check in a v1 header.
pub(crate) const AAD_CHECK_LEN: usize = 4;

/// The public identifier of a key: 8 bytes of HKDF-SHA256 output under a fixed label.
///
/// It is derived from the key, `HKDF-SHA256(salt = "mosaic-seal v1", ikm = SHA-256(secret),
/// info = "mosaic-seal v1 key id")`, so it names a key without revealing it. Like any value that depends on
/// the secret (including every ciphertext), it lets someone who holds it check a guess of the secret; it
/// does not make guessing any cheaper than a sealed value already does. That is why secrets must be long
/// and random.
///
/// `Display` and `Debug` print 16 lowercase hexadecimal digits; `FromStr` reads them back.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// Wraps 8 bytes as a key id.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The 8 bytes of the key id, as they appear in a v1 header.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut hex = [0u8; KEY_ID_LEN * 2];
        // Cannot fail: the output buffer is exactly twice the input.
        if hex::encode_to_slice(self.0, &mut hex).is_err() {
            return Err(fmt::Error);
        }
        // Hex digits are ASCII.
        f.write_str(core::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = SealError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; KEY_ID_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| SealError::InvalidKeyId)?;
        Ok(Self(bytes))
    }
}

/// Everything derived from one secret, once, when the keyring is built.
pub(crate) struct SealKey {
    /// Public id of this key (v1 headers carry it).
    pub(crate) id: KeyId,
    /// AES-256-GCM under `SHA-256(secret)`: the TypeScript gateway's key.
    pub(crate) legacy: Aes256Gcm,
    /// AES-256-GCM under the HKDF-derived v1 encryption key.
    pub(crate) v1: Aes256Gcm,
    /// HMAC-SHA256 keyed with the HKDF-derived AAD-check key, cloned for each use so the key schedule
    /// (inner and outer pad) is computed once.
    aad_check: Hmac<Sha256>,
    /// The AAD check of empty associated data, computed once.
    empty_aad_check: [u8; AAD_CHECK_LEN],
}

impl SealKey {
    /// Derives every key of one secret. The caller has validated the secret's length.
    pub(crate) fn derive(secret: &[u8]) -> Result<Self, SealError> {
        // The TypeScript gateway's key: SHA-256 of the secret's UTF-8 bytes.
        let mut legacy_key = Zeroizing::new([0u8; 32]);
        {
            let mut digest = Sha256::digest(secret);
            legacy_key.copy_from_slice(&digest);
            digest.as_mut_slice().zeroize();
        }
        let legacy = Aes256Gcm::new(aes_key(&legacy_key));

        // v1 subkeys: HKDF-SHA256 rooted in the legacy key, so one secret has one identity in both formats
        // while the v1 format never uses the legacy key directly (domain separation).
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), legacy_key.as_slice());

        let mut v1_key = Zeroizing::new([0u8; 32]);
        hkdf.expand(INFO_ENCRYPTION_KEY, v1_key.as_mut_slice())
            .map_err(|_| SealError::KeyDerivation)?;
        let v1 = Aes256Gcm::new(aes_key(&v1_key));

        let mut id = [0u8; KEY_ID_LEN];
        hkdf.expand(INFO_KEY_ID, &mut id)
            .map_err(|_| SealError::KeyDerivation)?;

        let mut check_key = Zeroizing::new([0u8; 32]);
        hkdf.expand(INFO_AAD_CHECK_KEY, check_key.as_mut_slice())
            .map_err(|_| SealError::KeyDerivation)?;
        let aad_check = <Hmac<Sha256> as KeyInit>::new_from_slice(check_key.as_slice())
            .map_err(|_| SealError::KeyDerivation)?;

        let mut key = Self {
            id: KeyId(id),
            legacy,
            v1,
            aad_check,
            empty_aad_check: [0; AAD_CHECK_LEN],
        };
        key.empty_aad_check = key.compute_aad_check(&[]);
        Ok(key)
    }

    /// The 4-byte AAD check: the first 4 bytes of HMAC-SHA256(aad-check key, aad).
    pub(crate) fn aad_check(&self, aad: &[u8]) -> [u8; AAD_CHECK_LEN] {
        if aad.is_empty() {
            self.empty_aad_check
        } else {
            self.compute_aad_check(aad)
        }
    }

    fn compute_aad_check(&self, aad: &[u8]) -> [u8; AAD_CHECK_LEN] {
        let mut mac = self.aad_check.clone();
        mac.update(aad);
        let full = mac.finalize().into_bytes();
        let mut check = [0u8; AAD_CHECK_LEN];
        check.copy_from_slice(&full[..AAD_CHECK_LEN]);
        check
    }
}

/// Views 32 bytes as an AES-256 key without copying them out of their zeroizing buffer.
fn aes_key(bytes: &[u8; 32]) -> &Key<Aes256Gcm> {
    bytes.into()
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
