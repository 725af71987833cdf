//! `mosaic demo`: two gateways on loopback federate, step by step, through the same code as
//! `mosaic gateway serve` and the `mosaic federation` commands (in one process).
//!
//! The local tier (the default, nothing installed) uses a SQLite file and a `LocalCa` per gateway in a
//! temporary directory (or `--dir`). The federated tier (`--tier federated`, or a federated
//! configuration) uses two fresh PostgreSQL databases (created with the configured user, dropped at the
//! end), Valkey and step-ca. Exit 0 only when all six steps behaved as expected.

use std::{
    io::Write as _,
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use base64::Engine as _;
use mosaic_oid::{SubjectUserId, Uuid};
use mosaic_seal::Keyring;
use mosaic_store::{AuditQuery, Store};
use serde_json::json;
use sqlx::Connection as _;
use zeroize::Zeroizing;

use crate::{
    config::{GatewayConfig, Tier},
    context::{Gateway, GatewaySettings, IssuerKind, SECRET_VAR, StoreLocation, keyring_from_env},
    enrollment::WHOAMI_PATH,
    federation_error::FederationError,
    grant_ops, peer_client,
    serve::{self, StartedServer},
};

/// Arguments of `mosaic demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// The tier to run on (default: the configured one; with no configuration, local).
    #[arg(long, value_parser = ["local", "standalone", "federated"])]
    tier: Option<String>,
    /// Keep the gateways' data in this directory (it must not hold an earlier demo) instead of a
    /// temporary one that is removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The grant's scope in the demo.
fn demo_scope() -> serde_json::Value {
    json!({"resources": ["calendar"], "actions": ["read"]})
}

/// A step that did not behave as expected.
struct StepFailed(String);

impl From<FederationError> for StepFailed {
    fn from(error: FederationError) -> Self {
        Self(format!(
            "{error} [{}]\n      to fix: {}",
            error.code(),
            error.remediation()
        ))
    }
}

fn say(text: &str) {
    print!("{text}");
    let _ = std::io::stdout().flush();
}

pub(crate) fn run(config_path: Option<&Path>, args: &DemoArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mosaic demo: cannot start the async runtime: {e}");
            return ExitCode::from(crate::EXIT_FAILURE);
        }
    };
    match runtime.block_on(demo(config_path, args)) {
        Ok(()) => {
            println!("\nAll 6 steps behaved as expected.");
            ExitCode::SUCCESS
        }
        Err(DemoError::Usage(error)) => {
            crate::federation_cli::report_error("mosaic demo", &error);
            ExitCode::from(crate::EXIT_USAGE)
        }
        Err(DemoError::Step(StepFailed(why))) => {
            println!(" ✗\n      {why}");
            println!("\nThe demo FAILED: a step did not behave as expected.");
            ExitCode::from(crate::EXIT_FAILURE)
        }
    }
}

enum DemoError {
    /// Before the steps: configuration or set-up.
    Usage(FederationError),
    /// A step misbehaved.
    Step(StepFailed),
}

impl From<StepFailed> for DemoError {
    fn from(step: StepFailed) -> Self {
        Self::Step(step)
    }
}

impl From<FederationError> for DemoError {
    fn from(error: FederationError) -> Self {
        Self::Usage(error)
    }
}

/// The ephemeral sealing secret, when none is configured.
fn demo_keyring() -> Result<(Keyring, bool), FederationError> {
    if std::env::var(SECRET_VAR).is_ok_and(|v| !v.is_empty()) {
        return Ok((keyring_from_env()?, false));
    }
    let mut bytes = Zeroizing::new([0u8; 48]);
    getrandom::fill(bytes.as_mut())
        .map_err(|e| FederationError::Internal(format!("random number generator: {e}")))?;
    let secret = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(bytes.as_ref()));
    let keyring = Keyring::from_secrets(&secret, std::iter::empty::<&str>())
        .map_err(|e| FederationError::Internal(format!("ephemeral keyring: {e}")))?;
    Ok((keyring, true))
}

/// Two fresh PostgreSQL databases for the demo's gateways, dropped at the end.
struct DemoDatabases {
    admin_url: Zeroizing<String>,
    names: Vec<String>,
}

