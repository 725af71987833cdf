//! Enrollment tokens: single-use, short-lived, stored only as a hash.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mosaic_oid::GrantId;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{StoreError, StoreResult};
use crate::ids::PeerId;
use crate::store::{Store, with_db};
use crate::time::{DbTime, now};

/// The longest an enrollment token may live: 15 minutes.
pub const MAX_ENROLLMENT_TOKEN_TTL: Duration = Duration::from_secs(900);

/// Random bytes in a token (256 bits: a plain SHA-256 of it is a safe thing to store).
const TOKEN_BYTES: usize = 32;

/// The secret text of an enrollment token. Shown once, to be put in the enrollment URL; the store keeps only
/// its SHA-256. `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentToken(Zeroizing<String>);

impl EnrollmentToken {
    /// Wraps token text received from a peer (e.g. from an enrollment URL).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The token text (unpadded base64url, 43 characters).
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn generate() -> StoreResult<Self> {
        let mut bytes = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|e| StoreError::InvalidInput {
            field: "enrollment token",
            reason: format!("the operating system's random generator failed: {e}"),
        })?;
        Ok(Self(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()))))
    }

    fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrollmentToken(***)")
    }
}

/// A token just created by [`Store::create_enrollment_token`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedEnrollmentToken {
    /// The secret token, to hand to the peer once.
    pub token: EnrollmentToken,
    /// The grant it enrolls for.
    pub grant_id: GrantId,
    /// The peer of that grant.
    pub peer_id: PeerId,
    /// When it stops being claimable.
    pub expires_at: OffsetDateTime,
}

/// The result of a successful [`Store::claim_enrollment_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimedEnrollment {
    /// The grant the token was for.
    pub grant_id: GrantId,
    /// The peer of that grant.
    pub peer_id: PeerId,
    /// When it was claimed.
    pub claimed_at: OffsetDateTime,
}

const INSERT_TOKEN: &str = "INSERT INTO federation_enrollment_tokens (token_hash, grant_id, peer_id, created_at, expires_at) \
     SELECT $1, id, peer_id, $3, $4 FROM federation_grants WHERE id = $2 AND status = 'pending' \
     RETURNING peer_id";
const GRANT_STATUS: &str = "SELECT status FROM federation_grants WHERE id = $1";
const CLAIM_TOKEN: &str = "UPDATE federation_enrollment_tokens SET used_at = $2 \
     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
     RETURNING grant_id, peer_id";
const TOKEN_STATE: &str =
    "SELECT used_at IS NOT NULL FROM federation_enrollment_tokens WHERE token_hash = $1";

impl Store {
    /// Creates a single-use enrollment token for a pending grant, valid for `ttl` (at most 900 s).
    pub async fn create_enrollment_token(
        &self,
        grant_id: GrantId,
        ttl: Duration,
    ) -> StoreResult<IssuedEnrollmentToken> {
        if ttl.is_zero() || ttl > MAX_ENROLLMENT_TOKEN_TTL {
            return Err(StoreError::TokenTtlOutOfRange {
                requested: ttl.as_secs(),
                max: MAX_ENROLLMENT_TOKEN_TTL.as_secs(),
            });
        }
        let created_at = now();
        let ttl = time::Duration::try_from(ttl).map_err(|_| StoreError::TokenTtlOutOfRange {
            requested: ttl.as_secs(),
            max: MAX_ENROLLMENT_TOKEN_TTL.as_secs(),
        })?;
        let expires_at = DbTime::new(created_at + ttl);
        let token = EnrollmentToken::generate()?;
        let hash = token.hash();
        let peer: Option<Uuid> = with_db!(self.db(), pool => {
            sqlx::query_scalar(INSERT_TOKEN)
                .bind(hash.as_slice())
                .bind(Uuid::from(grant_id))
                .bind(DbTime::new(created_at))
                .bind(expires_at)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::database("creating an enrollment token"))?;
        match peer {
            Some(peer) => Ok(IssuedEnrollmentToken {
                token,
                grant_id,
                peer_id: PeerId::from(peer),
                expires_at: expires_at.get(),
            }),
            None => {
                let status: Option<String> = with_db!(self.db(), pool => {
                    sqlx::query_scalar(GRANT_STATUS).bind(Uuid::from(grant_id)).fetch_optional(pool).await
                })
                .map_err(StoreError::database("reading a grant's state"))?;
                Err(match status {
                    None => StoreError::NotFound {
                        entity: "grant",
                        id: grant_id.into(),
                    },
                    Some(current) => StoreError::InvalidTransition {
                        entity: "grant",
                        id: grant_id.into(),
                        action: "issue an enrollment token for",
                        current,
                        allowed: "pending",
                    },
                })
            }
        }
    }

    /// Claims a token: exactly once, atomically, however many gateways race for it.
    ///
    /// # Errors
    /// [`StoreError::TokenUnknown`], [`StoreError::TokenUsed`] or [`StoreError::TokenExpired`], each its own
    /// variant so that a gateway can answer each distinctly.
    pub async fn claim_enrollment_token(
        &self,
        token: &EnrollmentToken,
    ) -> StoreResult<ClaimedEnrollment> {
        let hash = token.hash();
        let claimed_at = now();
        let claimed: Option<(Uuid, Uuid)> = with_db!(self.db(), pool => {
            sqlx::query_as(CLAIM_TOKEN).bind(hash.as_slice()).bind(DbTime::new(claimed_at)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("claiming an enrollment token"))?;
        if let Some((grant, peer)) = claimed {
            return Ok(ClaimedEnrollment {
                grant_id: GrantId::from(grant),
                peer_id: PeerId::from(peer),
                claimed_at,
            });
        }
        // Nothing matched: say why. A used token stays "used" even once it is also past its expiry.
        let used: Option<bool> = with_db!(self.db(), pool => {
            sqlx::query_scalar(TOKEN_STATE).bind(hash.as_slice()).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading an enrollment token"))?;
        Err(match used {
            None => StoreError::TokenUnknown,
            Some(true) => StoreError::TokenUsed,
            Some(false) => StoreError::TokenExpired,
        })
    }
}
