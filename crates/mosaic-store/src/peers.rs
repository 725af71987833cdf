//! Federation peers: the other gateways, their certificates, and (on the requesting side) the private key
//! of our certificate for them, sealed at rest.

use std::fmt;
use std::str::FromStr;

use mosaic_oid::GrantId;
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{StoreError, StoreResult};
use crate::ids::{CertSerial, PeerId};
use crate::store::{Store, with_db};
use crate::time::{DbTime, now};

/// The lifecycle of a peer: `pending` → `active` ⇄ `suspended`, and any of them → `revoked` (final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PeerState {
    /// Known, not enrolled yet (no certificate).
    Pending,
    /// Enrolled; its current certificate is accepted.
    Active,
    /// Temporarily refused.
    Suspended,
    /// Refused for good. Final.
    Revoked,
}

impl PeerState {
    /// The text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PeerState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::InvalidInput {
                field: "peer state",
                reason: format!("{other:?} is not one of pending, active, suspended, revoked"),
            }),
        }
    }
}

/// A peer's current certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its serial number (unique across peers).
    pub serial: CertSerial,
    /// Its expiry.
    pub not_after: OffsetDateTime,
}

impl PeerCertificate {
    /// A certificate record.
    pub fn new(cert_pem: impl Into<String>, serial: CertSerial, not_after: OffsetDateTime) -> Self {
        Self {
            cert_pem: cert_pem.into(),
            serial,
            not_after,
        }
    }
}

/// A private key in PEM, opened. Zeroized on drop; `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientKeyPem(Zeroizing<String>);

impl ClientKeyPem {
    /// Wraps a PEM private key.
    pub fn new(pem: impl Into<String>) -> Self {
        Self(Zeroizing::new(pem.into()))
    }

    /// The PEM text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientKeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientKeyPem(***)")
    }
}

/// A row of `federation_peers`, with its key opened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Peer {
    /// The peer id.
    pub id: PeerId,
    /// The certificate common name; unique.
    pub common_name: String,
    /// A human name.
    pub display_name: String,
    /// The peer gateway's base URL.
    pub endpoint_url: String,
    /// Where it is in its lifecycle.
    pub state: PeerState,
    /// Its current certificate, once enrolled.
    pub certificate: Option<PeerCertificate>,
    /// The private key of our client certificate for this peer (requesting side only), opened.
    pub client_key: Option<ClientKeyPem>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed.
    pub updated_at: OffsetDateTime,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

/// What [`Store::insert_peer`] needs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewPeer {
    /// The certificate common name; unique.
    pub common_name: String,
    /// A human name.
    pub display_name: String,
    /// The peer gateway's base URL (`https://…`, or `http://…` for loopback demos).
    pub endpoint_url: String,
    /// The certificate, when already enrolled: the peer is then inserted `active`, else `pending`.
    pub certificate: Option<PeerCertificate>,
    /// The private key to seal, on the requesting side.
    pub client_key: Option<ClientKeyPem>,
}

impl NewPeer {
    /// A pending peer without certificate or key.
    pub fn new(
        common_name: impl Into<String>,
        display_name: impl Into<String>,
        endpoint_url: impl Into<String>,
    ) -> Self {
        Self {
            common_name: common_name.into(),
            display_name: display_name.into(),
            endpoint_url: endpoint_url.into(),
            certificate: None,
            client_key: None,
        }
    }

    /// Sets the certificate (the peer is inserted active).
    #[must_use]
    pub fn certificate(mut self, certificate: PeerCertificate) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// Sets the private key to seal.
    #[must_use]
    pub fn client_key(mut self, key: ClientKeyPem) -> Self {
        self.client_key = Some(key);
        self
    }
}

/// The sealed column of `federation_peers`, as named in errors and in associated data.
pub(crate) const CLIENT_KEY_COLUMN: &str = "federation_peers.client_key_pem";

/// The associated data binding a sealed client key to its row and column: a value copied to another row or
/// column fails to open.
pub(crate) fn client_key_aad(peer: Uuid) -> String {
    format!("federation_peers/client_key_pem/{peer}")
}

#[derive(sqlx::FromRow)]
struct PeerRow {
    id: Uuid,
    common_name: String,
    display_name: String,
    endpoint_url: String,
    state: String,
    cert_pem: Option<String>,
    cert_serial: Option<String>,
    cert_not_after: Option<OffsetDateTime>,
    client_key_pem: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
}

