//! Certificate-level authorization: may this certificate act under the grant it names?

use std::time::Duration;

use mosaic_oid::{FederationIdentity, GrantId, SubjectUserId};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::authz_cache::DecisionKey;
use crate::error::{StoreError, StoreResult};
use crate::grants::GrantStatus;
use crate::ids::{CertSerial, PeerId};
use crate::peers::PeerState;
use crate::store::{Store, with_db};
use crate::time::now;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum DenyReason {
    /// No grant has the id the certificate names.
    UnknownGrant,
    /// The grant is pending, revoked or expired.
    GrantNotActive {
        /// Its status.
        status: GrantStatus,
    },
    /// The grant is active but its expiry has passed.
    GrantExpired,
    /// The certificate names another subject user than the grant's.
    SubjectMismatch,
    /// The grant's peer is not active (pending, suspended or revoked).
    PeerNotActive {
        /// Its state.
        state: PeerState,
    },
    /// The certificate is not the grant's peer's current certificate.
    SerialMismatch,
}

impl DenyReason {
    /// A stable machine-readable name, for audit entries and responses.
    pub fn code(self) -> &'static str {
        match self {
            Self::UnknownGrant => "unknown_grant",
            Self::GrantNotActive {
                status: GrantStatus::Revoked,
            } => "grant_revoked",
            Self::GrantNotActive {
                status: GrantStatus::Expired,
            }
            | Self::GrantExpired => "grant_expired",
            Self::GrantNotActive { .. } => "grant_not_active",
            Self::SubjectMismatch => "subject_mismatch",
            Self::PeerNotActive { .. } => "peer_not_active",
            Self::SerialMismatch => "serial_mismatch",
        }
    }
}

/// What an allowed request may act under.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct AuthorizedGrant {
    /// The grant.
    #[serde(serialize_with = "crate::ids::serialize_display")]
    pub grant_id: GrantId,
    /// On whose behalf.
    #[serde(serialize_with = "crate::ids::serialize_display")]
    pub subject_user_id: SubjectUserId,
    /// The peer making the request.
    pub peer_id: PeerId,
    /// The grant's scope.
    pub scope: Value,
    /// The grant's expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// The answer of [`Store::authorize`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthorizationDecision {
    /// Allowed, under this grant.
    Allow(AuthorizedGrant),
    /// Refused, for this reason.
    Deny(DenyReason),
}

impl AuthorizationDecision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DecisionSource {
    /// This process's cache (only while subscribed to invalidations).
    LocalCache,
    /// The Valkey cache shared by every gateway.
    SharedCache,
    /// The database.
    Database,
}

/// A decision and where it came from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Authorization {
    /// Allow or deny.
    pub decision: AuthorizationDecision,
    /// Which layer answered.
    pub source: DecisionSource,
}

/// The cached form of a decision (plain UUIDs, so the cache format does not depend on other crates'
/// serde support).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
enum CachedDecision {
    Allow {
        grant_id: Uuid,
        subject_user_id: Uuid,
        peer_id: Uuid,
        scope: Value,
        #[serde(with = "time::serde::rfc3339::option")]
        expires_at: Option<OffsetDateTime>,
    },
    Deny {
        #[serde(flatten)]
        reason: DenyReason,
    },
}

impl CachedDecision {
    fn from_decision(decision: &AuthorizationDecision) -> Self {
        match decision {
            AuthorizationDecision::Allow(grant) => Self::Allow {
                grant_id: grant.grant_id.into(),
                subject_user_id: grant.subject_user_id.into(),
                peer_id: grant.peer_id.as_uuid(),
                scope: grant.scope.clone(),
                expires_at: grant.expires_at,
            },
            AuthorizationDecision::Deny(reason) => Self::Deny { reason: *reason },
        }
    }

    /// Back to a decision, re-checking the expiry against `at` (a cached allow never outlives its grant).
    fn into_decision(self, at: OffsetDateTime) -> AuthorizationDecision {
        match self {
            Self::Allow {
                expires_at: Some(expiry),
                ..
            } if expiry <= at => AuthorizationDecision::Deny(DenyReason::GrantExpired),
            Self::Allow {
                grant_id,
                subject_user_id,
                peer_id,
                scope,
                expires_at,
            } => AuthorizationDecision::Allow(AuthorizedGrant {
                grant_id: GrantId::from(grant_id),
                subject_user_id: SubjectUserId::from(subject_user_id),
                peer_id: PeerId::from(peer_id),
                scope,
                expires_at,
            }),
            Self::Deny { reason } => AuthorizationDecision::Deny(reason),
        }
    }
}

