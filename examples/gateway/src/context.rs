//! One gateway's working parts, opened from the configuration: the keyring, the store, the federation
//! CA (`LocalCa` on the local and standalone tiers, step-ca on the federated tier) and the server
//! identity.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use mosaic_ca_client::{Issuer, LocalCa, StepCaClient};
use mosaic_seal::{Keyring, KeyringOptions};
use mosaic_store::{Store, StoreOptions};
use zeroize::Zeroizing;

use crate::{
    config::{GatewayConfig, Tier},
    data_dir::{self, write_private},
    federation_error::FederationError,
    server_identity::ServerCa,
};

/// The variable holding the sealing secret.
pub(crate) const SECRET_VAR: &str = "BETTER_AUTH_SECRET";
/// The variable naming the file of previous secrets (one a line).
pub(crate) const PREVIOUS_SECRETS_VAR: &str = "MOSAIC_SEAL_PREVIOUS_SECRETS_FILE";
/// The local tier's SQLite file, in the data directory.
pub(crate) const SQLITE_FILE: &str = "mosaic.sqlite3";
/// Associated data of the sealed `LocalCa` intermediate key.
const LOCAL_CA_KEY_AAD: &[u8] = b"mosaic-gateway/local-ca/intermediate-key";

/// Where the store lives.
#[derive(Clone, Debug)]
pub(crate) enum StoreLocation {
    /// SQLite in the data directory.
    LocalFile,
    /// PostgreSQL (and Valkey, when a queue URL is set).
    Server {
        /// `postgresql://…`, with its password.
        database_url: Zeroizing<String>,
        /// `redis://…`, if any.
        valkey_url: Option<Zeroizing<String>>,
    },
}

/// Which CA issues federation client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IssuerKind {
    /// `LocalCa`, persisted in the data directory (development and the local tier).
    Local,
    /// step-ca, from the `STEP_CA_*` variables.
    StepCa,
}

/// Everything needed to open one gateway.
#[derive(Clone, Debug)]
pub(crate) struct GatewaySettings {
    /// The tier, for messages.
    pub(crate) tier: Tier,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// The store.
    pub(crate) store: StoreLocation,
    /// The federation CA.
    pub(crate) issuer: IssuerKind,
}

impl GatewaySettings {
    /// The settings of this process's configuration.
    pub(crate) fn from_config(
        config: &GatewayConfig,
        data_dir: Option<&Path>,
    ) -> Result<Self, FederationError> {
        let data_dir = data_dir::resolve(data_dir).map_err(|message| {
            FederationError::usage(message, "pass --data-dir DIR, or set MOSAIC_DATA_DIR")
        })?;
        let store = match config.tier {
            Tier::Local => StoreLocation::LocalFile,
            Tier::Standalone | Tier::Federated => {
                let Some(database) = &config.database else {
                    return Err(FederationError::usage(
                        format!(
                            "the {} tier needs a database, and none is configured",
                            config.tier
                        ),
                        "set DATABASE_URL (or \"database\" in mosaic.config.json), e.g. \
                         postgresql://mosaic:mosaic@localhost:5433/mosaic",
                    ));
                };
                StoreLocation::Server {
                    database_url: Zeroizing::new(database.expose_secret().to_owned()),
                    valkey_url: config
                        .queue
                        .as_ref()
                        .map(|q| Zeroizing::new(q.expose_secret().to_owned())),
                }
            }
        };
        let issuer = if config.tier == Tier::Federated {
            IssuerKind::StepCa
        } else {
            IssuerKind::Local
        };
        Ok(Self {
            tier: config.tier,
            data_dir,
            store,
            issuer,
        })
    }
}

/// An opened gateway.
#[derive(Clone)]
pub(crate) struct Gateway {
    /// How it was opened.
    pub(crate) settings: GatewaySettings,
    /// Its store.
    pub(crate) store: Store,
    /// The keyring sealing its keys.
    pub(crate) keyring: Arc<Keyring>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.settings)
            .field("store", &self.store)
            .finish()
    }
}

impl Gateway {
    /// Opens the store (creating and migrating the local tier's file if needed).
    pub(crate) async fn open(
        settings: GatewaySettings,
        keyring: Arc<Keyring>,
    ) -> Result<Self, FederationError> {
        let store = match &settings.store {
            StoreLocation::LocalFile => {
                data_dir::create_private_dir(&settings.data_dir).map_err(|source| {
                    FederationError::Io {
                        action: "creating the data directory",
                        path: settings.data_dir.clone(),
                        source,
                    }
                })?;
                Store::open_local(&settings.data_dir.join(SQLITE_FILE), keyring.clone()).await?
            }
            StoreLocation::Server {
                database_url,
                valkey_url,
            } => {
                let mut options = StoreOptions::new(database_url.as_str(), keyring.clone());
                if let Some(valkey) = valkey_url {
                    options = options.valkey_url(valkey.as_str());
                }
                Store::connect(options).await?
            }
        };
        Ok(Self {
            settings,
            store,
            keyring,
        })
    }

