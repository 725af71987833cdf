#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod extract;
mod registry;
mod tlv;
mod value;

pub use const_oid::{self, ObjectIdentifier};
pub use uuid::{self, Uuid};

pub use crate::{
    error::Error,
    extract::{FederationIdentity, certificate_der, certificate_der_from_pem, extract_identity},
    registry::{
        DEVELOPMENT_ARC, DEVELOPMENT_OID_NAMES, DEVELOPMENT_PEN, ExtensionId, FederationField,
        GRANT_ID, GRANT_ID_NAME, OidArc, OidRegistry, PRIVATE_ENTERPRISE_ARC, SUBJECT_USER_ID,
        SUBJECT_USER_ID_NAME,
    },
    value::{
        ENCODED_VALUE_LEN, GrantId, SubjectUserId, UUID_TEXT_LEN, decode_uuid_value,
        encode_uuid_value,
    },
};
