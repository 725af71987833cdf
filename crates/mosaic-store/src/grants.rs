//! Federation grants: who (a subject user) may be acted for by which peer, and in what scope.

use std::fmt;
use std::str::FromStr;

use mosaic_oid::{GrantId, SubjectUserId};
use serde_json::Value;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::ids::PeerId;
use crate::store::{Store, with_db};
use crate::time::{DbTime, now};

/// The longest revocation reason kept.
pub const MAX_REVOCATION_REASON_LEN: usize = 1000;

/// The lifecycle of a grant: `pending` → `active` → `revoked` or `expired`. The last two are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum GrantStatus {
    /// Created; waiting for the peer to enroll.
    Pending,
    /// The peer enrolled; requests under the grant are allowed.
    Active,
    /// Revoked by an operator. Final.
    Revoked,
    /// Its expiry passed. Final.
    Expired,
}

impl GrantStatus {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl fmt::Display for GrantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantStatus {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "revoked" => Ok(Self::Revoked),
            "expired" => Ok(Self::Expired),
            other => Err(StoreError::InvalidInput {
                field: "grant status",
                reason: format!("{other:?} is not one of pending, active, revoked, expired"),
            }),
        }
    }
}

/// A row of `federation_grants`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Grant {
    /// The grant id (what a peer certificate carries).
    #[serde(serialize_with = "crate::ids::serialize_display")]
    pub id: GrantId,
    /// The local user on whose behalf the peer acts.
    #[serde(serialize_with = "crate::ids::serialize_display")]
    pub subject_user_id: SubjectUserId,
    /// The peer the grant is for.
    pub peer_id: PeerId,
    /// Where it is in its lifecycle.
    pub status: GrantStatus,
    /// What the grant allows, as a JSON object.
    pub scope: Value,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it became active.
    #[serde(with = "time::serde::rfc3339::option")]
    pub activated_at: Option<OffsetDateTime>,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
    /// When it stops being valid (none: until revoked).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl Grant {
    /// Whether requests under this grant may be allowed at `at` (active and not past its expiry). The peer and
    /// certificate checks are [`Store::authorize`]'s.
    pub fn is_usable_at(&self, at: OffsetDateTime) -> bool {
        self.status == GrantStatus::Active && self.expires_at.is_none_or(|expiry| expiry > at)
    }
}

/// What [`Store::create_grant`] needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewGrant {
    /// The local user on whose behalf the peer will act.
    pub subject_user_id: SubjectUserId,
    /// The peer the grant is for (it must exist).
    pub peer_id: PeerId,
    /// A JSON object.
    pub scope: Value,
    /// Optional expiry, after creation.
    pub expires_at: Option<OffsetDateTime>,
}

impl NewGrant {
    /// A grant without expiry.
    pub fn new(subject_user_id: SubjectUserId, peer_id: PeerId, scope: Value) -> Self {
        Self {
            subject_user_id,
            peer_id,
            scope,
            expires_at: None,
        }
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires_at(mut self, at: OffsetDateTime) -> Self {
        self.expires_at = Some(at);
        self
    }
}

/// Which grants [`Store::list_grants`] returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantFilter {
    /// Only this peer's grants.
    pub peer_id: Option<PeerId>,
    /// Only grants in this state.
    pub status: Option<GrantStatus>,
}

impl GrantFilter {
    /// Every grant.
    pub fn all() -> Self {
        Self::default()
    }

    /// Restricts to one peer.
    #[must_use]
    pub fn peer(mut self, peer_id: PeerId) -> Self {
        self.peer_id = Some(peer_id);
        self
    }

    /// Restricts to one state.
    #[must_use]
    pub fn status(mut self, status: GrantStatus) -> Self {
        self.status = Some(status);
        self
    }
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: Uuid,
    subject_user_id: Uuid,
    peer_id: Uuid,
    status: String,
    scope: Json<Value>,
    created_at: OffsetDateTime,
    activated_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
    revoked_reason: Option<String>,
    expires_at: Option<OffsetDateTime>,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;

    fn try_from(row: GrantRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: GrantId::from(row.id),
            subject_user_id: SubjectUserId::from(row.subject_user_id),
            peer_id: PeerId::from(row.peer_id),
            status: row.status.parse().map_err(|_| StoreError::CorruptRow {
                column: "federation_grants.status",
                reason: format!("unknown status {:?}", row.status),
            })?,
            scope: row.scope.0,
            created_at: row.created_at,
            activated_at: row.activated_at,
            revoked_at: row.revoked_at,
            revoked_reason: row.revoked_reason,
            expires_at: row.expires_at,
        })
    }
}

