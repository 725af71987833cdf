//! The keyring: one current key that seals, previous keys that only open.

use core::fmt;

use crate::{
    Format, KeyId, Plaintext, SealError, SecretRole,
    envelope::{self, Decoded},
    key::SealKey,
};

/// The shortest secret accepted unless short secrets are explicitly allowed, in bytes.
///
/// The key is SHA-256 of the secret, and SHA-256 is no password KDF: it is fast, so a short or guessable
/// secret can be brute-forced from any sealed value. Only long random secrets are safe.
pub const MIN_SECRET_LEN: usize = 32;

/// How a [`Keyring`] treats secrets and legacy values. `Default` is the strict choice for secrets
/// (refuse short ones) and the compatible one for values (open legacy ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KeyringOptions {
    /// Accept secrets shorter than [`MIN_SECRET_LEN`] bytes. Only for opening (and re-sealing) values
    /// sealed under an existing short secret: the key is SHA-256 of the secret, which is no password KDF.
    pub allow_short_secrets: bool,
    /// Refuse legacy values in `open` and `reseal`. Legacy values carry no associated data, so once every
    /// stored value is v1, refusing them stops a legacy value from being planted where a v1 value bound to
    /// its row is expected.
    pub refuse_legacy_values: bool,
}

impl KeyringOptions {
    /// Accepts secrets shorter than [`MIN_SECRET_LEN`] bytes (see the field's docs).
    #[must_use]
    pub const fn allow_short_secrets(mut self) -> Self {
        self.allow_short_secrets = true;
        self
    }

    /// Refuses legacy values (see the field's docs).
    #[must_use]
    pub const fn refuse_legacy_values(mut self) -> Self {
        self.refuse_legacy_values = true;
        self
    }
}

/// A value opened by [`Keyring::open_with_details`]: the plaintext, and what it was sealed under.
#[derive(Debug)]
pub struct Opened {
    plaintext: Plaintext,
    format: Format,
    key_id: KeyId,
    under_current_key: bool,
}

impl Opened {
    /// The plaintext.
    #[must_use]
    pub fn plaintext(&self) -> &Plaintext {
        &self.plaintext
    }

    /// The plaintext, by value.
    #[must_use]
    pub fn into_plaintext(self) -> Plaintext {
        self.plaintext
    }

    /// The format the value was in.
    #[must_use]
    pub fn format(&self) -> Format {
        self.format
    }

    /// The key that opened it (for a legacy value: the first key of the keyring whose tag check passed).
    #[must_use]
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// Whether the value must be re-sealed to be under the current key in the v1 format.
    #[must_use]
    pub fn needs_reseal(&self) -> bool {
        self.format != Format::V1 || !self.under_current_key
    }
}

/// One current key that seals, and any number of previous keys that only open.
///
/// Every key is derived once, when the keyring is built: AES key schedules, the key id and the AAD-check
/// HMAC key. Sealing and opening never hash the secret again. `Debug` prints key ids only.
///
/// ```
/// use mosaic_seal::Keyring;
///
/// let old = "an-old-secret-that-is-at-least-32-bytes-long";
/// let new = "a-new-secret-that-is-also-at-least-32-bytes-long";
/// let before = Keyring::from_secrets(old, [] as [&str; 0])?;
/// let sealed = before.seal(b"value", b"federation_peers/client_key_pem/42")?;
///
/// let during = Keyring::from_secrets(new, [old])?;
/// assert!(during.needs_reseal(&sealed)?);
/// let resealed = during.reseal(&sealed, b"federation_peers/client_key_pem/42")?;
/// assert!(!during.needs_reseal(&resealed)?);
/// # Ok::<(), mosaic_seal::SealError>(())
/// ```
pub struct Keyring {
    /// The key that seals (and opens).
    current: SealKey,
    /// Keys that only open, in the order given.
    previous: Vec<SealKey>,
    options: KeyringOptions,
}

