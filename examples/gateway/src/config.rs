//! Gateway configuration: `mosaic.config.json` plus the environment.
//!
//! Where the file comes from, first match wins:
//! 1. `--config PATH`, or `MOSAIC_CONFIG` (clap resolves the flag and the variable into one option);
//! 2. `mosaic.config.json` in the working directory;
//! 3. none: every setting comes from the environment, and the tier is `local`.
//!
//! The file's shape is `{"tier": "local"|"standalone"|"federated", "database": URL, "queue": URL}`, every
//! key optional, no other key allowed. The environment overrides it: `MOSAIC_TIER` the tier,
//! `DATABASE_URL` the database, `REDIS_URL` the queue. An empty variable counts as unset. step-ca is
//! configured by the environment only (`STEP_CA_URL`, `STEP_CA_ROOT_CERT_PATH`,
//! `STEP_CA_ROOT_FINGERPRINT`), as the setup guide says; whoever uses those settings validates them.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use mosaic_health::ServerUrl;
use serde::Deserialize;

/// The configuration file looked for in the working directory.
pub(crate) const DEFAULT_FILE: &str = "mosaic.config.json";

/// The deployment tier: which servers the gateway uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Tier {
    /// One host, embedded storage: no servers.
    Local,
    /// PostgreSQL.
    Standalone,
    /// PostgreSQL with pgvector, Valkey and step-ca.
    Federated,
}

impl Tier {
    const NAMES: &'static str = "local, standalone or federated";

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Standalone => "standalone",
            Self::Federated => "federated",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "local" => Some(Self::Local),
            "standalone" => Some(Self::Standalone),
            "federated" => Some(Self::Federated),
            _ => None,
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    tier: Option<Tier>,
    database: Option<String>,
    queue: Option<String>,
}

/// The step-ca settings, as given (not validated here: the doctor's probe and the CA client do that).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StepCaSettings {
    /// `STEP_CA_URL`, e.g. `https://localhost:9000`.
    pub url: Option<String>,
    /// `STEP_CA_ROOT_CERT_PATH`.
    pub root_cert_path: Option<PathBuf>,
    /// `STEP_CA_ROOT_FINGERPRINT`, an optional SHA-256 pin of the root.
    pub root_fingerprint: Option<String>,
}

/// The resolved configuration that every command uses.
#[derive(Debug, Clone)]
pub(crate) struct GatewayConfig {
    /// The tier.
    pub tier: Tier,
    /// The file the settings came from, as it was named (`mosaic.config.json`), if any.
    pub file: Option<PathBuf>,
    /// The PostgreSQL URL (`DATABASE_URL`, else `database`). Shows redacted.
    pub database: Option<ServerUrl>,
    /// The Valkey URL (`REDIS_URL`, else `queue`). Shows redacted.
    pub queue: Option<ServerUrl>,
    /// step-ca, from the environment.
    pub step_ca: StepCaSettings,
}

/// Why the configuration cannot be used. The doctor and every other command exit 2 on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ConfigError {
    /// The file named by `--config` or `MOSAIC_CONFIG` does not exist.
    #[error("the configuration file {} does not exist", path.display())]
    NotFound { path: PathBuf },
    /// The file exists but cannot be read.
    #[error("cannot read the configuration file {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// The file is not JSON.
    #[error("{}:{line}:{column}: malformed JSON: {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// The file is JSON, but not the configuration's shape (an unknown field, a wrong type or tier).
    #[error("{}:{line}:{column}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    /// `MOSAIC_TIER` names no tier.
    #[error("MOSAIC_TIER is {value:?}, which is not a tier")]
    UnknownTier { value: String },
    /// A URL setting cannot be used.
    #[error("{0}")]
    Url(mosaic_health::ProbeError),
}

impl ConfigError {
    /// What the operator can do about it.
    pub(crate) fn remediation(&self) -> String {
        match self {
            Self::NotFound { .. } => format!(
                "check the path given to --config or MOSAIC_CONFIG, or leave both unset to use ./{DEFAULT_FILE}"
            ),
            Self::Unreadable { .. } => "check the file's permissions".to_owned(),
            Self::Malformed { .. } => "fix the JSON at that line and column; the file looks like {\"tier\": \
                                       \"federated\", \"database\": \"postgresql://mosaic:mosaic@localhost:5433/mosaic\", \
                                       \"queue\": \"redis://localhost:6380\"}"
                .to_owned(),
            Self::Invalid { .. } => format!(
                "the file may only have \"tier\" ({}), \"database\" and \"queue\" (URL strings)",
                Tier::NAMES
            ),
            Self::UnknownTier { .. } => format!("set MOSAIC_TIER to {}, or unset it", Tier::NAMES),
            Self::Url(error) => error.remediation(),
        }
    }
}