macro_rules! peer_columns {
    () => {
        "id, common_name, display_name, endpoint_url, state, cert_pem, cert_serial, cert_not_after, \
         client_key_pem, created_at, updated_at, revoked_at"
    };
}

const INSERT_PEER: &str = concat!(
    "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, cert_pem, cert_serial, ",
    "cert_not_after, client_key_pem, created_at, updated_at) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING ",
    peer_columns!()
);
const SELECT_PEER: &str = concat!(
    "SELECT ",
    peer_columns!(),
    " FROM federation_peers WHERE id = $1"
);
const SELECT_PEER_BY_NAME: &str = concat!(
    "SELECT ",
    peer_columns!(),
    " FROM federation_peers WHERE common_name = $1"
);
const SELECT_PEER_BY_SERIAL: &str = concat!(
    "SELECT ",
    peer_columns!(),
    " FROM federation_peers WHERE cert_serial = $1"
);
const LIST_PEERS: &str = concat!(
    "SELECT ",
    peer_columns!(),
    " FROM federation_peers ORDER BY common_name"
);
const ACTIVATE_PEER: &str = concat!(
    "UPDATE federation_peers SET state = 'active', cert_pem = $2, cert_serial = $3, cert_not_after = $4, ",
    "updated_at = $5 WHERE id = $1 AND state = 'pending' RETURNING ",
    peer_columns!()
);
const RENEW_PEER: &str = concat!(
    "UPDATE federation_peers SET cert_pem = $2, cert_serial = $3, cert_not_after = $4, ",
    "client_key_pem = COALESCE($5, client_key_pem), updated_at = $6 WHERE id = $1 AND state = 'active' RETURNING ",
    peer_columns!()
);
const SUSPEND_PEER: &str = concat!(
    "UPDATE federation_peers SET state = 'suspended', updated_at = $2 WHERE id = $1 AND state = 'active' RETURNING ",
    peer_columns!()
);
const RESUME_PEER: &str = concat!(
    "UPDATE federation_peers SET state = 'active', updated_at = $2 WHERE id = $1 AND state = 'suspended' RETURNING ",
    peer_columns!()
);
const REVOKE_PEER: &str = concat!(
    "UPDATE federation_peers SET state = 'revoked', revoked_at = $2, updated_at = $2 ",
    "WHERE id = $1 AND state <> 'revoked' RETURNING ",
    peer_columns!()
);
const PEER_STATE: &str = "SELECT state FROM federation_peers WHERE id = $1";
const PEER_GRANT_IDS: &str = "SELECT id FROM federation_grants WHERE peer_id = $1";

fn unique_violation(e: &sqlx::Error, what: impl FnOnce(&str) -> String) -> Option<StoreError> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    // PostgreSQL names the constraint; SQLite names the column in the message.
    let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
    Some(StoreError::AlreadyExists { what: what(&text) })
}

impl Store {
    fn seal_client_key(&self, peer: Uuid, key: &ClientKeyPem) -> StoreResult<String> {
        self.inner
            .keyring
            .seal(key.expose().as_bytes(), client_key_aad(peer).as_bytes())
            .map_err(|source| StoreError::Seal {
                peer_id: peer,
                column: CLIENT_KEY_COLUMN,
                source,
            })
    }

    fn peer_from_row(&self, row: PeerRow) -> StoreResult<Peer> {
        let state = row.state.parse().map_err(|_| StoreError::CorruptRow {
            column: "federation_peers.state",
            reason: format!("unknown state {:?}", row.state),
        })?;
        let certificate = match (row.cert_pem, row.cert_serial, row.cert_not_after) {
            (Some(cert_pem), Some(serial), Some(not_after)) => Some(PeerCertificate {
                cert_pem,
                serial: CertSerial::parse_hex(&serial).map_err(|_| StoreError::CorruptRow {
                    column: "federation_peers.cert_serial",
                    reason: "not hexadecimal".to_owned(),
                })?,
                not_after,
            }),
            _ => None,
        };
        let client_key = match row.client_key_pem {
            None => None,
            Some(sealed) => {
                // Opens both formats: v1 values bound to this row, and legacy values written by the TypeScript
                // gateway (which carry no associated data).
                let plaintext = self
                    .inner
                    .keyring
                    .open(&sealed, client_key_aad(row.id).as_bytes())
                    .map_err(|source| StoreError::Seal {
                        peer_id: row.id,
                        column: CLIENT_KEY_COLUMN,
                        source,
                    })?;
                let pem = plaintext.as_str().map_err(|source| StoreError::Seal {
                    peer_id: row.id,
                    column: CLIENT_KEY_COLUMN,
                    source,
                })?;
                Some(ClientKeyPem::new(pem))
            }
        };
        Ok(Peer {
            id: PeerId::from(row.id),
            common_name: row.common_name,
            display_name: row.display_name,
            endpoint_url: row.endpoint_url,
            state,
            certificate,
            client_key,
            created_at: row.created_at,
            updated_at: row.updated_at,
            revoked_at: row.revoked_at,
        })
    }