impl Keyring {
    /// Builds a keyring from the current secret and the previous ones, refusing empty secrets and secrets
    /// shorter than [`MIN_SECRET_LEN`] bytes.
    ///
    /// A previous secret equal to the current one or to an earlier previous one is skipped.
    ///
    /// # Errors
    /// [`SealError::EmptySecret`] or [`SealError::ShortSecret`], naming which secret.
    pub fn from_secrets<I, S>(current: &str, previous: I) -> Result<Self, SealError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::from_secrets_with(current, previous, KeyringOptions::default())
    }

    /// Like [`from_secrets`](Self::from_secrets), with options.
    ///
    /// # Errors
    /// [`SealError::EmptySecret`], or [`SealError::ShortSecret`] unless
    /// [`KeyringOptions::allow_short_secrets`] is set.
    pub fn from_secrets_with<I, S>(
        current: &str,
        previous: I,
        options: KeyringOptions,
    ) -> Result<Self, SealError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut keyring = Self {
            current: derive_checked(current, SecretRole::Current, options)?,
            previous: Vec::new(),
            options,
        };
        for (index, secret) in previous.into_iter().enumerate() {
            let key = derive_checked(secret.as_ref(), SecretRole::Previous { index }, options)?;
            if !keyring.contains(key.id) {
                keyring.previous.push(key);
            }
        }
        Ok(keyring)
    }

    /// The options the keyring was built with.
    #[must_use]
    pub fn options(&self) -> KeyringOptions {
        self.options
    }

    /// Every key, current first.
    fn keys(&self) -> impl Iterator<Item = &SealKey> {
        core::iter::once(&self.current).chain(&self.previous)
    }

    /// The id of the current key (the one [`seal`](Self::seal) uses).
    #[must_use]
    pub fn current_key_id(&self) -> KeyId {
        self.current.id
    }

    /// The ids of every key, current first, then the previous ones in the order given.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys().map(|key| key.id)
    }

    /// Whether the keyring holds a key with this id.
    #[must_use]
    pub fn contains(&self, key_id: KeyId) -> bool {
        self.key(key_id).is_some()
    }

    fn key(&self, key_id: KeyId) -> Option<&SealKey> {
        self.keys().find(|key| key.id == key_id)
    }

    /// Seals `plaintext` in the v1 envelope under the current key, bound to `aad` (pass `&[]` for none).
    ///
    /// `aad` should say where the value lives, e.g. `b"federation_peers/client_key_pem/<row id>"`: a value
    /// copied to another place then fails to open with [`SealError::BadAssociatedData`].
    ///
    /// # Errors
    /// [`SealError::Randomness`] if the OS random number generator fails; [`SealError::TooLong`] past
    /// AES-GCM's limits.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SealError> {
        envelope::seal_v1(&self.current, plaintext, aad)
    }

    /// Seals UTF-8 `plaintext` in the legacy format under the current key, for sharing a database with
    /// TypeScript gateways. Legacy values carry no associated data and no key id.
    ///
    /// # Errors
    /// [`SealError::Randomness`] if the OS random number generator fails; [`SealError::TooLong`] past
    /// AES-GCM's limits.
    pub fn seal_legacy(&self, plaintext: &str) -> Result<String, SealError> {
        envelope::seal_legacy(&self.current, plaintext.as_bytes())
    }

    /// Opens a sealed value of either format.
    ///
    /// A v1 value is opened with the key its header names and must have been sealed with the same `aad`.
    /// A legacy value is tried with the current key, then each previous key; it carries no associated
    /// data, so `aad` cannot be checked for it (re-seal it to bind it, or refuse legacy values with
    /// [`KeyringOptions::refuse_legacy_values`] once none are left).
    ///
    /// # Errors
    /// See [`SealError`] for which failure is reported how.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Plaintext, SealError> {
        self.open_with_details(sealed, aad)
            .map(Opened::into_plaintext)
    }

    /// Like [`open`](Self::open), also saying which format and key the value was under.
    ///
    /// # Errors
    /// See [`SealError`].
    pub fn open_with_details(&self, sealed: &str, aad: &[u8]) -> Result<Opened, SealError> {
        match envelope::decode(sealed)? {
            Decoded::V1 { key_id, bytes } => {
                let key = self.key(key_id).ok_or(SealError::UnknownKeyId { key_id })?;
                Ok(Opened {
                    plaintext: envelope::open_v1(key, bytes, aad)?,
                    format: Format::V1,
                    key_id,
                    under_current_key: key_id == self.current_key_id(),
                })
            }
            Decoded::Legacy(mut bytes) => {
                if self.options.refuse_legacy_values {
                    return Err(SealError::LegacyRefused);
                }
                let key = self
                    .keys()
                    .find(|key| envelope::try_open_legacy_in_place(key, &mut bytes))
                    .ok_or(SealError::WrongKey)?;
                Ok(Opened {
                    plaintext: envelope::finish_legacy(bytes),
                    format: Format::Legacy,
                    key_id: key.id,
                    under_current_key: key.id == self.current_key_id(),
                })
            }
        }
    }

    /// Whether `sealed` is not yet a v1 value under the current key. Reads the framing only (no
    /// decryption): every legacy value needs re-sealing, and a v1 value needs it when it names a previous
    /// key.
    ///
    /// # Errors
    /// [`SealError::Malformed`] or [`SealError::UnsupportedVersion`] for values this build cannot read, and
    /// [`SealError::UnknownKeyId`] for a v1 value under a key that is not in the keyring (it cannot be
    /// re-sealed until its secret is added as a previous secret).
    pub fn needs_reseal(&self, sealed: &str) -> Result<bool, SealError> {
        match envelope::key_id_of(sealed)? {
            None => Ok(true),
            Some(key_id) if key_id == self.current_key_id() => Ok(false),
            Some(key_id) if self.contains(key_id) => Ok(true),
            Some(key_id) => Err(SealError::UnknownKeyId { key_id }),
        }
    }

    /// Opens `sealed` (either format, any key of the keyring, checking `aad` for v1) and seals its
    /// plaintext again in the v1 format under the current key, bound to `aad`.
    ///
    /// It always produces a fresh value (new nonce), also for a value that is already current, so the
    /// caller may skip values for which [`needs_reseal`](Self::needs_reseal) is `false`. The input is
    /// fully authenticated before anything is written, so a failed re-seal leaves the stored value as it
    /// was.
    ///
    /// # Errors
    /// Everything [`open`](Self::open) and [`seal`](Self::seal) report.
    pub fn reseal(&self, sealed: &str, aad: &[u8]) -> Result<String, SealError> {
        let plaintext = self.open(sealed, aad)?;
        self.seal(plaintext.as_bytes(), aad)
    }
}

fn derive_checked(
    secret: &str,
    role: SecretRole,
    options: KeyringOptions,
) -> Result<SealKey, SealError> {
    if secret.is_empty() {
        return Err(SealError::EmptySecret { role });
    }
    if secret.len() < MIN_SECRET_LEN && !options.allow_short_secrets {
        return Err(SealError::ShortSecret { role });
    }
    SealKey::derive(secret.as_bytes())
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field(
                "previous",
                &self.previous.iter().map(|key| key.id).collect::<Vec<_>>(),
            )
            .field("options", &self.options)
            .finish()
    }
}
