//! End to end, against the real stack: two `mosaic` gateway PROCESSES on loopback, each with its own
//! fresh PostgreSQL database (created and dropped here with the stack's superuser), Valkey for the
//! shared authorization cache, and step-ca issuing the federation certificates.
//!
//! Needs `infra/native/up` and `eval "$(infra/native/env)"`; without them every test fails with a
//! message saying so (never passes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::Arc,
    time::Duration,
};

use sqlx::Connection as _;

const NEEDS_STACK: &str = "needs the federated stack: run infra/test";
const STACK_VARS: [&str; 6] = [
    "DATABASE_URL",
    "REDIS_URL",
    "STEP_CA_URL",
    "STEP_CA_PROVISIONER_KEY_JSON",
    "STEP_CA_PROVISIONER_PASSWORD",
    "STEP_CA_ROOT_CERT_PATH",
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with infra/native/up and eval \"$(infra/native/env)\" ({NEEDS_STACK})")
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh database on the stack's PostgreSQL, dropped when this is dropped.
struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    fn create(label: &str) -> Self {
        let admin = env("DATABASE_URL");
        let name = format!(
            "mosaic_e2e_{label}_{}",
            &mosaic_oid::Uuid::new_v4().simple().to_string()[..12]
        );
        runtime().block_on(async {
            let mut connection = sqlx::PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| {
                    panic!("PostgreSQL at DATABASE_URL is not reachable ({NEEDS_STACK}): {e}")
                });
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut connection)
                .await
                .unwrap();
        });
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = std::env::var("DATABASE_URL").unwrap_or_default();
        let name = self.name.clone();
        runtime().block_on(async move {
            if let Ok(mut connection) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await;
            }
        });
    }
}

/// One gateway: a data directory, a database, and (once started) a `mosaic gateway serve` process.
struct Gateway {
    name: &'static str,
    dir: tempfile::TempDir,
    db: TestDatabase,
    secret: String,
    server: Option<Child>,
    url: Option<String>,
    server_log: PathBuf,
}

impl Gateway {
    fn new(name: &'static str) -> Self {
        for var in STACK_VARS {
            env(var);
        }
        let dir = tempfile::tempdir().unwrap();
        let server_log = dir.path().join("serve.stderr");
        Self {
            name,
            db: TestDatabase::create(&name.replace('-', "_")),
            dir,
            secret: format!("e2e-{name}-secret-{}", mosaic_oid::Uuid::new_v4()),
            server: None,
            url: None,
            server_log,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
        cmd.current_dir(self.dir.path())
            .env("MOSAIC_TIER", "federated")
            .env("DATABASE_URL", &self.db.url)
            .env("MOSAIC_DATA_DIR", self.dir.path().join("data"))
            .env("BETTER_AUTH_SECRET", &self.secret)
            .env_remove("MOSAIC_CONFIG")
            .env_remove("MOSAIC_PUBLIC_URL")
            .env_remove("MOSAIC_GATEWAY_NAME")
            .env("NO_COLOR", "1");
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}\n{}",
            self.name,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    /// Starts `mosaic gateway serve` on a free loopback port and waits for its announcement.
    fn serve(&mut self) -> String {
        let log = std::fs::File::create(&self.server_log).unwrap();
        let mut child = self
            .command()
            .args([
                "gateway",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--name",
                self.name,
            ])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .skip_while(|w| *w != "URL")
            .nth(1)
            .unwrap_or_else(|| {
                panic!(
                    "no URL in the serve announcement {line:?}; log: {}",
                    self.log()
                )
            })
            .trim_end_matches(',')
            .to_owned();
        self.server = Some(child);
        self.url = Some(url.clone());
        url
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.server_log).unwrap_or_default()
    }