    /// Inserts a peer, sealing its client key (if any) under the keyring's current key, bound to the new
    /// row's id and the column. With a certificate the peer starts `active`, without one `pending`.
    pub async fn insert_peer(&self, new: &NewPeer) -> StoreResult<Peer> {
        let id = Uuid::new_v4();
        let sealed = new
            .client_key
            .as_ref()
            .map(|key| self.seal_client_key(id, key))
            .transpose()?;
        let state = if new.certificate.is_some() {
            PeerState::Active
        } else {
            PeerState::Pending
        };
        let cert = new.certificate.as_ref();
        let row: PeerRow = with_db!(self.db(), pool => {
            sqlx::query_as(INSERT_PEER)
                .bind(id)
                .bind(new.common_name.as_str())
                .bind(new.display_name.as_str())
                .bind(new.endpoint_url.as_str())
                .bind(state.as_str())
                .bind(cert.map(|c| c.cert_pem.as_str()))
                .bind(cert.map(|c| c.serial.as_str()))
                .bind(cert.map(|c| DbTime::new(c.not_after)))
                .bind(sealed.as_deref())
                .bind(DbTime::new(now()))
                .fetch_one(pool)
                .await
        })
        .map_err(|e| {
            unique_violation(&e, |text| {
                if text.contains("cert_serial") {
                    format!(
                        "certificate serial {}",
                        cert.map(|c| c.serial.as_str()).unwrap_or_default()
                    )
                } else {
                    format!("peer common name {:?}", new.common_name)
                }
            })
            .unwrap_or_else(|| StoreError::database("inserting a peer")(e))
        })?;
        self.peer_from_row(row)
    }

    /// The peer with this id, its key opened.
    pub async fn get_peer(&self, id: PeerId) -> StoreResult<Option<Peer>> {
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(SELECT_PEER).bind(id.as_uuid()).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading a peer"))?;
        row.map(|row| self.peer_from_row(row)).transpose()
    }

    /// The peer with this common name, its key opened.
    pub async fn get_peer_by_name(&self, common_name: &str) -> StoreResult<Option<Peer>> {
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(SELECT_PEER_BY_NAME).bind(common_name).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading a peer"))?;
        row.map(|row| self.peer_from_row(row)).transpose()
    }