/// Where the values come from: the process, or a test's fixture.
pub(crate) trait Environment {
    /// The variable's value; `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub(crate) struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl GatewayConfig {
    /// Resolves the configuration of this process: `explicit` is `--config`/`MOSAIC_CONFIG`.
    pub(crate) fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::resolve(explicit, Path::new("."), &ProcessEnvironment)
    }

    /// Resolves the configuration with `explicit` (`--config`/`MOSAIC_CONFIG`), looking for the default
    /// file in `cwd`, and reading variables from `env`.
    pub(crate) fn resolve(
        explicit: Option<&Path>,
        cwd: &Path,
        env: &dyn Environment,
    ) -> Result<Self, ConfigError> {
        let (file, contents) = match explicit {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => (Some(path.to_path_buf()), parse_file(path, &text)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ConfigError::NotFound {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) => {
                    return Err(ConfigError::Unreadable {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    });
                }
            },
            None => match std::fs::read_to_string(cwd.join(DEFAULT_FILE)) {
                Ok(text) => {
                    let shown = PathBuf::from(DEFAULT_FILE);
                    let parsed = parse_file(&shown, &text)?;
                    (Some(shown), parsed)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, ConfigFile::default()),
                Err(e) => {
                    return Err(ConfigError::Unreadable {
                        path: PathBuf::from(DEFAULT_FILE),
                        reason: e.to_string(),
                    });
                }
            },
        };
        let file_setting = |key: &str| match &file {
            Some(path) => format!("\"{key}\" in {}", path.display()),
            None => key.to_owned(),
        };

        let tier = match env.var("MOSAIC_TIER") {
            Some(value) => Tier::parse(&value).ok_or(ConfigError::UnknownTier { value })?,
            None => contents.tier.unwrap_or(Tier::Local),
        };
        let url = |var: &str,
                   key: &str,
                   from_file: Option<String>|
         -> Result<Option<ServerUrl>, ConfigError> {
            let (setting, value) = match env.var(var) {
                Some(value) => (var.to_owned(), value),
                None => match from_file.filter(|v| !v.is_empty()) {
                    Some(value) => (file_setting(key), value),
                    None => return Ok(None),
                },
            };
            ServerUrl::parse(&setting, &value)
                .map(Some)
                .map_err(ConfigError::Url)
        };
        let database = url("DATABASE_URL", "database", contents.database)?;
        let queue = url("REDIS_URL", "queue", contents.queue)?;
        let step_ca = StepCaSettings {
            url: env.var("STEP_CA_URL"),
            root_cert_path: env.var("STEP_CA_ROOT_CERT_PATH").map(PathBuf::from),
            root_fingerprint: env.var("STEP_CA_ROOT_FINGERPRINT"),
        };
        Ok(Self {
            tier,
            file,
            database,
            queue,
            step_ca,
        })
    }

    /// The file as shown to people, if any.
    pub(crate) fn file_display(&self) -> Option<String> {
        self.file.as_ref().map(|p| p.display().to_string())
    }
}

