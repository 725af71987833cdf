#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod audit;
mod authz;
mod authz_cache;
mod embeddings;
mod error;
mod grants;
mod ids;
mod peers;
mod rotation;
mod store;
mod time;
mod tokens;

pub use crate::audit::{AuditEntry, AuditOutcome, AuditQuery, NewAuditEntry};
pub use crate::authz::{
    Authorization, AuthorizationDecision, AuthorizedGrant, DecisionSource, DenyReason,
};
pub use crate::authz_cache::{CacheSettings, INVALIDATION_CHANNEL};
pub use crate::embeddings::{EMBEDDING_DIMENSIONS, EmbeddingMatch, EmbeddingRecord, MAX_NEAREST};
pub use crate::error::{StoreError, StoreResult};
pub use crate::grants::{Grant, GrantFilter, GrantStatus, MAX_REVOCATION_REASON_LEN, NewGrant};
pub use crate::ids::{CertSerial, PeerId};
pub use crate::peers::{ClientKeyPem, NewPeer, Peer, PeerCertificate, PeerState};
pub use crate::rotation::{
    KeyValueCount, RotationOptions, RotationProgress, RotationReport, SealedValueStatus,
};
pub use crate::store::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store, StoreOptions, Tier};
pub use crate::tokens::{
    ClaimedEnrollment, EnrollmentToken, IssuedEnrollmentToken, MAX_ENROLLMENT_TOKEN_TTL,
};

/// The identity types a certificate carries, re-exported from `mosaic-oid`.
pub use mosaic_oid::{FederationIdentity, GrantId, SubjectUserId};
/// The keyring peer keys are sealed with, re-exported from `mosaic-seal`.
pub use mosaic_seal::Keyring;
