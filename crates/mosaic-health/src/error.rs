//! The one error type of this crate: why a probe failed, with a stable code and a remediation.

use std::time::Duration;

/// Why a probe failed.
///
/// Every variant has a stable machine-readable [`code`](Self::code) and a
/// [`remediation`](Self::remediation) that tells the operator what to do. Messages never carry
/// credentials: probes build them from redacted targets and pass driver messages through a
/// [`Redactor`](crate::Redactor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A setting the probe needs was not given.
    #[error("{setting} is not set")]
    MissingSetting {
        /// The setting, e.g. `STEP_CA_URL`.
        setting: String,
        /// How to set it, in the caller's terms.
        remediation: String,
    },
    /// A setting was given but cannot be used.
    #[error("{setting} is invalid: {reason}")]
    InvalidSetting {
        /// The setting, e.g. `DATABASE_URL`.
        setting: String,
        /// What is wrong with it (never its secret parts).
        reason: String,
    },
    /// The server did not finish answering within the probe's timeout.
    #[error("no answer from {service} within {}", format_duration(*after))]
    Timeout {
        /// The probe's name, e.g. `postgres`.
        service: String,
        /// The probe's target, e.g. `localhost:5433`.
        target: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// Nothing accepted a PostgreSQL connection at the target.
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    PostgresUnreachable {
        /// `host:port`.
        target: String,
        /// The driver's reason, redacted.
        reason: String,
    },
    /// PostgreSQL refused the credentials.
    #[error("PostgreSQL refused the login of role \"{user}\": {reason}")]
    PostgresAuth {
        /// The role name.
        user: String,
        /// The server's message, redacted.
        reason: String,
    },
    /// The database named in the URL does not exist on the server.
    #[error("database \"{database}\" does not exist on {target}")]
    PostgresDatabaseMissing {
        /// The database name.
        database: String,
        /// `host:port`.
        target: String,
    },
    /// The TLS handshake with PostgreSQL failed.
    #[error("TLS to PostgreSQL failed: {reason}")]
    PostgresTls {
        /// The driver's reason, redacted.
        reason: String,
    },
    /// Any other PostgreSQL failure.
    #[error("PostgreSQL error: {reason}")]
    Postgres {
        /// The driver's or server's message, redacted.
        reason: String,
    },

    /// The server offers pgvector, but the `vector` extension is not created in this database.
    #[error("the vector extension is not installed in database \"{database}\"{}", available_suffix(available_version.as_deref()))]
    PgvectorNotInstalled {
        /// The database that was checked.
        database: String,
        /// The version the server could install (`pg_available_extensions.default_version`).
        available_version: Option<String>,
    },
    /// The server has no pgvector at all.
    #[error("the vector extension is not available on this PostgreSQL server")]
    PgvectorUnavailable,
    /// The role may not read the extension catalogs (or connect to the database).
    #[error("permission denied while checking the vector extension as role \"{user}\": {reason}")]
    PgvectorPermissionDenied {
        /// The role name.
        user: String,
        /// The server's message, redacted.
        reason: String,
    },

    /// Nothing accepted a Valkey connection at the target.
    #[error("cannot connect to Valkey at {target}: {reason}")]
    ValkeyUnreachable {
        /// `host:port`.
        target: String,
        /// The driver's reason, redacted.
        reason: String,
    },
    /// Valkey refused the credentials (or needs some).
    #[error("Valkey refused authentication: {reason}")]
    ValkeyAuth {
        /// The server's message, redacted.
        reason: String,
    },
    /// Any other Valkey failure.
    #[error("Valkey error: {reason}")]
    Valkey {
        /// The driver's or server's message, redacted.
        reason: String,
    },

    /// The configured root certificate file cannot be used.
    #[error("cannot use the step-ca root certificate {path}: {reason}")]
    CaRootFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing accepted an HTTPS connection at the CA's address.
    #[error("cannot connect to step-ca at {target}: {reason}")]
    CaUnreachable {
        /// `host:port`.
        target: String,
        /// The transport's reason.
        reason: String,
    },
    /// The TLS handshake with the CA failed: its certificate does not chain to the configured root,
    /// or is not valid for the host name.
    #[error("TLS to step-ca at {target} failed: {reason}")]
    CaTls {
        /// `host:port`.
        target: String,
        /// The root file that was trusted.
        root_path: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// The root certificate's fingerprint is not the pinned one.
    #[error("the root certificate's SHA-256 fingerprint is {actual}, not the pinned {expected}")]
    CaFingerprintMismatch {
        /// The pinned fingerprint (lower-case hex).
        expected: String,
        /// The fingerprint of the root file (lower-case hex).
        actual: String,
    },
    /// The CA does not serve the configured root under its fingerprint.
    #[error("step-ca does not know the root with fingerprint {fingerprint}: {reason}")]
    CaRootUnknown {
        /// The fingerprint of the root file (lower-case hex).
        fingerprint: String,
        /// What the CA answered.
        reason: String,
    },
    /// The CA answered, but not `{"status":"ok"}`.
    #[error("step-ca is not healthy: {reason}")]
    CaUnhealthy {
        /// The HTTP status and body the CA sent.
        reason: String,
    },
    /// An embedded part of the gateway (no server: e.g. the local tier's SQLite file or development CA)
    /// is unusable. The caller's probe says why and what to do.
    #[error("{component}: {reason}")]
    Embedded {
        /// The part, e.g. `the SQLite store`.
        component: String,
        /// What is wrong with it.
        reason: String,
        /// What to do about it, in the caller's terms.
        remediation: String,
    },
}

impl ProbeError {
    /// A stable machine-readable code, for callers that branch on the failure.
    ///
    /// Codes never change meaning; new variants bring new codes.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSetting { .. } | Self::InvalidSetting { .. } => "CONFIG",
            Self::Timeout { .. } => "TIMEOUT",
            Self::PostgresUnreachable { .. } => "PG_UNREACHABLE",
            Self::PostgresAuth { .. } => "PG_AUTH",
            Self::PostgresDatabaseMissing { .. } => "PG_DATABASE_MISSING",
            Self::PostgresTls { .. } => "PG_TLS",
            Self::Postgres { .. } => "PG_ERROR",
            Self::PgvectorNotInstalled { .. } => "PGVECTOR_NOT_INSTALLED",
            Self::PgvectorUnavailable => "PGVECTOR_UNAVAILABLE",
            Self::PgvectorPermissionDenied { .. } => "PGVECTOR_PERMISSION_DENIED",
            Self::ValkeyUnreachable { .. } => "VALKEY_UNREACHABLE",
            Self::ValkeyAuth { .. } => "VALKEY_AUTH",
            Self::Valkey { .. } => "VALKEY_ERROR",
            Self::CaRootFile { .. } => "CA_ROOT_FILE",
            Self::CaUnreachable { .. } => "CA_UNREACHABLE",
            Self::CaTls { .. } => "CA_TLS",
            Self::CaFingerprintMismatch { .. } => "CA_FINGERPRINT_MISMATCH",
            Self::CaRootUnknown { .. } => "CA_ROOT_UNKNOWN",
            Self::CaUnhealthy { .. } => "CA_UNHEALTHY",
            Self::Embedded { .. } => "EMBEDDED",
        }
    }

    /// What the operator can do about it.
    #[must_use]
    pub fn remediation(&self) -> String {
        match self {
            Self::MissingSetting { remediation, .. } => remediation.clone(),
            Self::InvalidSetting { setting, .. } => {
                format!("fix {setting}; a URL looks like scheme://user:password@host:port/path")
            }
            Self::Timeout { service, target, after } => format!(
                "something at {target} accepted the connection but did not answer as {service} within {}: \
                 check that {target} is really {service} (not another program on that port) and that it is \
                 not overloaded, or raise the timeout",
                format_duration(*after)
            ),
            Self::PostgresUnreachable { target, .. } => format!(
                "start PostgreSQL at {target} (`docker compose -f docker-compose.federated.yml --profile \
                 federated up -d`, or `infra/native/up`), or point DATABASE_URL at the right host and port \
                 (PG_FEDERATED_HOST_PORT changes the compose port)"
            ),
            Self::PostgresAuth { user, .. } => format!(
                "check the user and password in DATABASE_URL; the role \"{user}\" must exist with that password \
                 (the federated stack uses mosaic/mosaic)"
            ),
            Self::PostgresDatabaseMissing { database, .. } => format!(
                "create it (`CREATE DATABASE \"{database}\";` as a superuser) or name an existing database in \
                 DATABASE_URL"
            ),
            Self::PostgresTls { .. } => {
                "check the server's TLS setup, or set sslmode in DATABASE_URL to what the server supports".into()
            }
            Self::Postgres { .. } => "read the server log for this error and fix the cause".into(),
            Self::PgvectorNotInstalled { database, .. } => format!(
                "run `CREATE EXTENSION vector;` in database \"{database}\" as its owner or a superuser \
                 (e.g. `psql \"$DATABASE_URL\" -c 'CREATE EXTENSION vector'`); the compose stack's first boot \
                 does this for you"
            ),
            Self::PgvectorUnavailable => "use a PostgreSQL with pgvector: the `pgvector/pgvector:pg17` image, \
                 the postgresql-17-pgvector package, or `infra/native/up`; then `CREATE EXTENSION vector;`"
                .into(),
            Self::PgvectorPermissionDenied { user, .. } => format!(
                "grant the role \"{user}\" CONNECT on the database and SELECT on pg_catalog.pg_extension \
                 (restored by `GRANT SELECT ON pg_catalog.pg_extension TO PUBLIC;`), or check as the database owner"
            ),
            Self::ValkeyUnreachable { target, .. } => format!(
                "start Valkey at {target} (`docker compose -f docker-compose.federated.yml --profile federated \
                 up -d`, or `infra/native/up`), or point REDIS_URL at the right host and port \
                 (VALKEY_FEDERATED_HOST_PORT changes the compose port); check that a firewall allows the port"
            ),
            Self::ValkeyAuth { .. } => {
                "put the right user and password in REDIS_URL (redis://user:password@host:port)".into()
            }
            Self::Valkey { .. } => "read the Valkey log for this error and fix the cause".into(),
            Self::CaRootFile { .. } => "point STEP_CA_ROOT_CERT_PATH at the CA's root certificate PEM (`docker cp \
                 $(docker ps -qf name=step-ca):/home/step/certs/root_ca.crt /tmp/step-ca-root.crt`, or the path \
                 `infra/native/env` prints)"
                .into(),
            Self::CaUnreachable { target, .. } => format!(
                "start step-ca at {target} (`docker compose -f docker-compose.federated.yml --profile federated \
                 up -d step-ca`, or `infra/native/up`), or fix the host and port in STEP_CA_URL"
            ),
            Self::CaTls { root_path, .. } => format!(
                "the CA's TLS certificate does not chain to {root_path} or does not name this host: copy the root \
                 of this CA into STEP_CA_ROOT_CERT_PATH and use a host name from the CA's dnsNames in STEP_CA_URL"
            ),
            Self::CaFingerprintMismatch { .. } => {
                "STEP_CA_ROOT_CERT_PATH is not the root you pinned: fetch the right root, or update \
                 STEP_CA_ROOT_FINGERPRINT if the CA was re-initialised on purpose"
                    .into()
            }
            Self::CaRootUnknown { .. } => "the CA does not serve this root: point STEP_CA_ROOT_CERT_PATH at this \
                 CA's root certificate (root_ca.crt)"
                .into(),
            Self::CaUnhealthy { .. } => "read the step-ca log (`docker compose -f docker-compose.federated.yml \
                 logs step-ca`) and restart it"
                .into(),
            Self::Embedded { remediation, .. } => remediation.clone(),
        }
    }
}

fn available_suffix(version: Option<&str>) -> String {
    version.map_or_else(String::new, |v| format!(" (the server offers version {v})"))
}

/// `5s`, `1.5s`, `250ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn the_three_pgvector_results_are_distinct() {
        let not_installed = ProbeError::PgvectorNotInstalled {
            database: "mosaic".into(),
            available_version: Some("0.8.2".into()),
        };
        let unavailable = ProbeError::PgvectorUnavailable;
        let denied = ProbeError::PgvectorPermissionDenied {
            user: "app".into(),
            reason: "permission denied".into(),
        };
        let codes = [not_installed.code(), unavailable.code(), denied.code()];
        assert_eq!(
            codes,
            [
                "PGVECTOR_NOT_INSTALLED",
                "PGVECTOR_UNAVAILABLE",
                "PGVECTOR_PERMISSION_DENIED"
            ]
        );
        assert!(
            not_installed
                .remediation()
                .contains("CREATE EXTENSION vector")
        );
        assert!(unavailable.remediation().contains("pgvector/pgvector:pg17"));
        assert!(denied.remediation().contains("GRANT"));
        assert!(not_installed.to_string().contains("offers version 0.8.2"));
    }
}