impl DemoDatabases {
    async fn create(admin_url: &str) -> Result<(Self, Vec<Zeroizing<String>>), FederationError> {
        let tag = Uuid::new_v4().simple().to_string();
        let names = vec![
            format!("mosaic_demo_{}_a", &tag[..12]),
            format!("mosaic_demo_{}_b", &tag[..12]),
        ];
        let mut connection = sqlx::PgConnection::connect(admin_url).await.map_err(|e| {
            FederationError::usage(
                format!("cannot connect to the configured database to create the demo's databases: {e}"),
                "check DATABASE_URL with `mosaic gateway doctor`; on this machine: infra/native/up, then eval \"$(infra/native/env)\"",
            )
        })?;
        let mut urls = Vec::new();
        for name in &names {
            // The name is ours (hex and underscores), never input: safe to put in the statement.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut connection)
                .await
                .map_err(|e| {
                    FederationError::usage(
                        format!("cannot create the demo database {name}: {e}"),
                        "the demo needs a database user that may CREATE DATABASE (the stack's `mosaic` user can)",
                    )
                })?;
            let mut url =
                url::Url::parse(admin_url).map_err(|e| FederationError::Internal(e.to_string()))?;
            url.set_path(&format!("/{name}"));
            urls.push(Zeroizing::new(url.to_string()));
        }
        let _ = connection.close().await;
        Ok((
            Self {
                admin_url: Zeroizing::new(admin_url.to_owned()),
                names,
            },
            urls,
        ))
    }

    async fn drop_all(&self) {
        let Ok(mut connection) = sqlx::PgConnection::connect(&self.admin_url).await else {
            eprintln!(
                "mosaic demo: could not reconnect to drop {}",
                self.names.join(", ")
            );
            return;
        };
        for name in &self.names {
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut connection)
            .await
            {
                eprintln!("mosaic demo: could not drop the demo database {name}: {e}");
            }
        }
        let _ = connection.close().await;
    }
}

async fn demo(config_path: Option<&Path>, args: &DemoArgs) -> Result<(), DemoError> {
    let config = GatewayConfig::load(config_path).map_err(FederationError::from)?;
    let tier = match args.tier.as_deref() {
        Some("federated") => Tier::Federated,
        Some("standalone") => Tier::Standalone,
        Some(_) => Tier::Local,
        None => config.tier,
    };
    let temporary;
    let root: PathBuf = match &args.dir {
        Some(dir) => {
            if dir.join("gateway-a").exists() || dir.join("gateway-b").exists() {
                return Err(FederationError::usage(
                    format!("{} already holds a demo", dir.display()),
                    "pass an empty or new directory to --dir, or leave --dir out to use a temporary one",
                )
                .into());
            }
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("mosaic-demo-")
                .tempdir()
                .map_err(|source| FederationError::Io {
                    action: "creating a temporary directory",
                    path: std::env::temp_dir(),
                    source,
                })?;
            temporary.path().to_owned()
        }
    };

    println!(
        "Mosaic federation demo: two gateways on loopback, {}",
        describe(tier)
    );
    println!(
        "  data: {}{}",
        root.display(),
        if args.dir.is_some() {
            ""
        } else {
            " (removed at the end; --dir DIR keeps it)"
        }
    );
    let (keyring, ephemeral) = demo_keyring()?;
    if ephemeral {
        println!(
            "  {SECRET_VAR} is not set: using an ephemeral random secret for this run (set it to keep what the demo seals)"
        );
    }
    let keyring = Arc::new(keyring);

    let (databases, stores) = match tier {
        Tier::Local => (None, [StoreLocation::LocalFile, StoreLocation::LocalFile]),
        Tier::Standalone | Tier::Federated => {
            let Some(database) = &config.database else {
                return Err(FederationError::usage(
                    format!("the {tier} demo needs a database, and none is configured"),
                    "set DATABASE_URL (e.g. postgresql://mosaic:mosaic@localhost:5433/mosaic), or run `mosaic demo --tier local`",
                )
                .into());
            };
            if tier == Tier::Federated && config.queue.is_none() {
                return Err(FederationError::usage(
                    "the federated demo needs Valkey, and no queue is configured",
                    "set REDIS_URL (e.g. redis://localhost:6380)",
                )
                .into());
            }
            let (databases, urls) = DemoDatabases::create(database.expose_secret()).await?;
            println!(
                "  databases: {} (dropped at the end)",
                databases.names.join(", ")
            );
            let valkey = config
                .queue
                .as_ref()
                .map(|q| Zeroizing::new(q.expose_secret().to_owned()));
            let [a, b]: [Zeroizing<String>; 2] = urls
                .try_into()
                .map_err(|_| FederationError::Internal("two databases".into()))?;
            (
                Some(databases),
                [
                    StoreLocation::Server {
                        database_url: a,
                        valkey_url: valkey.clone(),
                    },
                    StoreLocation::Server {
                        database_url: b,
                        valkey_url: valkey,
                    },
                ],
            )
        }
    };
    let issuer = if tier == Tier::Federated {
        IssuerKind::StepCa
    } else {
        IssuerKind::Local
    };
    let [store_a, store_b] = stores;
    let result = async {
        let a = Gateway::open(
            GatewaySettings {
                tier,
                data_dir: root.join("gateway-a"),
                store: store_a,
                issuer,
            },
            keyring.clone(),
        )
        .await?;
        let b = Gateway::open(
            GatewaySettings {
                tier,
                data_dir: root.join("gateway-b"),
                store: store_b,
                issuer,
            },
            keyring.clone(),
        )
        .await?;
        let outcome = run_with(&a, &b).await;
        a.close().await;
        b.close().await;
        outcome
    }
    .await;
    if let Some(databases) = databases {
        databases.drop_all().await;
    }
    result
}

