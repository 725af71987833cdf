//! Opened plaintext in a zeroizing buffer.

use core::fmt;

use zeroize::Zeroizing;

use crate::SealError;

/// An opened plaintext. The bytes live in a buffer that is zeroed when dropped, and `Debug` shows only
/// the length.
///
/// The buffer is the one the sealed value was decoded into: opening decrypts in place and moves the
/// plaintext to the front, so the plaintext is never copied into a second, unzeroed allocation.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub(crate) fn new(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The plaintext bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as UTF-8 text (legacy values always hold text; a PEM key is text).
    ///
    /// # Errors
    /// [`SealError::NotUtf8`] when the bytes are not UTF-8.
    pub fn as_str(&self) -> Result<&str, SealError> {
        core::str::from_utf8(&self.0).map_err(|_| SealError::NotUtf8)
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the plaintext is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The zeroizing buffer itself, for callers that keep the bytes.
    #[must_use]
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plaintext")
            .field("len", &self.0.len())
            .finish_non_exhaustive()
    }
}
