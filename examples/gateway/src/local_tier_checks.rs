//! The doctor's checks of the local tier's embedded parts (no servers):
//!
//! - `sqlite`: the store's SQLite file in the data directory opens and migrates (it is created if it
//!   does not exist yet, exactly as `mosaic gateway serve` would);
//! - `local-ca`: the local tier's `LocalCa` issues a certificate that passes its own verification (chain,
//!   key, names, both federation OIDs). The persisted CA is used when the data directory has one (its
//!   key opens only with `BETTER_AUTH_SECRET`); otherwise a throwaway one in memory shows the machinery
//!   works, and nothing is written.

use std::{path::PathBuf, sync::Arc, time::Duration};

use mosaic_ca_client::{IssueRequest, LocalCa};
use mosaic_health::{MisconfiguredProbe, Probe, ProbeError, ProbeFuture};
use mosaic_oid::Uuid;
use mosaic_seal::Keyring;
use mosaic_store::Store;

use crate::{
    context::{SECRET_VAR, SQLITE_FILE, keyring_from_env, load_or_create_local_ca},
    data_dir,
    tls::RootFingerprint,
};

/// The local tier's probes, for the data directory of `MOSAIC_DATA_DIR` (or the default).
pub(crate) fn probes(timeout: Duration) -> Vec<Box<dyn Probe>> {
    match data_dir::resolve(None) {
        Ok(dir) => vec![
            Box::new(SqliteProbe {
                target: dir.join(SQLITE_FILE).display().to_string(),
                dir: dir.clone(),
                timeout,
            }),
            Box::new(LocalCaProbe {
                target: dir.join("local-ca").display().to_string(),
                dir,
                timeout,
            }),
        ],
        Err(message) => {
            let missing = |name: &str| -> Box<dyn Probe> {
                Box::new(MisconfiguredProbe::new(
                    name,
                    "(no data directory)",
                    ProbeError::MissingSetting {
                        setting: data_dir::DATA_DIR_VAR.to_owned(),
                        remediation: format!(
                            "{message}; e.g. export {}=$HOME/.local/share/mosaic",
                            data_dir::DATA_DIR_VAR
                        ),
                    },
                ))
            };
            vec![missing("sqlite"), missing("local-ca")]
        }
    }
}

fn embedded(component: &str, reason: impl ToString, remediation: impl Into<String>) -> ProbeError {
    ProbeError::Embedded {
        component: component.to_owned(),
        reason: reason.to_string(),
        remediation: remediation.into(),
    }
}

/// A keyring for opening the store: the configured one, or a throwaway one (opening and migrating
/// SQLite unseals nothing).
fn any_keyring() -> Result<Keyring, ProbeError> {
    if std::env::var(SECRET_VAR).is_ok_and(|v| !v.is_empty()) {
        return keyring_from_env().map_err(|e| embedded("the sealing secret", &e, e.remediation()));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)
        .map_err(|e| embedded("the random number generator", e, "report this"))?;
    Keyring::from_secrets(&hex::encode(secret), std::iter::empty::<&str>())
        .map_err(|e| embedded("a throwaway keyring", e, "report this"))
}

struct SqliteProbe {
    dir: PathBuf,
    target: String,
    timeout: Duration,
}

impl Probe for SqliteProbe {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let remediation = format!(
                "check that the data directory {} is writable by this user (choose another with {})",
                self.dir.display(),
                data_dir::DATA_DIR_VAR
            );
            data_dir::create_private_dir(&self.dir)
                .map_err(|e| embedded("the data directory", e, remediation.clone()))?;
            let path = self.dir.join(SQLITE_FILE);
            let existed = path.exists();
            let store = Store::open_local(&path, Arc::new(any_keyring()?))
                .await
                .map_err(|e| {
                    let fix = e.remediation().unwrap_or(remediation);
                    embedded("the SQLite store", &e, fix)
                })?;
            store.close().await;
            Ok(Some(
                if existed {
                    "opened and migrated"
                } else {
                    "created and migrated"
                }
                .to_owned(),
            ))
        })
    }
}

struct LocalCaProbe {
    dir: PathBuf,
    target: String,
    timeout: Duration,
}

impl Probe for LocalCaProbe {
    fn name(&self) -> &str {
        "local-ca"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            let persisted = self.dir.join("local-ca/intermediate-key.sealed").exists();
            let ca = if persisted {
                let keyring = keyring_from_env()
                    .map_err(|e| embedded("the local CA", &e, e.remediation()))?;
                load_or_create_local_ca(&self.dir, &keyring)
                    .map_err(|e| embedded("the local CA", &e, e.remediation()))?
            } else {
                LocalCa::generate("Mosaic doctor")
                    .map_err(|e| embedded("a throwaway local CA", &e, e.remediation()))?
            };
            let request = IssueRequest::new(
                Uuid::new_v4().to_string(),
                Uuid::new_v4().to_string(),
                "doctor-check.mosaic.invalid",
            );
            ca.issue_now(&request).map_err(|e| {
                embedded(
                    "the local CA",
                    format!("{}: {e}", e.code()),
                    e.remediation(),
                )
            })?;
            Ok(Some(if persisted {
                format!(
                    "issued and verified a test certificate; root sha256 {}",
                    RootFingerprint::of(ca.root_der())
                )
            } else {
                "not created yet (the first `serve` creates it); a throwaway CA issued and verified a test certificate"
                    .to_owned()
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn sqlite_is_created_then_opened_and_a_throwaway_ca_works() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteProbe {
            dir: dir.path().join("data"),
            target: String::new(),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            sqlite.check().await.unwrap().as_deref(),
            Some("created and migrated")
        );
        assert_eq!(
            sqlite.check().await.unwrap().as_deref(),
            Some("opened and migrated")
        );
        let ca = LocalCaProbe {
            dir: dir.path().join("data"),
            target: String::new(),
            timeout: Duration::from_secs(5),
        };
        assert!(
            ca.check()
                .await
                .unwrap()
                .unwrap()
                .contains("throwaway CA issued and verified")
        );
    }

    #[tokio::test]
    async fn an_unusable_sqlite_file_is_a_cross_with_a_remediation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(SQLITE_FILE),
            b"this is not a SQLite database, it is plain text........",
        )
        .unwrap();
        let sqlite = SqliteProbe {
            dir: dir.path().to_owned(),
            target: String::new(),
            timeout: Duration::from_secs(5),
        };
        let error = sqlite.check().await.unwrap_err();
        assert_eq!(error.code(), "EMBEDDED");
        assert!(error.to_string().starts_with("the SQLite store"), "{error}");
        assert!(!error.remediation().is_empty());
    }
}
