//! `mosaic federation grant …` (the granting side) and `mosaic federation peer …` (the enrolling side).
//!
//! Exit codes: 0 done, 1 failed (including a peer's refusal), 2 usage or configuration error. Errors go
//! to stderr with their code and a remediation; `--json` puts one object on stdout.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use mosaic_oid::{GrantId, SubjectUserId};
use mosaic_store::{
    AuditQuery, Grant, GrantFilter, GrantStatus, MAX_ENROLLMENT_TOKEN_TTL, Peer, Store,
};
use serde_json::json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    config::GatewayConfig,
    context::{Gateway, GatewaySettings, keyring_from_env},
    enrollment::{EnrollmentUrl, WHOAMI_PATH},
    federation_error::FederationError,
    grant_ops, peer_client,
};

/// `mosaic federation …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FederationCommand {
    /// Grants this gateway gives to peers (the granting side).
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Gateways this gateway enrolled with (the enrolling side).
    #[command(subcommand)]
    Peer(PeerCommand),
}

/// Options every federation command takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CommonArgs {
    /// The data directory (SQLite on the local tier, the local CA, the server identity).
    #[arg(long, env = "MOSAIC_DATA_DIR", value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
}

/// `mosaic federation grant …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum GrantCommand {
    /// Create a pending grant: PEER may act for USER within SCOPE once it enrolls.
    Create {
        /// The local user the peer acts for (canonical UUID).
        #[arg(long = "user", value_name = "UUID")]
        user: String,
        /// The peer's name (becomes its certificate's CN); created if unknown.
        #[arg(long, value_name = "NAME")]
        peer: String,
        /// A JSON file with the grant's scope (one object).
        #[arg(long, value_name = "FILE")]
        scope: PathBuf,
        /// The peer's URL, for the records (default https://NAME/).
        #[arg(long, value_name = "URL")]
        peer_url: Option<String>,
        /// Let the grant expire after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<u64>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List grants, newest first.
    List {
        /// Only this peer's grants.
        #[arg(long, value_name = "NAME")]
        peer: Option<String>,
        /// Only grants in this state.
        #[arg(long, value_parser = ["pending", "active", "revoked", "expired"])]
        status: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Show a grant, its peer and its recent audit entries.
    Show {
        /// The grant id.
        grant: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke a grant: every request with its certificate is refused from now on.
    Revoke {
        /// The grant id.
        grant: String,
        /// Why (kept in the grant and the audit log).
        #[arg(long, default_value = "revoked by the operator")]
        reason: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Issue a single-use enrollment token for a pending grant and print its enrollment URL.
    Token {
        /// The grant id.
        grant: String,
        /// How long the token lives, in seconds (at most 900).
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=900))]
        ttl: u64,
        /// This gateway's URL as peers reach it (default: MOSAIC_PUBLIC_URL, else what `serve` announced).
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// `mosaic federation peer …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PeerCommand {
    /// Enroll with a granting gateway: new P-256 key and CSR, certificate verified, key sealed, peer stored.
    Enroll {
        /// The URL printed by `mosaic federation grant token` on the granting gateway (quote it).
        url: String,
        /// The local name to store the peer under (default: the name the granting gateway gives itself).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List peers (those that enrolled with us, and those we enrolled with).
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Call a peer gateway over mutual TLS with the stored certificate and key.
    Call {
        /// The peer's name.
        peer: String,
        /// What to call.
        #[arg(value_parser = ["whoami"])]
        endpoint: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Runs a federation command's future on a runtime, printing its error with code and remediation.
pub(crate) fn run_async(
    name: &str,
    future: impl Future<Output = Result<(), FederationError>>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::from(crate::EXIT_FAILURE);
        }
    };
    init_logging();
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report_error(name, &error);
            ExitCode::from(if error.is_usage() {
                crate::EXIT_USAGE
            } else {
                crate::EXIT_FAILURE
            })
        }
    }
}

/// Prints an error the way every federation command does.
pub(crate) fn report_error(name: &str, error: &FederationError) {
    eprintln!("{name}: {error}");
    eprintln!("  code: {}", error.code());
    eprintln!("  to fix: {}", error.remediation());
}

