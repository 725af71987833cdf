//! The one error type of this crate.

use uuid::Uuid;

/// Everything that can go wrong in `mosaic-store`.
///
/// Messages say what was wrong in the caller's terms; [`StoreError::remediation`] says how to fix it where the
/// caller can act, and [`StoreError::code`] is a stable machine-readable name for callers that branch.
/// No variant ever carries a secret: database URLs are redacted, and sealed or opened key material never
/// appears.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error("the database URL {url} is not usable: {reason}")]
    InvalidDatabaseUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The Valkey URL could not be understood.
    #[error("the Valkey URL {url} is not usable: {reason}")]
    InvalidValkeyUrl {
        /// The URL with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Connecting to the database failed.
    #[error("could not connect to the database at {url}: {source}")]
    Connect {
        /// The URL with any password replaced by `***`.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the embedded migrations failed.
    #[error("could not migrate the database schema: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// A query failed for a reason other than the ones named by the other variants.
    #[error("database error while {operation}: {source}")]
    Database {
        /// What the store was doing, e.g. "creating a grant".
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A row does not exist.
    #[error("{entity} {id} does not exist")]
    NotFound {
        /// `grant` or `peer`.
        entity: &'static str,
        /// Its id.
        id: Uuid,
    },

    /// A state transition was refused because the row is not in a state it may leave that way.
    #[error("cannot {action} {entity} {id}: it is {current}, and only a {allowed} {entity} can be")]
    InvalidTransition {
        /// `grant` or `peer`.
        entity: &'static str,
        /// Its id.
        id: Uuid,
        /// The verb, e.g. `activate`.
        action: &'static str,
        /// The state the row is in now.
        current: String,
        /// The state(s) the transition starts from, e.g. `pending`.
        allowed: &'static str,
    },

    /// A grant cannot be activated because its expiry has passed.
    #[error("cannot activate grant {0}: it expired")]
    GrantExpired(Uuid),

    /// No enrollment token with this value exists.
    #[error("the enrollment token is unknown")]
    TokenUnknown,

    /// The enrollment token was already claimed.
    #[error("the enrollment token was already used")]
    TokenUsed,

    /// The enrollment token's lifetime is over.
    #[error("the enrollment token has expired")]
    TokenExpired,

    /// An enrollment token was asked to live longer than allowed, or not at all.
    #[error("an enrollment token must live between 1 and {max} seconds, not {requested}")]
    TokenTtlOutOfRange {
        /// The requested lifetime in seconds.
        requested: u64,
        /// The maximum lifetime in seconds (900).
        max: u64,
    },

    /// A value that must be unique is already taken.
    #[error("{what} is already in use")]
    AlreadyExists {
        /// What collided, e.g. "peer common name \"gw-b\"".
        what: String,
    },

    /// An argument was rejected before reaching the database.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The argument.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A sealed column could not be opened or sealed.
    #[error("the sealed {column} of peer {peer_id} could not be processed: {source}")]
    Seal {
        /// The row.
        peer_id: Uuid,
        /// The column, e.g. `federation_peers.client_key_pem`.
        column: &'static str,
        /// What mosaic-seal said.
        #[source]
        source: mosaic_seal::SealError,
    },

    /// A value read from the database is not one this version understands.
    #[error("the database holds an unexpected value in {column}: {reason}")]
    CorruptRow {
        /// The column.
        column: &'static str,
        /// What was unexpected (never the value of a secret column).
        reason: String,
    },

    /// The operation exists only on the federated tier (PostgreSQL with pgvector).
    #[error(
        "{feature} needs the federated tier (PostgreSQL with pgvector); the local tier (SQLite) has none"
    )]
    NeedsFederatedTier {
        /// What was asked for, e.g. "embeddings".
        feature: &'static str,
    },

    /// An embedding has the wrong number of dimensions.
    #[error("an embedding must have {expected} dimensions, this one has {actual}")]
    EmbeddingDimensions {
        /// The table's width.
        expected: usize,
        /// The vector's length.
        actual: usize,
    },

    /// Key rotation stopped with values still not under the current key.
    #[error(
        "key rotation left {remaining} sealed value(s) not under the current key after {passes} passes"
    )]
    RotationIncomplete {
        /// How many values still need re-sealing.
        remaining: u64,
        /// How many passes ran.
        passes: u32,
    },
}

