//! [`Store`]: one handle over PostgreSQL (federated tier) or SQLite (local tier).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mosaic_seal::Keyring;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use zeroize::Zeroizing;

use crate::authz_cache::{AuthzCache, CacheSettings};
use crate::error::{StoreError, StoreResult, redact_url};

/// Migrations of the federated tier, embedded at build time. The first one creates the `vector` extension.
pub static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
/// Migrations of the local tier, embedded at build time.
pub static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Which tier a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Tier {
    /// PostgreSQL (with pgvector), shared by many gateways; Valkey carries the shared caches.
    Federated,
    /// SQLite, one host, nothing installed.
    Local,
}

/// The connection pool of the backend in use.
#[derive(Clone)]
pub(crate) enum Database {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same code against whichever pool the store has. The body is type-checked once per backend, so
/// a query that does not suit one of them fails to compile rather than at run time.
macro_rules! with_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Database::Postgres($pool) => $body,
            $crate::store::Database::Sqlite($pool) => $body,
        }
    };
}
pub(crate) use with_db;

/// How to open a [`Store`].
pub struct StoreOptions {
    database_url: Zeroizing<String>,
    valkey_url: Option<Zeroizing<String>>,
    keyring: Arc<Keyring>,
    max_connections: u32,
    acquire_timeout: Duration,
    run_migrations: bool,
    cache: CacheSettings,
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("database_url", &redact_url(&self.database_url))
            .field(
                "valkey_url",
                &self.valkey_url.as_ref().map(|url| redact_url(url)),
            )
            .field("max_connections", &self.max_connections)
            .field("run_migrations", &self.run_migrations)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl StoreOptions {
    /// Options for `database_url`: `postgresql://…` (or `postgres://…`) for the federated tier,
    /// `sqlite://PATH` (or `sqlite:PATH`) for the local tier. Peer keys are sealed and opened with `keyring`.
    pub fn new(database_url: impl Into<String>, keyring: impl Into<Arc<Keyring>>) -> Self {
        Self {
            database_url: Zeroizing::new(database_url.into()),
            valkey_url: None,
            keyring: keyring.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            run_migrations: true,
            cache: CacheSettings::default(),
        }
    }

    /// The Valkey (or Redis) URL of the shared authorization cache, e.g. `redis://localhost:6380`.
    ///
    /// Without one, every authorization is decided from the database and nothing is cached: a revocation
    /// made by another process (the CLI) must take effect at once, and only the Valkey channel can tell this
    /// process about it.
    #[must_use]
    pub fn valkey_url(mut self, url: impl Into<String>) -> Self {
        self.valkey_url = Some(Zeroizing::new(url.into()));
        self
    }

    /// The largest number of database connections (default 10).
    #[must_use]
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Whether to apply the embedded migrations on connect (default `true`). Concurrent gateways may all do
    /// it: sqlx serializes them with a lock.
    #[must_use]
    pub fn run_migrations(mut self, run: bool) -> Self {
        self.run_migrations = run;
        self
    }

    /// Tuning of the authorization cache.
    #[must_use]
    pub fn cache_settings(mut self, settings: CacheSettings) -> Self {
        self.cache = settings;
        self
    }
}

/// Persistence for Mosaic federation: grants, peers, enrollment tokens, audit, embeddings, authorization and
/// key rotation, on PostgreSQL or SQLite.
///
/// Cloning is cheap and shares the pools and caches.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<StoreInner>,
}

pub(crate) struct StoreInner {
    pub(crate) db: Database,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) authz: AuthzCache,
    pub(crate) redacted_url: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("tier", &self.tier())
            .field("database", &self.inner.redacted_url)
            .field("shared_cache", &self.inner.authz.is_configured())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects (and migrates, unless told not to).
    ///
    /// Valkey being down does not fail this: the store starts in degraded mode, deciding authorizations
    /// from the database, and connects to Valkey in the background.
    pub async fn connect(options: StoreOptions) -> StoreResult<Self> {
        let redacted = redact_url(&options.database_url);
        let url = options.database_url.as_str();
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidDatabaseUrl {
                    url: redacted.clone(),
                    reason: e.to_string(),
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .map_err(|source| StoreError::Connect {
                    url: redacted.clone(),
                    source,
                })?;
            if options.run_migrations {
                POSTGRES_MIGRATIONS
                    .run(&pool)
                    .await
                    .map_err(StoreError::Migrate)?;
            }
            Database::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url).map_err(|e| {
                StoreError::InvalidDatabaseUrl {
                    url: redacted.clone(),
                    reason: e.to_string(),
                }
            })?;
            Database::Sqlite(open_sqlite(connect, &options, &redacted).await?)
        } else {
            return Err(StoreError::InvalidDatabaseUrl {
                url: redacted,
                reason: "the scheme must be postgresql://, postgres:// or sqlite:".to_owned(),
            });
        };
        let authz = match &options.valkey_url {
            Some(valkey) => AuthzCache::with_valkey(valkey, options.cache.clone())?,
            None => AuthzCache::database_only(),
        };
        Ok(Self {
            inner: Arc::new(StoreInner {
                db,
                keyring: options.keyring,
                authz,
                redacted_url: redacted,
            }),
        })
    }

    /// Opens (creating if needed) and migrates the local tier's SQLite file at `path`.
    pub async fn open_local(path: &Path, keyring: impl Into<Arc<Keyring>>) -> StoreResult<Self> {
        let options = StoreOptions::new(String::new(), keyring);
        let redacted = path.display().to_string();
        let connect = SqliteConnectOptions::new().filename(path);
        let db = Database::Sqlite(open_sqlite(connect, &options, &redacted).await?);
        Ok(Self {
            inner: Arc::new(StoreInner {
                db,
                keyring: options.keyring,
                authz: AuthzCache::database_only(),
                redacted_url: redacted,
            }),
        })
    }

    /// The tier this store runs on.
    pub fn tier(&self) -> Tier {
        match self.inner.db {
            Database::Postgres(_) => Tier::Federated,
            Database::Sqlite(_) => Tier::Local,
        }
    }

    /// The keyring peer keys are sealed with.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// Whether the shared authorization cache (Valkey) is connected right now. `false` when none is
    /// configured or while it is unreachable (degraded mode).
    pub fn shared_cache_connected(&self) -> bool {
        self.inner.authz.is_connected()
    }

    /// Whether this store is subscribed to the revocation channel right now, i.e. whether it hears at once
    /// of revocations made by other processes (and may therefore keep decisions in process).
    pub fn invalidations_subscribed(&self) -> bool {
        self.inner.authz.is_subscribed()
    }

    /// Closes the pools and the Valkey connections. Clones of this store stop working.
    pub async fn close(&self) {
        self.inner.authz.close().await;
        with_db!(&self.inner.db, pool => pool.close().await);
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }
}

async fn open_sqlite(
    connect: SqliteConnectOptions,
    options: &StoreOptions,
    redacted: &str,
) -> StoreResult<SqlitePool> {
    let connect = connect
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.acquire_timeout)
        .connect_with(connect)
        .await
        .map_err(|source| StoreError::Connect {
            url: redacted.to_owned(),
            source,
        })?;
    if options.run_migrations {
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
    }
    Ok(pool)
}