    fn server_root_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("data/server-ca/root.pem")).unwrap()
    }

    fn data(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn write_scope(dir: &Path) -> String {
    let path = dir.join("scope.json");
    std::fs::write(&path, r#"{"resources": ["calendar"], "actions": ["read"]}"#).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Grants `peer` on `granting` and returns (grant id, subject user id, enrollment URL).
fn grant_and_token(granting: &Gateway, peer: &str) -> (String, String, String) {
    let user = mosaic_oid::Uuid::new_v4().to_string();
    let scope = write_scope(granting.data());
    let grant = granting.json(&[
        "federation",
        "grant",
        "create",
        "--user",
        &user,
        "--peer",
        peer,
        "--scope",
        &scope,
    ]);
    assert_eq!(grant["status"], "pending");
    let id = grant["id"].as_str().unwrap().to_owned();
    let token = granting.json(&["federation", "grant", "token", &id, "--ttl", "600"]);
    let url = token["enrollment_url"].as_str().unwrap().to_owned();
    assert!(
        url.contains("#token=") && url.contains("root-sha256="),
        "{url}"
    );
    (id, user, url)
}

/// A mutual-TLS `GET /api/federation/v1/whoami` made by the test itself with any certificate, trusting
/// the gateway's server root. `Err` when the connection (TLS) fails.
fn whoami_with(
    base: &str,
    server_root_pem: &str,
    chain_pem: &str,
    key_pem: &str,
) -> Result<(u16, serde_json::Value), String> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(server_root_pem.as_bytes()).unwrap())
        .unwrap();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = format!("{}api/federation/v1/whoami", base);
    runtime().block_on(async move {
        match client.get(url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json().await.unwrap_or(serde_json::Value::Null);
                Ok((status, body))
            }
            Err(error) => {
                let mut reason = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    reason = format!("{reason}: {cause}");
                    source = cause.source();
                }
                Err(reason)
            }
        }
    })
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn enrollment_then_allowed_then_revoked_and_refused() {
    let mut a = Gateway::new("gw-a");
    let b = Gateway::new("gw-b");
    a.serve();
    let (grant, user, url) = grant_and_token(&a, "gw-b");

    // Enrollment: B generates a key and CSR, A claims the token and issues through step-ca.
    let enrolled = b.json(&["federation", "peer", "enroll", &url]);
    assert_eq!(enrolled["peer"], "gw-a");
    assert_eq!(enrolled["grant_id"], grant.as_str());
    assert_eq!(enrolled["subject_user_id"], user.as_str());
    let shown = a.json(&["federation", "grant", "show", &grant]);
    assert_eq!(shown["status"], "active");
    assert_eq!(shown["peer_detail"]["state"], "active");
    assert_eq!(
        shown["peer_detail"]["certificate_serial"],
        enrolled["serial"]
    );
    let peers = b.json(&["federation", "peer", "list"]);
    assert_eq!(peers["peers"][0]["name"], "gw-a");
    assert_eq!(peers["peers"][0]["we_hold_a_client_key"], true);
    // The key is sealed in B's database, never stored in clear.
    let sealed: String = runtime().block_on(async {
        let mut db = sqlx::PgConnection::connect(&b.db.url).await.unwrap();
        sqlx::query_scalar("SELECT client_key_pem FROM federation_peers WHERE common_name = 'gw-a'")
            .fetch_one(&mut db)
            .await
            .unwrap()
    });
    assert!(
        sealed.starts_with("$mosaic-seal$") && !sealed.contains("PRIVATE KEY"),
        "{sealed}"
    );

    // The allowed request: what it may do comes from the certificate.
    let call = b.json(&["federation", "peer", "call", "gw-a", "whoami"]);
    assert_eq!(call["status"], 200);
    assert_eq!(call["body"]["grant_id"], grant.as_str());
    assert_eq!(call["body"]["subject_user_id"], user.as_str());
    assert_eq!(call["body"]["peer"]["name"], "gw-b");
    assert_eq!(call["body"]["scope"]["resources"][0], "calendar");
    assert_eq!(call["body"]["certificate_serial"], enrolled["serial"]);

    // Revocation by another process (the CLI): the very next request is refused.
    let revoked = a.json(&["federation", "grant", "revoke", &grant, "--reason", "e2e"]);
    assert_eq!(revoked["status"], "revoked");
    let refused = b.run(&["federation", "peer", "call", "gw-a", "whoami", "--json"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let body: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(body["status"], 403);
    assert_eq!(body["body"]["error"], "grant_revoked");

    // Each decision is in A's audit log.
    let audit = a.json(&["federation", "grant", "show", &grant])["audit"].clone();
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("enrollment.complete", "succeeded"),
        ("request.authorize", "allowed"),
        ("request.authorize", "denied"),
    ] {
        assert!(
            actions.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {actions:?}"
        );
    }
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn replayed_unknown_and_expired_tokens_are_refused_with_distinct_statuses() {
    let mut a = Gateway::new("gw-a");
    let b = Gateway::new("gw-b");
    a.serve();
    let (_, _, url) = grant_and_token(&a, "gw-b");
    b.ok(&["federation", "peer", "enroll", &url]);

    // The same URL again (stored under another local name so that B itself refuses nothing): A says 409.
    let replay = b.run(&["federation", "peer", "enroll", &url, "--name", "gw-a-again"]);
    assert_eq!(replay.status.code(), Some(1));
    let stderr = text(&replay.stderr);
    assert!(
        stderr.contains("HTTP 409 enrollment_token_used"),
        "{stderr}"
    );

    // A token that was never issued: 401.
    let token = url
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let forged = url.replace(token, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let unknown = b.run(&[
        "federation",
        "peer",
        "enroll",
        &forged,
        "--name",
        "gw-a-forged",
    ]);
    assert!(
        text(&unknown.stderr).contains("HTTP 401 enrollment_token_unknown"),
        "{}",
        text(&unknown.stderr)
    );

    // A token past its TTL: 410.
    let user = mosaic_oid::Uuid::new_v4().to_string();
    let scope = write_scope(a.data());
    let grant = a.json(&[
        "federation",
        "grant",
        "create",
        "--user",
        &user,
        "--peer",
        "gw-c",
        "--scope",
        &scope,
    ]);
    let short = a.json(&[
        "federation",
        "grant",
        "token",
        grant["id"].as_str().unwrap(),
        "--ttl",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let expired = b.run(&[
        "federation",
        "peer",
        "enroll",
        short["enrollment_url"].as_str().unwrap(),
        "--name",
        "gw-a-late",
    ]);
    assert!(
        text(&expired.stderr).contains("HTTP 410 enrollment_token_expired"),
        "{}",
        text(&expired.stderr)
    );

    // None of the refused enrollments left a peer behind on B.
    let peers = b.json(&["federation", "peer", "list"]);
    assert_eq!(peers["peers"].as_array().unwrap().len(), 1, "{peers}");
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn a_client_certificate_from_another_ca_is_refused_during_the_tls_handshake() {
    let mut a = Gateway::new("gw-a");
    let b = Gateway::new("gw-b");
    let base = a.serve();
    let (grant, user, url) = grant_and_token(&a, "gw-b");
    b.ok(&["federation", "peer", "enroll", &url]);

    // A certificate with the very same OIDs (an active grant!) but from a CA the gateway does not trust.
    let rogue = mosaic_ca_client::LocalCa::generate("Rogue").unwrap();
    let issued = rogue
        .issue_now(&mosaic_ca_client::IssueRequest::new(
            grant.as_str(),
            user.as_str(),
            "gw-b",
        ))
        .unwrap();
    let chain = format!("{}{}", issued.cert_pem, issued.chain_pem);
    let outcome = whoami_with(
        &base,
        &a.server_root_pem(),
        &chain,
        issued.key.as_ref().unwrap(),
    );
    let error = outcome.expect_err("the handshake must fail: no HTTP answer for a foreign CA");
    assert!(
        error.to_lowercase().contains("unknown") || error.to_lowercase().contains("certificate"),
        "the failure should be the TLS refusal: {error}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        a.log().contains("TLS handshake refused"),
        "gateway log: {}",
        a.log()
    );

    // Control: the same client code with B's real (step-ca) certificate and key is allowed, so the
    // refusal above was about the CA and nothing else.
    let (id, cert_pem, sealed) = runtime().block_on(async {
        let mut db = sqlx::PgConnection::connect(&b.db.url).await.unwrap();
        sqlx::query_as::<_, (mosaic_oid::Uuid, String, String)>(
            "SELECT id, cert_pem, client_key_pem FROM federation_peers WHERE common_name = 'gw-a'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap()
    });
    let keyring =
        mosaic_seal::Keyring::from_secrets(&b.secret, std::iter::empty::<&str>()).unwrap();
    let key = keyring
        .open(
            &sealed,
            format!("federation_peers/client_key_pem/{id}").as_bytes(),
        )
        .unwrap();
    let (status, body) = whoami_with(
        &base,
        &a.server_root_pem(),
        &cert_pem,
        key.as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["grant_id"], grant.as_str());
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn a_certificate_whose_grant_belongs_to_another_peer_is_refused() {
    let mut a = Gateway::new("gw-a");
    let b = Gateway::new("gw-b");
    let c = Gateway::new("gw-c");
    let base = a.serve();
    let (grant_b, user_b, url_b) = grant_and_token(&a, "gw-b");
    let (grant_c, _, url_c) = grant_and_token(&a, "gw-c");
    b.ok(&["federation", "peer", "enroll", &url_b]);
    c.ok(&["federation", "peer", "enroll", &url_c]);
    assert_eq!(
        c.json(&["federation", "peer", "call", "gw-a", "whoami"])["body"]["grant_id"],
        grant_c.as_str()
    );

    // A certificate from the trusted step-ca, naming B's grant and subject, but held by gw-c: its serial
    // is not the current certificate of the peer the grant belongs to.
    let ca = mosaic_ca_client::StepCaClient::from_env().unwrap();
    let issued = runtime()
        .block_on(ca.issue(&mosaic_ca_client::IssueRequest::new(
            grant_b.as_str(),
            user_b.as_str(),
            "gw-c",
        )))
        .unwrap();
    let chain = format!("{}{}", issued.cert_pem, issued.chain_pem);
    let (status, body) = whoami_with(
        &base,
        &a.server_root_pem(),
        &chain,
        issued.key.as_ref().unwrap(),
    )
    .unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "serial_mismatch");

    // B's own certificate is still allowed under the same grant.
    assert_eq!(
        b.json(&["federation", "peer", "call", "gw-a", "whoami"])["body"]["grant_id"],
        grant_b.as_str()
    );
    // And the refusal is audited on the grant.
    let audit = a.json(&["federation", "grant", "show", &grant_b])["audit"].clone();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["outcome"] == "denied" && e["detail"]["reason"] == "serial_mismatch"),
        "{audit}"
    );
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn the_demo_runs_its_six_steps_on_the_federated_tier() {
    for var in STACK_VARS {
        env(var);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["demo", "--tier", "federated"])
        .current_dir(dir.path())
        .env_remove("MOSAIC_CONFIG")
        .env_remove("BETTER_AUTH_SECRET")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("federated tier (PostgreSQL, Valkey and step-ca)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("from step-ca at {}", env("STEP_CA_URL"))),
        "{stdout}"
    );
    for step in 1..=6 {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("[{step}/6]")))
            .unwrap();
        assert!(line.ends_with('✓'), "{line}");
    }
    assert!(stdout.contains("All 6 steps behaved as expected."));
}