macro_rules! grant_columns {
    () => {
        "id, subject_user_id, peer_id, status, scope, created_at, activated_at, revoked_at, revoked_reason, expires_at"
    };
}

const INSERT_GRANT: &str = concat!(
    "INSERT INTO federation_grants (id, subject_user_id, peer_id, status, scope, created_at, expires_at) ",
    "VALUES ($1, $2, $3, 'pending', $4, $5, $6) RETURNING ",
    grant_columns!()
);
const SELECT_GRANT: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM federation_grants WHERE id = $1"
);
const LIST_GRANTS: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM federation_grants ORDER BY created_at DESC, id"
);
const LIST_GRANTS_BY_PEER: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM federation_grants WHERE peer_id = $1 ORDER BY created_at DESC, id"
);
const LIST_GRANTS_BY_STATUS: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM federation_grants WHERE status = $1 ORDER BY created_at DESC, id"
);
const LIST_GRANTS_BY_PEER_AND_STATUS: &str = concat!(
    "SELECT ",
    grant_columns!(),
    " FROM federation_grants WHERE peer_id = $1 AND status = $2 ORDER BY created_at DESC, id"
);
const ACTIVATE_GRANT: &str = concat!(
    "UPDATE federation_grants SET status = 'active', activated_at = $2 ",
    "WHERE id = $1 AND status = 'pending' AND (expires_at IS NULL OR expires_at > $2) RETURNING ",
    grant_columns!()
);
const REVOKE_GRANT: &str = concat!(
    "UPDATE federation_grants SET status = 'revoked', revoked_at = $2, revoked_reason = $3 ",
    "WHERE id = $1 AND status IN ('pending', 'active') RETURNING ",
    grant_columns!()
);
const EXPIRE_GRANT: &str = concat!(
    "UPDATE federation_grants SET status = 'expired' ",
    "WHERE id = $1 AND status IN ('pending', 'active') AND expires_at IS NOT NULL AND expires_at <= $2 RETURNING ",
    grant_columns!()
);
const EXPIRE_DUE_GRANTS: &str = "UPDATE federation_grants SET status = 'expired' \
     WHERE status IN ('pending', 'active') AND expires_at IS NOT NULL AND expires_at <= $1 RETURNING id";
const GRANT_STATE: &str = "SELECT status, expires_at FROM federation_grants WHERE id = $1";

impl Store {
    /// Creates a pending grant.
    pub async fn create_grant(&self, new: &NewGrant) -> StoreResult<Grant> {
        if !new.scope.is_object() {
            return Err(StoreError::InvalidInput {
                field: "scope",
                reason: "a grant's scope must be a JSON object".to_owned(),
            });
        }
        let created_at = now();
        if let Some(expiry) = new.expires_at
            && expiry <= created_at
        {
            return Err(StoreError::InvalidInput {
                field: "expires_at",
                reason: "a grant's expiry must be in the future".to_owned(),
            });
        }
        let id = Uuid::new_v4();
        let row: GrantRow = with_db!(self.db(), pool => {
            sqlx::query_as(INSERT_GRANT)
                .bind(id)
                .bind(Uuid::from(new.subject_user_id))
                .bind(new.peer_id.as_uuid())
                .bind(Json(&new.scope))
                .bind(DbTime::new(created_at))
                .bind(new.expires_at.map(DbTime::new))
                .fetch_one(pool)
                .await
        })
        .map_err(|e| match e.as_database_error() {
            Some(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                entity: "peer",
                id: new.peer_id.as_uuid(),
            },
            _ => StoreError::database("creating a grant")(e),
        })?;
        row.try_into()
    }