fn parse_file(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        // serde_json appends " at line L column C"; the error shows it as path:line:column instead.
        let message = e.to_string();
        let reason = message
            .strip_suffix(&format!(" at line {line} column {column}"))
            .unwrap_or(&message)
            .to_owned();
        let path = path.to_path_buf();
        match e.classify() {
            serde_json::error::Category::Data => ConfigError::Invalid {
                path,
                line,
                column,
                reason,
            },
            _ => ConfigError::Malformed {
                path,
                line,
                column,
                reason,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    struct FakeEnvironment(HashMap<&'static str, &'static str>);

    impl Environment for FakeEnvironment {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .get(name)
                .filter(|v| !v.is_empty())
                .map(|v| (*v).to_owned())
        }
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> FakeEnvironment {
        FakeEnvironment(pairs.iter().copied().collect())
    }

    fn dir_with(contents: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(contents) = contents {
            std::fs::write(dir.path().join(DEFAULT_FILE), contents).unwrap();
        }
        dir
    }

    const FILE: &str = r#"{"tier": "federated",
        "database": "postgresql://mosaic:file-pw@localhost:5433/mosaic",
        "queue": "redis://localhost:6380"}"#;

    #[test]
    fn no_file_and_no_environment_is_the_local_tier() {
        let dir = dir_with(None);
        let config = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap();
        assert_eq!(config.tier, Tier::Local);
        assert!(config.file.is_none() && config.database.is_none() && config.queue.is_none());
        assert_eq!(config.step_ca, StepCaSettings::default());
    }

    #[test]
    fn the_file_in_the_working_directory_is_read() {
        let dir = dir_with(Some(FILE));
        let config = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap();
        assert_eq!(config.tier, Tier::Federated);
        assert_eq!(config.file_display().as_deref(), Some("mosaic.config.json"));
        assert_eq!(
            config.database.unwrap().redacted(),
            "postgresql://mosaic:***@localhost:5433/mosaic"
        );
        assert_eq!(config.queue.unwrap().target(), "localhost:6380");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = dir_with(Some(FILE));
        let vars = env(&[
            ("MOSAIC_TIER", "Standalone"),
            (
                "DATABASE_URL",
                "postgresql://app:env-pw@db.internal:6543/app",
            ),
            ("REDIS_URL", "redis://cache.internal:7000"),
            ("STEP_CA_URL", "https://ca.internal:9000"),
            ("STEP_CA_ROOT_CERT_PATH", "/etc/mosaic/root.crt"),
            ("STEP_CA_ROOT_FINGERPRINT", "ab12"),
        ]);
        let config = GatewayConfig::resolve(None, dir.path(), &vars).unwrap();
        assert_eq!(config.tier, Tier::Standalone);
        assert_eq!(config.database.unwrap().target(), "db.internal:6543");
        assert_eq!(config.queue.unwrap().target(), "cache.internal:7000");
        assert_eq!(
            config.step_ca.url.as_deref(),
            Some("https://ca.internal:9000")
        );
        assert_eq!(
            config.step_ca.root_cert_path.as_deref(),
            Some(Path::new("/etc/mosaic/root.crt"))
        );
        assert_eq!(config.step_ca.root_fingerprint.as_deref(), Some("ab12"));
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let dir = dir_with(Some(FILE));
        let vars = env(&[("MOSAIC_TIER", ""), ("DATABASE_URL", "")]);
        let config = GatewayConfig::resolve(None, dir.path(), &vars).unwrap();
        assert_eq!(config.tier, Tier::Federated);
        assert_eq!(config.database.unwrap().target(), "localhost:5433");
    }

    #[test]
    fn an_explicit_file_wins_over_the_working_directory() {
        let dir = dir_with(Some(FILE));
        let other = dir.path().join("other.json");
        std::fs::write(&other, r#"{"tier": "standalone"}"#).unwrap();
        let config = GatewayConfig::resolve(Some(&other), dir.path(), &env(&[])).unwrap();
        assert_eq!(config.tier, Tier::Standalone);
        assert_eq!(config.file.as_deref(), Some(other.as_path()));
        assert!(config.database.is_none());
    }

    #[test]
    fn a_missing_explicit_file_is_an_error() {
        let dir = dir_with(Some(FILE));
        let missing = dir.path().join("nope.json");
        let err = GatewayConfig::resolve(Some(&missing), dir.path(), &env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::NotFound { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.json"), "{err}");
    }

    #[test]
    fn an_unknown_field_is_named_with_its_place() {
        let dir = dir_with(Some(
            "{\n  \"tier\": \"federated\",\n  \"datbase\": \"postgresql://x@y/z\"\n}",
        ));
        let err = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ConfigError::Invalid { line: 3, .. }),
            "{err:?}"
        );
        assert!(text.starts_with("mosaic.config.json:3:"), "{text}");
        assert!(text.contains("unknown field `datbase`"), "{text}");
        assert!(err.remediation().contains("\"database\""));
    }

    #[test]
    fn an_unknown_tier_in_the_file_is_invalid() {
        let dir = dir_with(Some(r#"{"tier": "galactic"}"#));
        let err = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `galactic`"),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_reports_line_and_column() {
        let dir = dir_with(Some(
            "{\n  \"tier\": \"federated\"\n  \"database\": \"x\"\n}",
        ));
        let err = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap_err();
        let ConfigError::Malformed { line, column, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!((line, column), (3, 3));
        assert_eq!(
            err.to_string(),
            "mosaic.config.json:3:3: malformed JSON: expected `,` or `}`"
        );
    }

    #[test]
    fn an_unknown_tier_variable_is_an_error() {
        let dir = dir_with(None);
        let err = GatewayConfig::resolve(None, dir.path(), &env(&[("MOSAIC_TIER", "cloud")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "MOSAIC_TIER is \"cloud\", which is not a tier"
        );
        assert!(err.remediation().contains("local, standalone or federated"));
    }

    #[test]
    fn a_bad_url_names_its_source_and_hides_its_password() {
        let dir = dir_with(Some(r#"{"database": "postgresql://u:file-secret@/db"}"#));
        let err = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap_err();
        let text = format!("{err} {err:?} {}", err.remediation());
        assert!(
            text.contains("\"database\" in mosaic.config.json"),
            "{text}"
        );
        assert!(!text.contains("file-secret"), "{text}");
        let err = GatewayConfig::resolve(
            None,
            dir.path(),
            &env(&[("DATABASE_URL", "::nonsense env-secret")]),
        )
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("DATABASE_URL"), "{text}");
        assert!(!text.contains("env-secret"), "{text}");
    }

    #[test]
    fn debug_never_shows_a_password() {
        let dir = dir_with(Some(FILE));
        let config = GatewayConfig::resolve(None, dir.path(), &env(&[])).unwrap();
        assert!(!format!("{config:?}").contains("file-pw"));
    }
}
