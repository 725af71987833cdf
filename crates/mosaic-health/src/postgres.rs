//! PostgreSQL and pgvector probes (sqlx, one connection per check, never a pool).

use std::{fmt, str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions, Connection,
    postgres::{PgConnectOptions, PgConnection},
};

use crate::{DEFAULT_TIMEOUT, Probe, ProbeError, ProbeFuture, Redactor, ServerUrl};

/// SQLSTATE codes the probes tell apart.
mod sqlstate {
    pub(super) const INVALID_PASSWORD: &str = "28P01";
    pub(super) const INVALID_AUTHORIZATION: &str = "28000";
    pub(super) const INVALID_CATALOG_NAME: &str = "3D000";
    pub(super) const INSUFFICIENT_PRIVILEGE: &str = "42501";
}

/// Settings shared by both PostgreSQL probes.
#[derive(Clone)]
struct PgSettings {
    options: PgConnectOptions,
    target: String,
    user: String,
    database: String,
    timeout: Duration,
    redactor: Redactor,
}

impl PgSettings {
    fn new(url: &ServerUrl) -> Result<Self, ProbeError> {
        let redactor = url.redactor().clone();
        let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|e| {
            ProbeError::InvalidSetting {
                setting: "DATABASE_URL".to_owned(),
                reason: redactor.redact(&e.to_string()),
            }
        })?;
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let user = options.get_username().to_owned();
        let database = options.get_database().unwrap_or(&user).to_owned();
        Ok(Self {
            options,
            target,
            user,
            database,
            timeout: DEFAULT_TIMEOUT,
            redactor,
        })
    }

    /// One connection, no pool: nothing outlives the check when its future is dropped.
    async fn connect(&self) -> Result<PgConnection, ProbeError> {
        self.options.connect().await.map_err(|e| self.classify(&e))
    }

    fn classify(&self, error: &sqlx::Error) -> ProbeError {
        // The server's own message reads best; sqlx's Display adds a prefix and the server's source line.
        let reason = match error {
            sqlx::Error::Database(db) => self.redactor.redact(db.message()),
            other => self.redactor.redact(&other.to_string()),
        };
        match error {
            sqlx::Error::Io(_) => ProbeError::PostgresUnreachable {
                target: self.target.clone(),
                reason,
            },
            sqlx::Error::Tls(_) => ProbeError::PostgresTls { reason },
            sqlx::Error::Configuration(_) => ProbeError::InvalidSetting {
                setting: "DATABASE_URL".to_owned(),
                reason,
            },
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(sqlstate::INVALID_PASSWORD | sqlstate::INVALID_AUTHORIZATION) => {
                    ProbeError::PostgresAuth {
                        user: self.user.clone(),
                        reason,
                    }
                }
                Some(sqlstate::INVALID_CATALOG_NAME) => ProbeError::PostgresDatabaseMissing {
                    database: self.database.clone(),
                    target: self.target.clone(),
                },
                _ => ProbeError::Postgres { reason },
            },
            _ => ProbeError::Postgres { reason },
        }
    }
}

/// Closes politely; a failure to say goodbye does not fail the check.
async fn close(connection: PgConnection) {
    let _ = connection.close().await;
}

/// Connects to PostgreSQL and runs `SELECT 1`; the detail is the server version.
#[derive(Clone)]
pub struct PostgresProbe {
    settings: PgSettings,
}

impl PostgresProbe {
    /// A probe of the database at `url` (`postgresql://user:password@host:port/database`).
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when sqlx cannot use the URL.
    pub fn new(url: &ServerUrl) -> Result<Self, ProbeError> {
        Ok(Self {
            settings: PgSettings::new(url)?,
        })
    }

    /// Uses `timeout` instead of [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    async fn run(&self) -> Result<Option<String>, ProbeError> {
        let mut connection = self.settings.connect().await?;
        let row: Result<(i32, String), _> =
            sqlx::query_as("SELECT 1, current_setting('server_version')")
                .fetch_one(&mut connection)
                .await;
        let (_one, version) = row.map_err(|e| self.settings.classify(&e))?;
        close(connection).await;
        Ok(Some(format!("PostgreSQL {version}")))
    }
}

