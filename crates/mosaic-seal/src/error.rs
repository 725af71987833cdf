//! The one error type of this crate.

use core::fmt;

use crate::KeyId;

/// Which secret an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretRole {
    /// The current secret (the one that seals).
    Current,
    /// A previous secret (open only); `index` counts from 0 in the order they were given.
    Previous {
        /// Position in the list of previous secrets, from 0.
        index: usize,
    },
}

impl fmt::Display for SecretRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Current => f.write_str("current"),
            Self::Previous { index } => write!(f, "previous #{}", index.saturating_add(1)),
        }
    }
}

/// Everything that can go wrong when building a [`Keyring`](crate::Keyring), sealing or opening.
///
/// No variant ever carries plaintext, a secret, key material or the sealed input itself: only key ids
/// (which are public), lengths fixed by the format, version numbers and fixed reasons.
///
/// # What AES-GCM can and cannot tell apart
///
/// A failed AES-GCM tag check says only "this key, this nonce, this associated data and this ciphertext do
/// not belong together". The variants below split that one bit using the information the format carries:
///
/// | value | failure | reported as |
/// | --- | --- | --- |
/// | any | not our prefix, bad base64, too short | [`Malformed`](Self::Malformed) |
/// | v1 | version byte not known | [`UnsupportedVersion`](Self::UnsupportedVersion) |
/// | v1 | key id not in the keyring | [`UnknownKeyId`](Self::UnknownKeyId) (certain: the id is read, not guessed) |
/// | v1 | tag fails, AAD check differs from the given AAD's | [`BadAssociatedData`](Self::BadAssociatedData) |
/// | v1 | tag fails, AAD check matches | [`Tampered`](Self::Tampered) |
/// | legacy | tag fails under every key | [`WrongKey`](Self::WrongKey) |
///
/// Honest limits: a legacy value has no key id, so "sealed under a secret we do not have" and "altered"
/// look the same and are both reported as `WrongKey`. For v1, `BadAssociatedData` is reported when the
/// 4-byte AAD check stored in the header differs from the check of the AAD you passed; an attacker who
/// flips bits in that check field also produces it. `Tampered` is reported when the check matches, which
/// (apart from a 2⁻³² chance of a wrong AAD with an equal check) means the nonce, ciphertext or tag was
/// altered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// A secret is the empty string.
    #[error("the {role} secret is empty")]
    EmptySecret {
        /// Which secret.
        role: SecretRole,
    },
    /// A secret is shorter than [`MIN_SECRET_LEN`](crate::MIN_SECRET_LEN) bytes and short secrets were not
    /// explicitly allowed.
    #[error(
        "the {role} secret is shorter than 32 bytes; the key is SHA-256 of the secret, which is no password \
         KDF, so only long random secrets are safe"
    )]
    ShortSecret {
        /// Which secret.
        role: SecretRole,
    },
    /// The value is not a sealed value of any known format.
    #[error("the sealed value is malformed: {reason}")]
    Malformed {
        /// What is wrong, in fixed words (never an excerpt of the input).
        reason: &'static str,
    },
    /// The value has the versioned prefix but a version this build does not know.
    #[error("the sealed value uses envelope version {version}, which this build does not support")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The value (v1) names a key that is not in the keyring.
    #[error("the sealed value was sealed under key {key_id}, which is not in the keyring")]
    UnknownKeyId {
        /// The key id the value names.
        key_id: KeyId,
    },
    /// No key in the keyring opens this legacy value. Legacy values carry no key id, so this also covers a
    /// legacy value that was altered.
    #[error(
        "no key in the keyring opens this legacy value: it was sealed under a secret that is not in the \
         keyring, or it was altered (legacy values carry no key id, so the two cannot be told apart)"
    )]
    WrongKey,
    /// The value (v1) names a key we have, the AAD check matches, but authentication fails: the nonce,
    /// ciphertext or tag was altered after sealing.
    #[error("the sealed value (key {key_id}) failed authentication: it was altered after sealing")]
    Tampered {
        /// The key id the value names.
        key_id: KeyId,
    },
    /// The value (v1) was sealed for other associated data (another table, column or row) than the one
    /// given, or the AAD check in its header was altered.
    #[error("the associated data does not match the one this value (key {key_id}) was sealed with")]
    BadAssociatedData {
        /// The key id the value names.
        key_id: KeyId,
    },
    /// The keyring was built to refuse legacy values.
    #[error("this keyring refuses legacy (unversioned) values")]
    LegacyRefused,
    /// The plaintext is not UTF-8 where UTF-8 is required (legacy values hold text).
    #[error("the plaintext is not valid UTF-8")]
    NotUtf8,
    /// The plaintext or associated data exceeds AES-GCM's limits (64 GiB).
    #[error("the plaintext or associated data is too long for AES-GCM")]
    TooLong,
    /// The operating system's random number generator failed, so no nonce could be made.
    #[error("the operating system's random number generator failed: {0}")]
    Randomness(#[source] getrandom::Error),
    /// A key id in text form is not 16 hex digits.
    #[error("not a key id: expected 16 hexadecimal digits")]
    InvalidKeyId,
    /// Key derivation failed. With this crate's fixed output lengths this cannot happen; it exists so that
    /// no code path panics.
    #[error("key derivation failed")]
    KeyDerivation,
}

