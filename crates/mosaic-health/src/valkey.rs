//! Valkey probe (fred, one client per check, no reconnect policy).

use std::{fmt, time::Duration};

use fred::{
    prelude::{ClientLike, Config, ConnectionConfig, ErrorKind, EventInterface, PerformanceConfig},
    types::{ConnectHandle, InfoKind},
};

use crate::{DEFAULT_TIMEOUT, Probe, ProbeError, ProbeFuture, Redactor, ServerUrl};

/// Connects to Valkey (or Redis) and sends `PING`; the detail is the server version from `INFO server`.
#[derive(Clone)]
pub struct ValkeyProbe {
    config: Config,
    target: String,
    timeout: Duration,
    redactor: Redactor,
}

impl ValkeyProbe {
    /// A probe of the server at `url` (`redis://[user:password@]host:port[/db]`, `rediss://` for TLS).
    ///
    /// # Errors
    /// [`ProbeError::InvalidSetting`] when fred cannot use the URL.
    pub fn new(url: &ServerUrl) -> Result<Self, ProbeError> {
        let redactor = url.redactor().clone();
        let mut config =
            Config::from_url(url.expose_secret()).map_err(|e| ProbeError::InvalidSetting {
                setting: "REDIS_URL".to_owned(),
                reason: redactor.redact(&e.to_string()),
            })?;
        // Report the first failure instead of retrying: a probe answers "does it work now?".
        config.fail_fast = true;
        Ok(Self {
            config,
            target: url.target(),
            timeout: DEFAULT_TIMEOUT,
            redactor,
        })
    }

    /// Uses `timeout` instead of [`DEFAULT_TIMEOUT`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn classify(&self, error: &fred::error::Error) -> ProbeError {
        let reason = self.redactor.redact(&error.to_string());
        match error.kind() {
            ErrorKind::IO | ErrorKind::Tls => ProbeError::ValkeyUnreachable {
                target: self.target.clone(),
                reason,
            },
            ErrorKind::Auth => ProbeError::ValkeyAuth { reason },
            ErrorKind::Timeout => ProbeError::Timeout {
                service: "valkey".to_owned(),
                target: self.target.clone(),
                after: self.timeout,
            },
            _ if reason.contains("NOAUTH") || reason.contains("WRONGPASS") => {
                ProbeError::ValkeyAuth { reason }
            }
            _ => ProbeError::Valkey { reason },
        }
    }

    async fn run(&self) -> Result<Option<String>, ProbeError> {
        // fred's own timeouts match the probe's, no reconnect policy and one attempt per command, so the
        // driver gives up no later than the probe does.
        let connection = ConnectionConfig {
            connection_timeout: self.timeout,
            internal_command_timeout: self.timeout,
            max_command_attempts: 1,
            ..ConnectionConfig::default()
        };
        let performance = PerformanceConfig {
            default_command_timeout: self.timeout,
            ..PerformanceConfig::default()
        };
        let client = fred::clients::Client::new(
            self.config.clone(),
            Some(performance),
            Some(connection),
            None,
        );

        // Subscribe before connecting, so the first connection's event cannot be missed.
        let mut connected = client.reconnect_rx();
        let mut task = ConnectionTask(client.connect());
        tokio::select! {
            ended = &mut task.0 => {
                let error = match ended {
                    Ok(Err(error)) => self.classify(&error),
                    Ok(Ok(())) => ProbeError::Valkey { reason: "the connection closed at once".to_owned() },
                    Err(join) => ProbeError::Valkey { reason: format!("the connection task failed: {join}") },
                };
                return Err(error);
            }
            event = connected.recv() => {
                if let Err(error) = event {
                    return Err(ProbeError::Valkey { reason: format!("lost the connection events: {error}") });
                }
            }
        }

        let pong: String = client.ping(None).await.map_err(|e| self.classify(&e))?;
        if pong != "PONG" {
            return Err(ProbeError::Valkey {
                reason: self.redactor.redact(&format!("PING answered {pong:?}")),
            });
        }
        // The version is a nicety: a server whose ACL forbids INFO still passes.
        let info: Option<String> = client.info(Some(InfoKind::Server)).await.ok();
        let _ = client.quit().await;
        Ok(info.as_deref().and_then(server_version))
    }
}

/// Aborts fred's connection task when the check ends or is dropped at its timeout, so that nothing
/// the probe started outlives it.
struct ConnectionTask(ConnectHandle);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `Valkey 8.1.8` from `valkey_version:8.1.8`, else `Redis 7.2.4` from `redis_version:7.2.4`.
fn server_version(info: &str) -> Option<String> {
    let field = |key: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(key).map(|v| v.trim().to_owned()))
            .filter(|v| !v.is_empty())
    };
    field("valkey_version:")
        .map(|v| format!("Valkey {v}"))
        .or_else(|| field("redis_version:").map(|v| format!("Redis {v}")))
}

impl fmt::Debug for ValkeyProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValkeyProbe")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Probe for ValkeyProbe {
    fn name(&self) -> &str {
        "valkey"
    }

    fn target(&self) -> &str {
        &self.target
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_come_from_info_server() {
        let valkey =
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.8\r\n";
        assert_eq!(server_version(valkey).as_deref(), Some("Valkey 8.1.8"));
        assert_eq!(
            server_version("# Server\r\nredis_version:7.0.15\r\n").as_deref(),
            Some("Redis 7.0.15")
        );
        assert_eq!(server_version("# Server\r\n"), None);
    }

    #[test]
    fn targets_and_debug_never_show_the_password() {
        let url =
            ServerUrl::parse("REDIS_URL", "redis://default:vk-s3cret@localhost:6380/0").unwrap();
        let probe = ValkeyProbe::new(&url).unwrap();
        assert_eq!(probe.target(), "localhost:6380");
        assert!(!format!("{probe:?}").contains("vk-s3cret"));
        assert_eq!(
            probe.redactor().redact("WRONGPASS vk-s3cret"),
            "WRONGPASS ***"
        );
    }
}