fn describe(tier: Tier) -> &'static str {
    match tier {
        Tier::Local => "local tier (SQLite and LocalCa: nothing to install)",
        Tier::Standalone => "standalone tier (PostgreSQL and LocalCa)",
        Tier::Federated => "federated tier (PostgreSQL, Valkey and step-ca)",
    }
}

async fn start_server(gateway: &Gateway, name: &str) -> Result<StartedServer, FederationError> {
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    serve::start(gateway, listen, None, Some(name.to_owned()), &[]).await
}

async fn run_with(a: &Gateway, b: &Gateway) -> Result<(), DemoError> {
    let server_a = start_server(a, "gateway-a").await?;
    let server_b = start_server(b, "gateway-b").await?;
    println!(
        "  gateway-a serves {} (server root sha256 {})",
        server_a.public_url, server_a.server_root
    );
    println!(
        "  gateway-b serves {} (server root sha256 {})",
        server_b.public_url, server_b.server_root
    );
    println!();
    let outcome = steps(a, b, &server_a).await;
    server_a.running.shutdown().await;
    server_b.running.shutdown().await;
    outcome.map_err(DemoError::Step)
}

async fn steps(a: &Gateway, b: &Gateway, server_a: &StartedServer) -> Result<(), StepFailed> {
    // 1. The granting gateway creates a grant for peer gateway-b, acting for one of its users.
    say("[1/6] gateway-a creates a grant for peer gateway-b ...");
    let subject = SubjectUserId::from(Uuid::new_v4());
    let (grant, _) =
        grant_ops::create_grant(&a.store, subject, "gateway-b", None, demo_scope(), None).await?;
    println!(
        " ✓\n      grant {} (pending), user {}, scope {}",
        grant.id, grant.subject_user_id, grant.scope
    );

    // 2. It issues a single-use enrollment token, wrapped in an enrollment URL.
    say("[2/6] gateway-a issues an enrollment token ...");
    let (url, expires_at) = grant_ops::enrollment_url(
        &a.store,
        grant.id,
        mosaic_store::MAX_ENROLLMENT_TOKEN_TTL,
        &server_a.public_url,
        server_a.server_root,
    )
    .await?;
    let shown = url.to_url_string().replace(url.token.expose(), "<token>");
    let expires = expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    println!(
        " ✓\n      {shown}\n      single use, expires {expires}; the URL pins gateway-a's server root"
    );

    // 3. The enrolling gateway enrolls: key, CSR, certificate verified (chain, key, OIDs), key sealed.
    say("[3/6] gateway-b enrolls with gateway-a ...");
    let enrolled = peer_client::enroll(&b.store, &url, None).await?;
    if enrolled.grant_id != grant.id.to_string()
        || enrolled.subject_user_id != grant.subject_user_id.to_string()
    {
        return Err(StepFailed(format!(
            "the certificate names grant {} / user {}",
            enrolled.grant_id, enrolled.subject_user_id
        )));
    }
    let state = a
        .store
        .get_grant(grant.id)
        .await
        .map_err(FederationError::from)?
        .map(|g| g.status);
    if state != Some(mosaic_store::GrantStatus::Active) {
        return Err(StepFailed(format!(
            "the grant is {state:?} after enrollment, expected active"
        )));
    }
    let issuer = match a.settings.issuer {
        IssuerKind::StepCa => format!(
            "step-ca at {}",
            std::env::var(mosaic_ca_client::ENV_URL).unwrap_or_default()
        ),
        IssuerKind::Local => "gateway-a's local CA".to_owned(),
    };
    println!(
        " ✓\n      certificate serial {} from {issuer}, valid until {}, OIDs 1.3.6.1.4.1.99999.1 = {} and .2 = {};\n      \
         verified by gateway-b (chain, key, OIDs), key sealed in its store; grant active on gateway-a",
        enrolled.serial, enrolled.not_after, enrolled.grant_id, enrolled.subject_user_id
    );

    // 4. A request over mutual TLS: allowed, and what it may do comes from the certificate.
    say("[4/6] gateway-b calls gateway-a's whoami over mutual TLS ...");
    let answer = peer_client::call(&b.store, &enrolled.peer, WHOAMI_PATH).await?;
    let body = &answer.body;
    if answer.status != 200
        || body.get("grant_id").and_then(|v| v.as_str()) != Some(grant.id.to_string().as_str())
        || body.get("subject_user_id").and_then(|v| v.as_str())
            != Some(grant.subject_user_id.to_string().as_str())
    {
        return Err(StepFailed(format!(
            "expected HTTP 200 naming grant {}, got HTTP {} {body}",
            grant.id, answer.status
        )));
    }
    println!(
        " ✓\n      HTTP 200: allowed under grant {} for user {}, scope {}\n      (grant and user read from the client certificate's OIDs, serial {} checked; decided from the {})",
        grant.id,
        grant.subject_user_id,
        body.get("scope").cloned().unwrap_or_default(),
        body.get("certificate_serial")
            .and_then(|v| v.as_str())
            .unwrap_or("?"),
        body.get("decision_source")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .replace('_', " ")
    );

    // 5. The granting gateway revokes the grant.
    say("[5/6] gateway-a revokes the grant ...");
    let revoked = a
        .store
        .revoke_grant(grant.id, "demo: revoked by the operator")
        .await
        .map_err(FederationError::from)?;
    println!(" ✓\n      grant {} is {}", revoked.id, revoked.status);

    // 6. The same request again: refused.
    say("[6/6] gateway-b makes the same request again ...");
    let answer = peer_client::call(&b.store, &enrolled.peer, WHOAMI_PATH).await?;
    let code = answer
        .body
        .get("error")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned();
    if answer.status != 403 || code != "grant_revoked" {
        return Err(StepFailed(format!(
            "expected HTTP 403 grant_revoked, got HTTP {} {}",
            answer.status, answer.body
        )));
    }
    println!(" ✓\n      HTTP 403 {code}: refused, with the same certificate, on the next request");
    print_audit(&a.store).await;
    Ok(())
}

async fn print_audit(store: &Store) {
    // The server awaits its audit writes before answering, so the refusal is already there.
    if let Ok(entries) = store.list_audit(AuditQuery::newest(10)).await {
        println!("      gateway-a's audit log, oldest first:");
        for entry in entries.iter().rev() {
            let reason = entry
                .detail
                .get("reason")
                .and_then(|v| v.as_str())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            println!(
                "        {:<20} {}{reason}",
                entry.action,
                entry.outcome.as_str()
            );
        }
    }
}
