//! `mosaic gateway serve`: the federation API over HTTPS (rustls, ring), in the foreground.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use url::Url;

use crate::{
    context::{Gateway, GatewaySettings, keyring_from_env},
    federation_api::FederationApi,
    federation_error::FederationError,
    grant_ops,
    server::{self, RunningServer},
    tls::{self, RootFingerprint},
};

/// The variable naming the gateway (what peers that enroll call it by default).
pub(crate) const GATEWAY_NAME_VAR: &str = "MOSAIC_GATEWAY_NAME";

/// Arguments of `mosaic gateway serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    listen: SocketAddr,
    /// The URL peers reach this gateway at (default: https://<listen address>); goes into enrollment
    /// URLs and the server certificate.
    #[arg(long, env = "MOSAIC_PUBLIC_URL", value_name = "URL")]
    public_url: Option<Url>,
    /// This gateway's name, which enrolling peers store it under by default (default: the public URL's host).
    #[arg(long, env = GATEWAY_NAME_VAR, value_name = "NAME")]
    name: Option<String>,
    /// Another DNS name or IP address for the server certificate (repeatable).
    #[arg(long = "server-name", value_name = "NAME")]
    server_names: Vec<String>,
    /// The data directory (SQLite on the local tier, the local CA, the server identity).
    #[arg(long, env = "MOSAIC_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// A gateway's server, started.
pub(crate) struct StartedServer {
    /// The accept loop.
    pub(crate) running: RunningServer,
    /// The URL it announces.
    pub(crate) public_url: Url,
    /// The root its server certificate chains to.
    pub(crate) server_root: RootFingerprint,
    /// Its name.
    pub(crate) name: String,
}

/// Starts `gateway`'s HTTPS server on `listen`. Shared by `serve` and the demo.
pub(crate) async fn start(
    gateway: &Gateway,
    listen: SocketAddr,
    public_url: Option<Url>,
    name: Option<String>,
    extra_names: &[String],
) -> Result<StartedServer, FederationError> {
    let issuer = gateway.federation_issuer()?;
    let server_ca = gateway.server_ca()?;
    let listener = server::bind(listen).await.map_err(|e| {
        FederationError::usage(
            format!("cannot listen on {listen}: {e}"),
            "choose another address with --listen (port 0 picks a free one), or stop what uses it",
        )
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| FederationError::Internal(format!("reading the bound address: {e}")))?;
    let public_url = match public_url {
        Some(url) => url,
        None => {
            let host = if bound.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                bound.ip().to_string()
            };
            let host = if bound.ip().is_ipv6() && !bound.ip().is_unspecified() {
                format!("[{host}]")
            } else {
                host
            };
            Url::parse(&format!("https://{host}:{}/", bound.port()))
                .map_err(|e| FederationError::Internal(format!("forming the public URL: {e}")))?
        }
    };
    let public_host = public_url
        .host_str()
        .ok_or_else(|| {
            FederationError::usage(
                "the public URL has no host",
                "pass --public-url https://HOST:PORT",
            )
        })?
        .trim_matches(['[', ']'])
        .to_owned();
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for extra in std::iter::once(&public_host).chain(extra_names) {
        if !names.contains(extra) {
            names.push(extra.clone());
        }
    }
    let certificate = server_ca.issue_server_certificate(&names)?;
    let client_root = rustls_pki_types::CertificateDer::from(issuer.root_der().to_vec());
    let tls_config = tls::server_config(certificate.chain, certificate.key, &[client_root])?;
    let name = name.unwrap_or(public_host);
    let api = FederationApi::new(gateway.store.clone(), issuer, name.clone())
        .map_err(FederationError::Internal)?;
    let running = server::spawn(listener, Arc::new(tls_config), api.router())
        .map_err(|e| FederationError::Internal(format!("starting the server: {e}")))?;
    Ok(StartedServer {
        running,
        public_url,
        server_root: server_ca.fingerprint(),
        name,
    })
}

pub(crate) fn run(config_path: Option<&std::path::Path>, args: &ServeArgs) -> ExitCode {
    crate::federation_cli::run_async("mosaic gateway serve", async {
        let config = crate::config::GatewayConfig::load(config_path)?;
        let settings = GatewaySettings::from_config(&config, args.data_dir.as_deref())?;
        let keyring = Arc::new(keyring_from_env()?);
        let gateway = Gateway::open(settings, keyring).await?;
        let started = start(
            &gateway,
            args.listen,
            args.public_url.clone(),
            args.name.clone(),
            &args.server_names,
        )
        .await?;
        grant_ops::announce_server_url(&gateway.settings.data_dir, &started.public_url)?;
        println!(
            "mosaic gateway serve: {} listening on {} (tier {}, peer URL {}, server root sha256 {})",
            started.name,
            started.running.local_addr(),
            gateway.settings.tier,
            started.public_url,
            started.server_root,
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        wait_for_shutdown_signal().await;
        println!("mosaic gateway serve: shutting down");
        started.running.shutdown().await;
        gateway.close().await;
        Ok(())
    })
}

async fn wait_for_shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
