//! The federation audit log: append-only, read newest first.

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

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// A request was authorized.
    Allowed,
    /// A request was refused.
    Denied,
    /// An operation completed.
    Succeeded,
    /// An operation failed.
    Failed,
}

impl AuditOutcome {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditOutcome {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "allowed" => Ok(Self::Allowed),
            "denied" => Ok(Self::Denied),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::InvalidInput {
                field: "audit outcome",
                reason: format!("{other:?} is not one of allowed, denied, succeeded, failed"),
            }),
        }
    }
}

/// An entry to append with [`Store::append_audit`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewAuditEntry {
    /// The peer concerned, when known (it must exist).
    pub peer_id: Option<PeerId>,
    /// The grant concerned, as presented (it need not exist: refusals of unknown grants are logged too).
    pub grant_id: Option<GrantId>,
    /// The subject user concerned, as presented.
    pub subject_user_id: Option<SubjectUserId>,
    /// What happened: lowercase, dotted, e.g. `enrollment.claim` or `request.authorize`.
    pub action: String,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Details, as a JSON object. Never put secrets here.
    pub detail: Value,
}

impl NewAuditEntry {
    /// An entry with no peer, grant or subject, and empty detail.
    pub fn new(action: impl Into<String>, outcome: AuditOutcome) -> Self {
        Self {
            peer_id: None,
            grant_id: None,
            subject_user_id: None,
            action: action.into(),
            outcome,
            detail: Value::Object(serde_json::Map::new()),
        }
    }

    /// Sets the peer.
    #[must_use]
    pub fn peer(mut self, peer_id: PeerId) -> Self {
        self.peer_id = Some(peer_id);
        self
    }

    /// Sets the grant.
    #[must_use]
    pub fn grant(mut self, grant_id: GrantId) -> Self {
        self.grant_id = Some(grant_id);
        self
    }

    /// Sets the subject user.
    #[must_use]
    pub fn subject(mut self, subject_user_id: SubjectUserId) -> Self {
        self.subject_user_id = Some(subject_user_id);
        self
    }

    /// Sets the detail object.
    #[must_use]
    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }
}

/// A row of `federation_audit_log`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Increasing with insertion.
    pub id: i64,
    /// The peer concerned.
    pub peer_id: Option<PeerId>,
    /// The grant concerned.
    #[serde(serialize_with = "crate::ids::serialize_display_option")]
    pub grant_id: Option<GrantId>,
    /// The subject user concerned.
    #[serde(serialize_with = "crate::ids::serialize_display_option")]
    pub subject_user_id: Option<SubjectUserId>,
    /// What happened.
    pub action: String,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// Details.
    pub detail: Value,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Which entries [`Store::list_audit`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only this grant's entries.
    pub grant_id: Option<GrantId>,
    /// At most this many (newest first).
    pub limit: u32,
}

impl AuditQuery {
    /// The newest `limit` entries.
    pub fn newest(limit: u32) -> Self {
        Self {
            grant_id: None,
            limit,
        }
    }

    /// Restricts to one grant.
    #[must_use]
    pub fn grant(mut self, grant_id: GrantId) -> Self {
        self.grant_id = Some(grant_id);
        self
    }
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    peer_id: Option<Uuid>,
    grant_id: Option<Uuid>,
    subject_user_id: Option<Uuid>,
    action: String,
    outcome: String,
    detail: Json<Value>,
    created_at: OffsetDateTime,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, Self::Error> {
        Ok(Self {
            id: row.id,
            peer_id: row.peer_id.map(PeerId::from),
            grant_id: row.grant_id.map(GrantId::from),
            subject_user_id: row.subject_user_id.map(SubjectUserId::from),
            outcome: row.outcome.parse().map_err(|_| StoreError::CorruptRow {
                column: "federation_audit_log.outcome",
                reason: format!("unknown outcome {:?}", row.outcome),
            })?,
            action: row.action,
            detail: row.detail.0,
            created_at: row.created_at,
        })
    }
}

macro_rules! audit_columns {
    () => {
        "id, peer_id, grant_id, subject_user_id, action, outcome, detail, created_at"
    };
}

const INSERT_AUDIT: &str = concat!(
    "INSERT INTO federation_audit_log (peer_id, grant_id, subject_user_id, action, outcome, detail, created_at) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
    audit_columns!()
);
const LIST_AUDIT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM federation_audit_log ORDER BY created_at DESC, id DESC LIMIT $1"
);
const LIST_AUDIT_FOR_GRANT: &str = concat!(
    "SELECT ",
    audit_columns!(),
    " FROM federation_audit_log WHERE grant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
);

fn valid_action(action: &str) -> bool {
    let mut chars = action.chars();
    action.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
}

impl Store {
    /// Appends an entry and returns it as stored.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<AuditEntry> {
        if !valid_action(&entry.action) {
            return Err(StoreError::InvalidInput {
                field: "audit action",
                reason: format!(
                    "{:?} must be 1 to 64 characters of a-z, 0-9, '_' and '.', starting with a letter",
                    entry.action
                ),
            });
        }
        if !entry.detail.is_object() {
            return Err(StoreError::InvalidInput {
                field: "audit detail",
                reason: "must be a JSON object".to_owned(),
            });
        }
        let row: AuditRow = with_db!(self.db(), pool => {
            sqlx::query_as(INSERT_AUDIT)
                .bind(entry.peer_id.map(PeerId::as_uuid))
                .bind(entry.grant_id.map(Uuid::from))
                .bind(entry.subject_user_id.map(Uuid::from))
                .bind(entry.action.as_str())
                .bind(entry.outcome.as_str())
                .bind(Json(&entry.detail))
                .bind(DbTime::new(now()))
                .fetch_one(pool)
                .await
        })
        .map_err(|e| match (e.as_database_error(), entry.peer_id) {
            (Some(db), Some(peer)) if db.is_foreign_key_violation() => StoreError::NotFound {
                entity: "peer",
                id: peer.as_uuid(),
            },
            _ => StoreError::database("appending to the audit log")(e),
        })?;
        row.try_into()
    }

    /// Entries, newest first.
    pub async fn list_audit(&self, query: AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let limit = i64::from(query.limit);
        let rows: Vec<AuditRow> = with_db!(self.db(), pool => {
            match query.grant_id {
                None => sqlx::query_as(LIST_AUDIT).bind(limit).fetch_all(pool).await,
                Some(grant) => {
                    sqlx::query_as(LIST_AUDIT_FOR_GRANT).bind(Uuid::from(grant)).bind(limit).fetch_all(pool).await
                }
            }
        })
        .map_err(StoreError::database("reading the audit log"))?;
        rows.into_iter().map(AuditEntry::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::valid_action;

    #[test]
    fn actions_are_dotted_lowercase() {
        assert!(valid_action("enrollment.claim"));
        assert!(valid_action("request.authorize_v2"));
        assert!(!valid_action(""));
        assert!(!valid_action("1abc"));
        assert!(!valid_action("Request"));
        assert!(!valid_action("a b"));
        assert!(!valid_action(&"a".repeat(65)));
    }
}