    /// The peer whose current certificate has this serial.
    pub async fn get_peer_by_serial(&self, serial: &CertSerial) -> StoreResult<Option<Peer>> {
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(SELECT_PEER_BY_SERIAL).bind(serial.as_str()).fetch_optional(pool).await
        })
        .map_err(StoreError::database("reading a peer"))?;
        row.map(|row| self.peer_from_row(row)).transpose()
    }

    /// Every peer, by common name, keys opened.
    pub async fn list_peers(&self) -> StoreResult<Vec<Peer>> {
        let rows: Vec<PeerRow> =
            with_db!(self.db(), pool => sqlx::query_as(LIST_PEERS).fetch_all(pool).await)
                .map_err(StoreError::database("listing peers"))?;
        rows.into_iter()
            .map(|row| self.peer_from_row(row))
            .collect()
    }

    /// `pending` → `active`, installing the certificate issued at enrollment.
    pub async fn activate_peer(
        &self,
        id: PeerId,
        certificate: &PeerCertificate,
    ) -> StoreResult<Peer> {
        let grants = self.peer_grant_ids(id).await?;
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(ACTIVATE_PEER)
                .bind(id.as_uuid())
                .bind(certificate.cert_pem.as_str())
                .bind(certificate.serial.as_str())
                .bind(DbTime::new(certificate.not_after))
                .bind(DbTime::new(now()))
                .fetch_optional(pool)
                .await
        })
        .map_err(|e| {
            unique_violation(&e, |_| format!("certificate serial {}", certificate.serial))
                .unwrap_or_else(|| StoreError::database("activating a peer")(e))
        })?;
        self.peer_transition_result(id, row, &grants, "activate", "pending")
            .await
    }

    /// Replaces an active peer's certificate (and, on the requesting side, its key). Requests presenting
    /// the old certificate stop being authorized.
    pub async fn renew_peer_certificate(
        &self,
        id: PeerId,
        certificate: &PeerCertificate,
        client_key: Option<&ClientKeyPem>,
    ) -> StoreResult<Peer> {
        let sealed = client_key
            .map(|key| self.seal_client_key(id.as_uuid(), key))
            .transpose()?;
        let grants = self.peer_grant_ids(id).await?;
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(RENEW_PEER)
                .bind(id.as_uuid())
                .bind(certificate.cert_pem.as_str())
                .bind(certificate.serial.as_str())
                .bind(DbTime::new(certificate.not_after))
                .bind(sealed.as_deref())
                .bind(DbTime::new(now()))
                .fetch_optional(pool)
                .await
        })
        .map_err(|e| {
            unique_violation(&e, |_| format!("certificate serial {}", certificate.serial))
                .unwrap_or_else(|| StoreError::database("renewing a peer certificate")(e))
        })?;
        self.peer_transition_result(id, row, &grants, "renew the certificate of", "active")
            .await
    }

    /// `active` → `suspended`.
    pub async fn suspend_peer(&self, id: PeerId) -> StoreResult<Peer> {
        self.simple_peer_transition(id, SUSPEND_PEER, "suspend", "active")
            .await
    }

    /// `suspended` → `active`.
    pub async fn resume_peer(&self, id: PeerId) -> StoreResult<Peer> {
        self.simple_peer_transition(id, RESUME_PEER, "resume", "suspended")
            .await
    }

    /// Any state but `revoked` → `revoked`.
    pub async fn revoke_peer(&self, id: PeerId) -> StoreResult<Peer> {
        self.simple_peer_transition(id, REVOKE_PEER, "revoke", "pending, active or suspended")
            .await
    }

    async fn simple_peer_transition(
        &self,
        id: PeerId,
        sql: &'static str,
        action: &'static str,
        allowed: &'static str,
    ) -> StoreResult<Peer> {
        let grants = self.peer_grant_ids(id).await?;
        let row: Option<PeerRow> = with_db!(self.db(), pool => {
            sqlx::query_as(sql).bind(id.as_uuid()).bind(DbTime::new(now())).fetch_optional(pool).await
        })
        .map_err(StoreError::database("changing a peer's state"))?;
        self.peer_transition_result(id, row, &grants, action, allowed)
            .await
    }

    /// The ids of a peer's grants, read before a transition so that their cached decisions can be dropped
    /// after it. (A grant created in between is pending, so no cached decision of it can allow.)
    async fn peer_grant_ids(&self, id: PeerId) -> StoreResult<Vec<GrantId>> {
        let grants: Vec<Uuid> = with_db!(self.db(), pool => {
            sqlx::query_scalar(PEER_GRANT_IDS).bind(id.as_uuid()).fetch_all(pool).await
        })
        .map_err(StoreError::database("listing a peer's grants"))?;
        Ok(grants.into_iter().map(GrantId::from).collect())
    }

    /// Turns the result of a conditional `UPDATE … RETURNING` into the peer (invalidating the cached
    /// decisions of its grants), or into the reason it matched nothing.
    async fn peer_transition_result(
        &self,
        id: PeerId,
        row: Option<PeerRow>,
        grants: &[GrantId],
        action: &'static str,
        allowed: &'static str,
    ) -> StoreResult<Peer> {
        match row {
            Some(row) => {
                self.inner.authz.invalidate_grants(grants).await;
                self.peer_from_row(row)
            }
            None => {
                let state: Option<String> = with_db!(self.db(), pool => {
                    sqlx::query_scalar(PEER_STATE).bind(id.as_uuid()).fetch_optional(pool).await
                })
                .map_err(StoreError::database("reading a peer's state"))?;
                Err(match state {
                    None => StoreError::NotFound {
                        entity: "peer",
                        id: id.as_uuid(),
                    },
                    Some(current) => StoreError::InvalidTransition {
                        entity: "peer",
                        id: id.as_uuid(),
                        action,
                        current,
                        allowed,
                    },
                })
            }
        }
    }
}