/// Logs to stderr; `RUST_LOG` chooses what (default: warnings and the gateway's own info lines).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,mosaic=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

async fn open(config_path: Option<&Path>, common: &CommonArgs) -> Result<Gateway, FederationError> {
    let config = GatewayConfig::load(config_path)?;
    let settings = GatewaySettings::from_config(&config, common.data_dir.as_deref())?;
    Gateway::open(settings, Arc::new(keyring_from_env()?)).await
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn grant_id(text: &str) -> Result<GrantId, FederationError> {
    grant_ops::parse_id(text, "grant id")
}

async fn peer_names(
    store: &Store,
) -> Result<std::collections::HashMap<mosaic_store::PeerId, String>, FederationError> {
    Ok(store
        .list_peers()
        .await?
        .into_iter()
        .map(|p| (p.id, p.common_name))
        .collect())
}

fn grant_json(grant: &Grant, peer: Option<&str>) -> serde_json::Value {
    json!({
        "id": grant.id.to_string(),
        "status": grant.status,
        "peer": peer,
        "peer_id": grant.peer_id.to_string(),
        "subject_user_id": grant.subject_user_id.to_string(),
        "scope": grant.scope,
        "created_at": rfc3339(grant.created_at),
        "activated_at": grant.activated_at.map(rfc3339),
        "revoked_at": grant.revoked_at.map(rfc3339),
        "revoked_reason": grant.revoked_reason,
        "expires_at": grant.expires_at.map(rfc3339),
    })
}

fn peer_json(peer: &Peer) -> serde_json::Value {
    json!({
        "id": peer.id.to_string(),
        "name": peer.common_name,
        "endpoint": peer.endpoint_url,
        "state": peer.state,
        "certificate_serial": peer.certificate.as_ref().map(|c| c.serial.to_string()),
        "certificate_not_after": peer.certificate.as_ref().map(|c| rfc3339(c.not_after)),
        "we_hold_a_client_key": peer.client_key.is_some(),
    })
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

pub(crate) fn run(config_path: Option<&Path>, command: &FederationCommand) -> ExitCode {
    match command {
        FederationCommand::Grant(grant) => {
            let name = match grant {
                GrantCommand::Create { .. } => "mosaic federation grant create",
                GrantCommand::List { .. } => "mosaic federation grant list",
                GrantCommand::Show { .. } => "mosaic federation grant show",
                GrantCommand::Revoke { .. } => "mosaic federation grant revoke",
                GrantCommand::Token { .. } => "mosaic federation grant token",
            };
            run_async(name, run_grant(config_path, grant))
        }
        FederationCommand::Peer(peer) => {
            let name = match peer {
                PeerCommand::Enroll { .. } => "mosaic federation peer enroll",
                PeerCommand::List { .. } => "mosaic federation peer list",
                PeerCommand::Call { .. } => "mosaic federation peer call",
            };
            run_async(name, run_peer(config_path, peer))
        }
    }
}

async fn run_grant(
    config_path: Option<&Path>,
    command: &GrantCommand,
) -> Result<(), FederationError> {
    match command {
        GrantCommand::Create {
            user,
            peer,
            scope,
            peer_url,
            expires_in,
            common,
        } => {
            let subject: SubjectUserId = grant_ops::parse_id(user, "user")?;
            let scope = grant_ops::read_scope_file(scope)?;
            let expires_at = expires_in.map(|s| OffsetDateTime::now_utc() + Duration::from_secs(s));
            let gateway = open(config_path, common).await?;
            let (grant, peer) = grant_ops::create_grant(
                &gateway.store,
                subject,
                peer,
                peer_url.as_deref(),
                scope,
                expires_at,
            )
            .await?;
            if common.json {
                print_json(&grant_json(&grant, Some(&peer.common_name)));
            } else {
                println!(
                    "grant {} created: pending, for peer {} acting for user {}",
                    grant.id, peer.common_name, grant.subject_user_id
                );
                println!("next: mosaic federation grant token {}", grant.id);
            }
            gateway.close().await;
        }
        GrantCommand::List {
            peer,
            status,
            common,
        } => {
            let gateway = open(config_path, common).await?;
            let names = peer_names(&gateway.store).await?;
            let mut filter = GrantFilter::all();
            if let Some(name) = peer {
                let Some(peer) = gateway.store.get_peer_by_name(name).await? else {
                    return Err(FederationError::usage(
                        format!("no peer named {name:?}"),
                        "list peers with `mosaic federation peer list`",
                    ));
                };
                filter = filter.peer(peer.id);
            }
            if let Some(status) = status {
                filter = filter.status(status.parse::<GrantStatus>()?);
            }
            let grants = gateway.store.list_grants(filter).await?;
            if common.json {
                let list: Vec<_> = grants
                    .iter()
                    .map(|g| grant_json(g, names.get(&g.peer_id).map(String::as_str)))
                    .collect();
                print_json(&json!({ "grants": list }));
            } else if grants.is_empty() {
                println!("no grants");
            } else {
                for g in &grants {
                    println!(
                        "{}  {:<8} peer {:<20} user {}  created {}",
                        g.id,
                        g.status.as_str(),
                        names.get(&g.peer_id).map(String::as_str).unwrap_or("?"),
                        g.subject_user_id,
                        rfc3339(g.created_at)
                    );
                }
            }
            gateway.close().await;
        }
        GrantCommand::Show { grant, common } => {
            let id = grant_id(grant)?;
            let gateway = open(config_path, common).await?;
            let grant = grant_ops::grant_by_id(&gateway.store, id).await?;
            let peer = gateway.store.get_peer(grant.peer_id).await?;
            let audit = gateway
                .store
                .list_audit(AuditQuery::newest(20).grant(id))
                .await?;
            if common.json {
                let mut value = grant_json(&grant, peer.as_ref().map(|p| p.common_name.as_str()));
                if let Some(object) = value.as_object_mut() {
                    object.insert(
                        "peer_detail".into(),
                        peer.as_ref().map(peer_json).unwrap_or_default(),
                    );
                    object.insert(
                        "audit".into(),
                        serde_json::to_value(&audit).unwrap_or_default(),
                    );
                }
                print_json(&value);
            } else {
                println!("grant    {}", grant.id);
                println!("status   {}", grant.status);
                println!(
                    "peer     {}",
                    peer.as_ref().map(|p| p.common_name.as_str()).unwrap_or("?")
                );
                println!("user     {}", grant.subject_user_id);
                println!("scope    {}", grant.scope);
                println!("created  {}", rfc3339(grant.created_at));
                if let Some(at) = grant.activated_at {
                    println!("active   since {}", rfc3339(at));
                }
                if let Some(at) = grant.revoked_at {
                    println!(
                        "revoked  {} ({})",
                        rfc3339(at),
                        grant.revoked_reason.as_deref().unwrap_or("")
                    );
                }
                if let Some(at) = grant.expires_at {
                    println!("expires  {}", rfc3339(at));
                }
                if let Some(cert) = peer.as_ref().and_then(|p| p.certificate.as_ref()) {
                    println!(
                        "peer certificate serial {} valid until {}",
                        cert.serial,
                        rfc3339(cert.not_after)
                    );
                }
                println!("audit (newest first):");
                for entry in &audit {
                    println!(
                        "  {}  {:<20} {:<9} {}",
                        rfc3339(entry.created_at),
                        entry.action,
                        entry.outcome.as_str(),
                        entry.detail
                    );
                }
            }
            gateway.close().await;
        }
        GrantCommand::Revoke {
            grant,
            reason,
            common,
        } => {
            let id = grant_id(grant)?;
            let gateway = open(config_path, common).await?;
            if gateway.has_shared_cache()
                && !gateway.wait_for_shared_cache(Duration::from_secs(5)).await
            {
                eprintln!(
                    "warning: Valkey is not reachable, so the serving gateways cannot be told at once: any of them that \
                     cached an allow for this grant keeps allowing it for up to the decision TTL (30 s by default)"
                );
            }
            let grant = gateway.store.revoke_grant(id, reason).await?;
            if common.json {
                print_json(&grant_json(&grant, None));
            } else {
                println!(
                    "grant {} revoked: requests with its certificate are refused from now on",
                    grant.id
                );
            }
            gateway.close().await;
        }
        GrantCommand::Token {
            grant,
            ttl,
            public_url,
            common,
        } => {
            let id = grant_id(grant)?;
            let ttl = Duration::from_secs(*ttl).min(MAX_ENROLLMENT_TOKEN_TTL);
            let gateway = open(config_path, common).await?;
            let base = grant_ops::public_url(public_url.as_deref(), &gateway.settings.data_dir)?;
            let server_root = gateway.server_ca()?.fingerprint();
            let (url, expires_at) =
                grant_ops::enrollment_url(&gateway.store, id, ttl, &base, server_root).await?;
            if common.json {
                print_json(&json!({
                    "enrollment_url": url.to_url_string(),
                    "grant_id": id.to_string(),
                    "peer": url.peer_name,
                    "server_root_sha256": server_root.to_string(),
                    "expires_at": rfc3339(expires_at),
                }));
            } else {
                println!("{}", url.to_url_string());
                eprintln!(
                    "single use, valid until {}; hand it to peer {} over a trusted channel: it runs \
                     `mosaic federation peer enroll '<url>'`",
                    rfc3339(expires_at),
                    url.peer_name
                );
            }
            gateway.close().await;
        }
    }
    Ok(())
}

async fn run_peer(
    config_path: Option<&Path>,
    command: &PeerCommand,
) -> Result<(), FederationError> {
    match command {
        PeerCommand::Enroll { url, name, common } => {
            let url = EnrollmentUrl::parse(url)?;
            let gateway = open(config_path, common).await?;
            let enrolled = peer_client::enroll(&gateway.store, &url, name.as_deref()).await?;
            if common.json {
                print_json(&serde_json::to_value(&enrolled).unwrap_or_default());
            } else {
                println!(
                    "enrolled with {} as {}: grant {} for user {}, certificate serial {} valid until {}",
                    enrolled.peer,
                    url.peer_name,
                    enrolled.grant_id,
                    enrolled.subject_user_id,
                    enrolled.serial,
                    enrolled.not_after
                );
                println!("next: mosaic federation peer call {} whoami", enrolled.peer);
            }
            gateway.close().await;
        }
        PeerCommand::List { common } => {
            let gateway = open(config_path, common).await?;
            let peers = gateway.store.list_peers().await?;
            if common.json {
                print_json(&json!({ "peers": peers.iter().map(peer_json).collect::<Vec<_>>() }));
            } else if peers.is_empty() {
                println!("no peers");
            } else {
                for p in &peers {
                    let role = if p.client_key.is_some() {
                        "we enrolled with it"
                    } else {
                        "it enrolls with us"
                    };
                    println!(
                        "{:<24} {:<9} {:<45} {}  serial {}",
                        p.common_name,
                        p.state.as_str(),
                        p.endpoint_url.split('#').next().unwrap_or_default(),
                        role,
                        p.certificate
                            .as_ref()
                            .map(|c| c.serial.to_string())
                            .unwrap_or_else(|| "-".to_owned())
                    );
                }
            }
            gateway.close().await;
        }
        PeerCommand::Call {
            peer,
            endpoint: _,
            common,
        } => {
            let gateway = open(config_path, common).await?;
            let answer = peer_client::call(&gateway.store, peer, WHOAMI_PATH).await;
            gateway.close().await;
            let answer = answer?;
            if common.json || answer.status == 200 {
                print_json(&json!({ "status": answer.status, "body": answer.body }));
            }
            if answer.status != 200 {
                let code = answer
                    .body
                    .get("error")
                    .and_then(|v| v.as_str())
                    .unwrap_or("unexpected")
                    .to_owned();
                let message = answer
                    .body
                    .get("message")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned();
                let remediation = answer
                    .body
                    .get("remediation")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                return Err(FederationError::PeerRefused {
                    status: answer.status,
                    code,
                    message,
                    remediation,
                });
            }
        }
    }
    Ok(())
}