#[derive(sqlx::FromRow)]
struct AuthorizationRow {
    subject_user_id: Uuid,
    peer_id: Uuid,
    status: String,
    scope: Json<Value>,
    expires_at: Option<OffsetDateTime>,
    peer_state: String,
    cert_serial: Option<String>,
}

const AUTHORIZATION_FACTS: &str = "SELECT g.subject_user_id, g.peer_id, g.status, g.scope, g.expires_at, \
     p.state AS peer_state, p.cert_serial \
     FROM federation_grants g JOIN federation_peers p ON p.id = g.peer_id WHERE g.id = $1";

impl Store {
    /// Decides whether a request made with a certificate carrying `identity` and serial `serial` is allowed.
    ///
    /// Allowed only when the grant exists, is active and not past its expiry, names the same subject user,
    /// and belongs to an active peer whose *current* certificate has this serial.
    ///
    /// Decisions are cached (in Valkey, and in process while subscribed to invalidations) for at most the
    /// decision TTL and never past the grant's expiry; revocations drop them everywhere. When Valkey is
    /// unavailable, the database decides (degraded mode, logged).
    ///
    /// # Errors
    /// A database failure is an error, never an allow: callers must refuse the request.
    pub async fn authorize(
        &self,
        identity: &FederationIdentity,
        serial: &CertSerial,
    ) -> StoreResult<Authorization> {
        let grant = Uuid::from(identity.grant_id);
        let key = DecisionKey {
            subject: identity.subject_user_id.into(),
            serial: serial.as_str().to_owned(),
        };
        let authz = &self.inner.authz;
        let at = now();

        if let Some(cached) = authz
            .local_get(grant, &key)
            .and_then(|text| decode_cached(&text, at))
        {
            return Ok(Authorization {
                decision: cached,
                source: DecisionSource::LocalCache,
            });
        }
        let ticket = authz.local_ticket(grant);

        let mut shared_generation = None;
        if let Some(Ok(lookup)) = authz.shared_get(grant, &key).await {
            if let Some(text) = lookup.value
                && let Some(decision) = decode_cached(&text, at)
            {
                if let Some(ttl) = cache_ttl(authz.decision_ttl(), &decision, at) {
                    authz.local_insert(grant, key, text, ttl, ticket);
                }
                return Ok(Authorization {
                    decision,
                    source: DecisionSource::SharedCache,
                });
            }
            shared_generation = Some(lookup.generation);
        }

        let decision = self.decide_from_database(identity, serial, at).await?;
        if let Some(ttl) = cache_ttl(authz.decision_ttl(), &decision, at)
            && let Ok(text) = serde_json::to_string(&CachedDecision::from_decision(&decision))
        {
            if let Some(generation) = shared_generation {
                authz
                    .shared_put(grant, generation, &key, text.clone(), ttl)
                    .await;
            }
            authz.local_insert(grant, key, text, ttl, ticket);
        }
        Ok(Authorization {
            decision,
            source: DecisionSource::Database,
        })
    }