impl SealError {
    /// A stable, machine-readable code for callers that branch on the kind of failure.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptySecret { .. } => "seal.empty_secret",
            Self::ShortSecret { .. } => "seal.short_secret",
            Self::Malformed { .. } => "seal.malformed",
            Self::UnsupportedVersion { .. } => "seal.unsupported_version",
            Self::UnknownKeyId { .. } => "seal.unknown_key_id",
            Self::WrongKey => "seal.wrong_key",
            Self::Tampered { .. } => "seal.tampered",
            Self::BadAssociatedData { .. } => "seal.bad_associated_data",
            Self::LegacyRefused => "seal.legacy_refused",
            Self::NotUtf8 => "seal.not_utf8",
            Self::TooLong => "seal.too_long",
            Self::Randomness(_) => "seal.randomness",
            Self::InvalidKeyId => "seal.invalid_key_id",
            Self::KeyDerivation => "seal.key_derivation",
        }
    }

    /// What the user can do about it.
    #[must_use]
    pub fn remediation(&self) -> &'static str {
        match self {
            Self::EmptySecret { .. } => {
                "set the secret (e.g. BETTER_AUTH_SECRET) to a long random value, such as the output of \
                 `openssl rand -base64 48`"
            }
            Self::ShortSecret { .. } => {
                "use a random secret of at least 32 bytes (`openssl rand -base64 48`) and rotate to it; to \
                 open values sealed under an existing short secret, allow short secrets explicitly"
            }
            Self::Malformed { .. } => {
                "pass the sealed value exactly as stored (legacy: standard base64; v1: starts with \
                 `$mosaic-seal$`), without added quotes or line breaks"
            }
            Self::UnsupportedVersion { .. } => {
                "open this value with a newer build of mosaic-seal, or check that the value was not altered"
            }
            Self::UnknownKeyId { .. } => {
                "add the secret this value was sealed under to the previous secrets (e.g. a line of the file named by \
                 MOSAIC_SEAL_PREVIOUS_SECRETS_FILE); `mosaic seal keys` prints the key ids of the configured secrets"
            }
            Self::WrongKey => {
                "add the secret this value was sealed under (e.g. the BETTER_AUTH_SECRET in force when it was \
                 written) to the previous secrets; if every secret is present, the value was altered"
            }
            Self::Tampered { .. } => {
                "the stored value was changed after sealing: restore it from a backup or seal it again from \
                 its source"
            }
            Self::BadAssociatedData { .. } => {
                "pass the associated data (table, column, row id) the value was sealed with; a value copied \
                 from another row will not open here, by design"
            }
            Self::LegacyRefused => {
                "re-seal legacy values in the v1 format first, or build the keyring to accept legacy values"
            }
            Self::NotUtf8 => "legacy values hold UTF-8 text: seal binary data in the v1 format",
            Self::TooLong => "seal values smaller than 64 GiB",
            Self::Randomness(_) => {
                "check the operating system's random number source (getrandom(2))"
            }
            Self::InvalidKeyId => {
                "write a key id as 16 hexadecimal digits, as printed by mosaic-seal"
            }
            Self::KeyDerivation => "report this as a bug in mosaic-seal",
        }
    }
}
