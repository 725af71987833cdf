#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod envelope;
mod error;
mod key;
mod keyring;
mod plaintext;

pub use envelope::{Format, V1_PREFIX, format_of, key_id_of};
pub use error::{SealError, SecretRole};
pub use key::KeyId;
pub use keyring::{Keyring, KeyringOptions, MIN_SECRET_LEN, Opened};
pub use plaintext::Plaintext;