impl StoreError {
    /// A stable, machine-readable name for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidDatabaseUrl { .. } => "invalid_database_url",
            Self::InvalidValkeyUrl { .. } => "invalid_valkey_url",
            Self::Connect { .. } => "database_unreachable",
            Self::Migrate(_) => "migration_failed",
            Self::Database { .. } => "database_error",
            Self::NotFound { .. } => "not_found",
            Self::InvalidTransition { .. } => "invalid_transition",
            Self::GrantExpired(_) => "grant_expired",
            Self::TokenUnknown => "token_unknown",
            Self::TokenUsed => "token_used",
            Self::TokenExpired => "token_expired",
            Self::TokenTtlOutOfRange { .. } => "token_ttl_out_of_range",
            Self::AlreadyExists { .. } => "already_exists",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Seal { .. } => "seal_failed",
            Self::CorruptRow { .. } => "corrupt_row",
            Self::NeedsFederatedTier { .. } => "needs_federated_tier",
            Self::EmbeddingDimensions { .. } => "embedding_dimensions",
            Self::RotationIncomplete { .. } => "rotation_incomplete",
        }
    }

    /// How the caller can fix it, where the caller can act.
    pub fn remediation(&self) -> Option<String> {
        let text = match self {
            Self::InvalidDatabaseUrl { .. } => {
                "use postgresql://USER:PASSWORD@HOST:PORT/DB for the federated tier or sqlite://PATH for the local tier"
                    .to_owned()
            }
            Self::InvalidValkeyUrl { .. } => "use redis://HOST:PORT (or rediss:// for TLS)".to_owned(),
            Self::Connect { .. } => "check that the database server is running and reachable and that the \
                 credentials in DATABASE_URL are right (on this machine: infra/native/up, then eval \"$(infra/native/env)\")"
                .to_owned(),
            Self::Migrate(_) => "check that the database user may create tables and extensions (pgvector needs \
                 CREATE EXTENSION rights), and that no migration was edited after it was applied"
                .to_owned(),
            Self::NotFound { entity, .. } => format!("check the {entity} id, e.g. with `mosaic federation grant list`"),
            Self::InvalidTransition { .. } => "read the row's current state first; terminal states (revoked, expired) \
                 cannot be left, create a new grant instead"
                .to_owned(),
            Self::GrantExpired(_) => "create a new grant with a later expiry".to_owned(),
            Self::TokenUnknown => "check the enrollment URL; ask the granting gateway for a new token".to_owned(),
            Self::TokenUsed | Self::TokenExpired => {
                "enrollment tokens are single-use and short-lived: ask the granting gateway for a new one \
                 (`mosaic federation grant token`)"
                    .to_owned()
            }
            Self::TokenTtlOutOfRange { max, .. } => format!("choose a TTL between 1 and {max} seconds"),
            Self::AlreadyExists { .. } => "choose another value, or load the existing row".to_owned(),
            Self::Seal { .. } => "check BETTER_AUTH_SECRET and MOSAIC_SEAL_PREVIOUS_SECRETS_FILE: the key that \
                 sealed this value must be the current or a previous secret"
                .to_owned(),
            Self::NeedsFederatedTier { .. } => {
                "configure the federated tier (PostgreSQL 17 with pgvector): set \"tier\": \"federated\" and a \
                 postgresql:// database URL"
                    .to_owned()
            }
            Self::EmbeddingDimensions { expected, .. } => {
                format!("embed with a model that yields {expected}-dimensional vectors")
            }
            Self::RotationIncomplete { .. } => "restart every gateway with the new BETTER_AUTH_SECRET (and the old one \
                 in MOSAIC_SEAL_PREVIOUS_SECRETS_FILE), then run `mosaic keys rotate` again"
                .to_owned(),
            Self::Database { .. } | Self::InvalidInput { .. } | Self::CorruptRow { .. } => return None,
        };
        Some(text)
    }

    pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { operation, source }
    }
}

/// Shorthand for results of this crate.
pub type StoreResult<T> = Result<T, StoreError>;

/// Replaces the password of a URL with `***` so that it can be printed.
pub(crate) fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) => {
            if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
                return "<unprintable URL>".to_owned();
            }
            parsed.to_string()
        }
        // Not a URL we can parse: print nothing of it rather than risk a password.
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgresql://mosaic:hunter2@localhost:5433/mosaic"),
            "postgresql://mosaic:***@localhost:5433/mosaic"
        );
        assert_eq!(
            redact_url("redis://localhost:6380"),
            "redis://localhost:6380"
        );
        assert_eq!(redact_url("not a url with secret"), "<unparseable URL>");
    }
}