impl fmt::Debug for PostgresProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresProbe")
            .field("target", &self.settings.target)
            .field("database", &self.settings.database)
            .field("timeout", &self.settings.timeout)
            .finish_non_exhaustive()
    }
}

impl Probe for PostgresProbe {
    fn name(&self) -> &str {
        "postgres"
    }

    fn target(&self) -> &str {
        &self.settings.target
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    fn redactor(&self) -> &Redactor {
        &self.settings.redactor
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

/// Checks that the `vector` extension is installed in the configured database; the detail is its version.
///
/// Its target is `(embedded)`: pgvector lives inside the PostgreSQL server of the [`PostgresProbe`].
/// The three ways it can be missing are distinct errors: [`ProbeError::PgvectorNotInstalled`] (the
/// server has it, this database does not), [`ProbeError::PgvectorUnavailable`] (the server has no
/// pgvector) and [`ProbeError::PgvectorPermissionDenied`].
#[derive(Clone)]
pub struct PgvectorProbe {
    settings: PgSettings,
}

impl PgvectorProbe {
    /// What this probe shows as its target.
    pub const TARGET: &'static str = "(embedded)";

    /// A probe of the database at `url`.
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when sqlx cannot use the URL.
    pub fn new(url: &ServerUrl) -> Result<Self, ProbeError> {
        Ok(Self {
            settings: PgSettings::new(url)?,
        })
    }

    /// Uses `timeout` instead of [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    fn classify(&self, error: &sqlx::Error) -> ProbeError {
        if let sqlx::Error::Database(db) = error
            && db.code().as_deref() == Some(sqlstate::INSUFFICIENT_PRIVILEGE)
        {
            return ProbeError::PgvectorPermissionDenied {
                user: self.settings.user.clone(),
                reason: self.settings.redactor.redact(db.message()),
            };
        }
        self.settings.classify(error)
    }

    async fn run(&self) -> Result<Option<String>, ProbeError> {
        let mut connection = self
            .settings
            .options
            .connect()
            .await
            .map_err(|e| self.classify(&e))?;
        let installed: (String, Option<String>) = sqlx::query_as(
            "SELECT current_database()::text, \
                    (SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector')",
        )
        .fetch_one(&mut connection)
        .await
        .map_err(|e| self.classify(&e))?;
        let (database, version) = installed;
        if let Some(version) = version {
            close(connection).await;
            return Ok(Some(format!("pgvector {version}")));
        }
        let available: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'vector'",
        )
        .fetch_optional(&mut connection)
        .await
        .map_err(|e| self.classify(&e))?;
        close(connection).await;
        match available {
            Some((available_version,)) => Err(ProbeError::PgvectorNotInstalled {
                database,
                available_version,
            }),
            None => Err(ProbeError::PgvectorUnavailable),
        }
    }
}

impl fmt::Debug for PgvectorProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgvectorProbe")
            .field("server", &self.settings.target)
            .field("database", &self.settings.database)
            .field("timeout", &self.settings.timeout)
            .finish_non_exhaustive()
    }
}

impl Probe for PgvectorProbe {
    fn name(&self) -> &str {
        "pgvector"
    }

    fn target(&self) -> &str {
        Self::TARGET
    }

    fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    fn redactor(&self) -> &Redactor {
        &self.settings.redactor
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_debug_never_show_the_password() {
        let url = ServerUrl::parse(
            "DATABASE_URL",
            "postgresql://mosaic:pg-s3cret@localhost:5433/mosaic",
        )
        .unwrap();
        let probe = PostgresProbe::new(&url).unwrap();
        assert_eq!(probe.target(), "localhost:5433");
        assert!(!format!("{probe:?}").contains("pg-s3cret"));
        let vector = PgvectorProbe::new(&url)
            .unwrap()
            .with_timeout(Duration::from_secs(1));
        assert_eq!(vector.target(), "(embedded)");
        assert_eq!(vector.timeout(), Duration::from_secs(1));
        assert!(!format!("{vector:?}").contains("pg-s3cret"));
    }
}