    /// The CA that issues federation client certificates.
    pub(crate) fn federation_issuer(&self) -> Result<Arc<dyn Issuer>, FederationError> {
        match self.settings.issuer {
            IssuerKind::StepCa => Ok(Arc::new(StepCaClient::from_env()?)),
            IssuerKind::Local => Ok(Arc::new(load_or_create_local_ca(
                &self.settings.data_dir,
                &self.keyring,
            )?)),
        }
    }

    /// The server identity CA of the data directory.
    pub(crate) fn server_ca(&self) -> Result<ServerCa, FederationError> {
        Ok(ServerCa::load_or_create(
            &self.settings.data_dir,
            &self.keyring,
        )?)
    }

    /// Whether this gateway shares an authorization cache through Valkey.
    pub(crate) fn has_shared_cache(&self) -> bool {
        matches!(
            &self.settings.store,
            StoreLocation::Server {
                valkey_url: Some(_),
                ..
            }
        )
    }

    /// Waits (at most `timeout`) until the Valkey connection is up, and says whether it is.
    ///
    /// A short-lived process (the CLI) that revokes a grant must publish the invalidation that makes the
    /// serving gateways drop their cached decisions; mosaic-store connects to Valkey in the background
    /// and, while not yet connected, only queues the invalidation for later — which never comes when the
    /// process exits at once. Hence this wait before a revocation.
    pub(crate) async fn wait_for_shared_cache(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.store.shared_cache_connected() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }

    /// Closes the store's connections.
    pub(crate) async fn close(&self) {
        self.store.close().await;
    }
}

/// The keyring of `BETTER_AUTH_SECRET` and the previous secrets file.
pub(crate) fn keyring_from_env() -> Result<Keyring, FederationError> {
    let current = Zeroizing::new(std::env::var(SECRET_VAR).unwrap_or_default());
    if current.is_empty() {
        return Err(FederationError::Secret {
            message: format!("{SECRET_VAR} is not set"),
            remediation: format!(
                "export {SECRET_VAR}: a long random secret (e.g. `openssl rand -base64 48`); it seals the keys \
                 this gateway stores, so keep it and use the same one every time"
            ),
        });
    }
    let previous = match std::env::var_os(PREVIOUS_SECRETS_VAR).filter(|p| !p.is_empty()) {
        None => Zeroizing::new(String::new()),
        Some(path) => Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| FederationError::Secret {
            message: format!("cannot read {PREVIOUS_SECRETS_VAR} ({}): {e}", PathBuf::from(&path).display()),
            remediation: format!("point {PREVIOUS_SECRETS_VAR} at a readable file with one previous secret a line, or unset it"),
        })?),
    };
    let lines = previous.lines().filter(|line| !line.trim().is_empty());
    Keyring::from_secrets_with(&current, lines, KeyringOptions::default()).map_err(|e| {
        FederationError::Secret {
            message: format!("{SECRET_VAR} cannot be used: {e}"),
            remediation: e.remediation().to_owned(),
        }
    })
}

/// The local tier's federation CA, persisted in `<data dir>/local-ca/` (intermediate key sealed).
pub(crate) fn load_or_create_local_ca(
    data_dir: &Path,
    keyring: &Keyring,
) -> Result<LocalCa, FederationError> {
    let dir = data_dir.join("local-ca");
    let root_path = dir.join("root.pem");
    let intermediate_path = dir.join("intermediate.pem");
    let key_path = dir.join("intermediate-key.sealed");
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| FederationError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        })
    };
    if key_path.exists() {
        let sealed = Zeroizing::new(read(&key_path)?);
        let key = keyring.open(sealed.trim(), LOCAL_CA_KEY_AAD).map_err(|e| FederationError::Secret {
            message: format!("the local CA key {} does not open: {e}", key_path.display()),
            remediation: format!(
                "set {SECRET_VAR} to the secret this data directory was created with, or move {} away to start \
                 a new local CA (enrolled peers must then enroll again)",
                dir.display()
            ),
        })?;
        let key_pem = key
            .as_str()
            .map_err(|e| FederationError::Internal(e.to_string()))?;
        return Ok(LocalCa::from_pem(
            &read(&root_path)?,
            &read(&intermediate_path)?,
            key_pem,
        )?);
    }
    let ca = LocalCa::generate("Mosaic local tier")?;
    let key_pem = ca.intermediate_key_pem()?;
    let sealed = keyring
        .seal(key_pem.as_bytes(), LOCAL_CA_KEY_AAD)
        .map_err(|e| FederationError::Internal(format!("sealing the local CA key: {e}")))?;
    let write = |path: &Path, bytes: &[u8]| {
        write_private(path, bytes).map_err(|source| FederationError::Io {
            action: "writing",
            path: path.to_owned(),
            source,
        })
    };
    write(&root_path, ca.root_pem().as_bytes())?;
    write(&intermediate_path, ca.intermediate_pem().as_bytes())?;
    // The key last: its presence marks a complete CA.
    write(&key_path, sealed.as_bytes())?;
    Ok(ca)
}