    /// The grant with this id, if any.
    pub async fn get_grant(&self, id: GrantId) -> StoreResult<Option<Grant>> {
        let row: Option<GrantRow> = with_db!(self.db(), pool => {
            sqlx::query_as(SELECT_GRANT).bind(Uuid::from(id)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading a grant"))?;
        row.map(Grant::try_from).transpose()
    }

    /// Grants matching `filter`, newest first.
    pub async fn list_grants(&self, filter: GrantFilter) -> StoreResult<Vec<Grant>> {
        let peer = filter.peer_id.map(PeerId::as_uuid);
        let status = filter.status.map(GrantStatus::as_str);
        let rows: Vec<GrantRow> = with_db!(self.db(), pool => {
            match (peer, status) {
                (None, None) => sqlx::query_as(LIST_GRANTS).fetch_all(pool).await,
                (Some(peer), None) => sqlx::query_as(LIST_GRANTS_BY_PEER).bind(peer).fetch_all(pool).await,
                (None, Some(status)) => sqlx::query_as(LIST_GRANTS_BY_STATUS).bind(status).fetch_all(pool).await,
                (Some(peer), Some(status)) => {
                    sqlx::query_as(LIST_GRANTS_BY_PEER_AND_STATUS).bind(peer).bind(status).fetch_all(pool).await
                }
            }
        })
        .map_err(StoreError::database("listing grants"))?;
        rows.into_iter().map(Grant::try_from).collect()
    }

    /// `pending` → `active`. Refused when the grant is in any other state or its expiry has passed.
    pub async fn activate_grant(&self, id: GrantId) -> StoreResult<Grant> {
        let at = now();
        let row: Option<GrantRow> = with_db!(self.db(), pool => {
            sqlx::query_as(ACTIVATE_GRANT).bind(Uuid::from(id)).bind(DbTime::new(at)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("activating a grant"))?;
        let grant = self
            .grant_transition_result(id, row, "activate", "pending", at)
            .await?;
        self.inner.authz.invalidate_grants(&[id]).await;
        Ok(grant)
    }

    /// `pending` or `active` → `revoked`, with a reason. Every gateway stops allowing requests under the
    /// grant: the shared cache is invalidated before this returns.
    pub async fn revoke_grant(&self, id: GrantId, reason: &str) -> StoreResult<Grant> {
        if reason.chars().count() > MAX_REVOCATION_REASON_LEN {
            return Err(StoreError::InvalidInput {
                field: "revocation reason",
                reason: format!("at most {MAX_REVOCATION_REASON_LEN} characters"),
            });
        }
        let at = now();
        let row: Option<GrantRow> = with_db!(self.db(), pool => {
            sqlx::query_as(REVOKE_GRANT)
                .bind(Uuid::from(id))
                .bind(DbTime::new(at))
                .bind(reason)
                .fetch_optional(pool)
                .await
        })
        .map_err(StoreError::database("revoking a grant"))?;
        // Invalidate even when the transition was refused: it costs little and covers a racing revoker whose
        // own invalidation failed.
        self.inner.authz.invalidate_grants(&[id]).await;
        self.grant_transition_result(id, row, "revoke", "pending or active", at)
            .await
    }

    /// `pending` or `active` → `expired`, once the grant's expiry has passed.
    pub async fn expire_grant(&self, id: GrantId) -> StoreResult<Grant> {
        let at = now();
        let row: Option<GrantRow> = with_db!(self.db(), pool => {
            sqlx::query_as(EXPIRE_GRANT).bind(Uuid::from(id)).bind(DbTime::new(at)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("expiring a grant"))?;
        let grant = self
            .grant_transition_result(id, row, "expire", "pending or active", at)
            .await?;
        self.inner.authz.invalidate_grants(&[id]).await;
        Ok(grant)
    }

    /// Marks every pending or active grant whose expiry has passed as expired, and returns their ids.
    /// (Authorization never depends on this sweep: it checks the expiry itself.)
    pub async fn expire_due_grants(&self) -> StoreResult<Vec<GrantId>> {
        let ids: Vec<Uuid> = with_db!(self.db(), pool => {
            sqlx::query_scalar(EXPIRE_DUE_GRANTS).bind(DbTime::new(now())).fetch_all(pool).await
        })
        .map_err(StoreError::database("expiring grants"))?;
        let ids: Vec<GrantId> = ids.into_iter().map(GrantId::from).collect();
        self.inner.authz.invalidate_grants(&ids).await;
        Ok(ids)
    }

    /// Turns the result of a conditional `UPDATE … RETURNING` into the grant, or into the reason it matched
    /// nothing.
    async fn grant_transition_result(
        &self,
        id: GrantId,
        row: Option<GrantRow>,
        action: &'static str,
        allowed: &'static str,
        at: OffsetDateTime,
    ) -> StoreResult<Grant> {
        if let Some(row) = row {
            return row.try_into();
        }
        let state: Option<(String, Option<OffsetDateTime>)> = with_db!(self.db(), pool => {
            sqlx::query_as(GRANT_STATE).bind(Uuid::from(id)).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading a grant's state"))?;
        match state {
            None => Err(StoreError::NotFound {
                entity: "grant",
                id: id.into(),
            }),
            Some((status, expires_at)) => {
                if action == "activate"
                    && status == "pending"
                    && expires_at.is_some_and(|expiry| expiry <= at)
                {
                    return Err(StoreError::GrantExpired(id.into()));
                }
                if action == "expire" && (status == "pending" || status == "active") {
                    return Err(StoreError::InvalidInput {
                        field: "grant",
                        reason: format!("grant {id} has not reached its expiry (or has none)"),
                    });
                }
                Err(StoreError::InvalidTransition {
                    entity: "grant",
                    id: id.into(),
                    action,
                    current: status,
                    allowed,
                })
            }
        }
    }
}