    async fn decide_from_database(
        &self,
        identity: &FederationIdentity,
        serial: &CertSerial,
        at: OffsetDateTime,
    ) -> StoreResult<AuthorizationDecision> {
        let row: Option<AuthorizationRow> = with_db!(self.db(), pool => {
            sqlx::query_as(AUTHORIZATION_FACTS).bind(Uuid::from(identity.grant_id)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("authorizing a request"))?;
        let Some(row) = row else {
            return Ok(AuthorizationDecision::Deny(DenyReason::UnknownGrant));
        };
        let status: GrantStatus = row.status.parse().map_err(|_| StoreError::CorruptRow {
            column: "federation_grants.status",
            reason: format!("unknown status {:?}", row.status),
        })?;
        let peer_state: PeerState = row.peer_state.parse().map_err(|_| StoreError::CorruptRow {
            column: "federation_peers.state",
            reason: format!("unknown state {:?}", row.peer_state),
        })?;
        let reason = if status != GrantStatus::Active {
            Some(DenyReason::GrantNotActive { status })
        } else if row.expires_at.is_some_and(|expiry| expiry <= at) {
            Some(DenyReason::GrantExpired)
        } else if row.subject_user_id != Uuid::from(identity.subject_user_id) {
            Some(DenyReason::SubjectMismatch)
        } else if peer_state != PeerState::Active {
            Some(DenyReason::PeerNotActive { state: peer_state })
        } else if row.cert_serial.as_deref() != Some(serial.as_str()) {
            Some(DenyReason::SerialMismatch)
        } else {
            None
        };
        Ok(match reason {
            Some(reason) => AuthorizationDecision::Deny(reason),
            None => AuthorizationDecision::Allow(AuthorizedGrant {
                grant_id: identity.grant_id,
                subject_user_id: identity.subject_user_id,
                peer_id: PeerId::from(row.peer_id),
                scope: row.scope.0,
                expires_at: row.expires_at,
            }),
        })
    }
}

fn decode_cached(text: &str, at: OffsetDateTime) -> Option<AuthorizationDecision> {
    // An entry this version cannot read is a miss, never an error.
    serde_json::from_str::<CachedDecision>(text)
        .ok()
        .map(|cached| cached.into_decision(at))
}

/// How long a decision may be cached: the configured TTL, cut at the grant's expiry; `None` for "do not".
fn cache_ttl(
    configured: Option<Duration>,
    decision: &AuthorizationDecision,
    at: OffsetDateTime,
) -> Option<Duration> {
    let ttl = configured?;
    let ttl = match decision {
        AuthorizationDecision::Allow(AuthorizedGrant {
            expires_at: Some(expiry),
            ..
        }) => {
            let left = Duration::try_from(*expiry - at).ok()?;
            ttl.min(left)
        }
        _ => ttl,
    };
    (!ttl.is_zero()).then_some(ttl)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn allow(expires_at: Option<OffsetDateTime>) -> AuthorizationDecision {
        AuthorizationDecision::Allow(AuthorizedGrant {
            grant_id: GrantId::from(Uuid::new_v4()),
            subject_user_id: SubjectUserId::from(Uuid::new_v4()),
            peer_id: PeerId::new_random(),
            scope: serde_json::json!({"read": ["whoami"]}),
            expires_at,
        })
    }

    #[test]
    fn cached_decisions_round_trip() {
        let at = now();
        for decision in [
            allow(None),
            allow(Some(at + time::Duration::hours(1))),
            AuthorizationDecision::Deny(DenyReason::UnknownGrant),
            AuthorizationDecision::Deny(DenyReason::GrantNotActive {
                status: GrantStatus::Revoked,
            }),
            AuthorizationDecision::Deny(DenyReason::PeerNotActive {
                state: PeerState::Suspended,
            }),
            AuthorizationDecision::Deny(DenyReason::SerialMismatch),
        ] {
            let text = serde_json::to_string(&CachedDecision::from_decision(&decision)).unwrap();
            assert_eq!(decode_cached(&text, at), Some(decision), "{text}");
        }
        assert_eq!(decode_cached("{\"decision\":\"maybe\"}", at), None);
        assert_eq!(decode_cached("", at), None);
    }

    #[test]
    fn a_cached_allow_never_outlives_its_grant() {
        let at = now();
        let expiry = at + time::Duration::seconds(5);
        let decision = allow(Some(expiry));
        let ttl = cache_ttl(Some(Duration::from_secs(30)), &decision, at).unwrap();
        assert!(ttl <= Duration::from_secs(5));
        let text = serde_json::to_string(&CachedDecision::from_decision(&decision)).unwrap();
        assert_eq!(
            decode_cached(&text, expiry + time::Duration::milliseconds(1)),
            Some(AuthorizationDecision::Deny(DenyReason::GrantExpired))
        );
        assert_eq!(
            cache_ttl(Some(Duration::from_secs(30)), &allow(Some(at)), at),
            None
        );
        assert_eq!(cache_ttl(None, &allow(None), at), None);
    }
}
