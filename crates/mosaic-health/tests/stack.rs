//! The probes against the real native stack (`infra/native/up`; settings from `eval "$(infra/native/env)"`).
//! Every test fails, never passes, when a server or a variable is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use mosaic_health::{
    CheckResult, HealthReport, PgvectorProbe, PostgresProbe, Probe, ServerUrl, StepCaProbe,
    ValkeyProbe, run_probe,
};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

mod common;
use common::assert_failed;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with infra/native/up and run eval \"$(infra/native/env)\"")
    })
}

fn database_url() -> ServerUrl {
    ServerUrl::parse("DATABASE_URL", &env("DATABASE_URL")).unwrap()
}

/// The stack's URL with another user, password or database.
fn database_url_with(user: &str, password: &str, database: &str) -> ServerUrl {
    let mut url = url::Url::parse(&env("DATABASE_URL")).unwrap();
    url.set_username(user).unwrap();
    url.set_password(Some(password)).unwrap();
    url.set_path(database);
    ServerUrl::parse("DATABASE_URL", url.as_str()).unwrap()
}

async fn admin() -> PgConnection {
    PgConnection::connect(&env("DATABASE_URL"))
        .await
        .expect("cannot connect to the stack's PostgreSQL as mosaic")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .unwrap()
            .as_nanos()
    )
}

fn root_path() -> PathBuf {
    PathBuf::from(env("STEP_CA_ROOT_CERT_PATH"))
}

/// The root's fingerprint as openssl prints it (`AB:CD:...`), an outside check of ours.
fn openssl_fingerprint(path: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(path)
        .output()
        .expect("openssl is needed");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit('=').next().unwrap().to_owned()
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn every_server_of_the_stack_is_green() {
    let database = database_url();
    let postgres = PostgresProbe::new(&database).unwrap();
    let valkey =
        ValkeyProbe::new(&ServerUrl::parse("REDIS_URL", &env("REDIS_URL")).unwrap()).unwrap();
    let pgvector = PgvectorProbe::new(&database).unwrap();
    let root = root_path();
    let step_ca = StepCaProbe::new(&env("STEP_CA_URL"), &root)
        .unwrap()
        .with_fingerprint(&openssl_fingerprint(&root))
        .unwrap();
    let probes: [&dyn Probe; 4] = [&postgres, &valkey, &pgvector, &step_ca];
    let report = HealthReport::run("federated", None, &probes).await;

    assert!(report.ok(), "{}", report.to_human(false));
    let details: Vec<_> = report
        .checks()
        .iter()
        .map(|c| c.detail().unwrap_or_default().to_owned())
        .collect();
    assert!(details[0].starts_with("PostgreSQL 17"), "{details:?}");
    assert!(details[1].starts_with("Valkey 8"), "{details:?}");
    assert!(details[2].starts_with("pgvector 0."), "{details:?}");
    let fingerprint = openssl_fingerprint(&root)
        .replace(':', "")
        .to_ascii_lowercase();
    assert_eq!(details[3], format!("root SHA-256 {fingerprint}"));
    let targets: Vec<_> = report.checks().iter().map(CheckResult::target).collect();
    assert_eq!(targets[2], "(embedded)");
    // The ports the stack was started on (5433 and 6380 unless PG_FEDERATED_HOST_PORT or
    // VALKEY_FEDERATED_HOST_PORT moved them), read from the URLs the tests were given.
    let port_of = |name: &str| {
        let url = env(name);
        let after_scheme = url.split("://").nth(1).unwrap_or(&url).to_string();
        let host_port = after_scheme.split('/').next().unwrap_or_default();
        let host_port = host_port.rsplit('@').next().unwrap_or_default();
        format!(":{}", host_port.rsplit(':').next().unwrap_or_default())
    };
    assert!(
        targets[0].ends_with(&port_of("DATABASE_URL"))
            && targets[1].ends_with(&port_of("REDIS_URL")),
        "{targets:?}"
    );
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_database_without_vector_is_not_installed_and_says_how_to_fix_it() {
    let database = unique("mosaic_health_novector");
    let mut admin = admin().await;
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {database}"
        ))))
        .await
        .unwrap();

    let result =
        run_probe(&PgvectorProbe::new(&database_url_with("mosaic", "mosaic", &database)).unwrap())
            .await;
    let available = admin
        .fetch_one("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        .await
        .map(|row| sqlx::Row::get::<String, _>(&row, 0));
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE {database}"
        ))))
        .await
        .unwrap();

    assert_failed(&result, "PGVECTOR_NOT_INSTALLED");
    let error = result.error().unwrap();
    assert!(
        error.contains(&format!("not installed in database \"{database}\"")),
        "{error}"
    );
    assert!(
        error.contains(&format!("offers version {}", available.unwrap())),
        "{error}"
    );
    assert!(
        result
            .remediation()
            .unwrap()
            .contains("CREATE EXTENSION vector")
    );
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_role_that_may_not_read_the_catalog_gets_permission_denied() {
    let database = unique("mosaic_health_noperm");
    let role = unique("mosaic_health_reader");
    let password = "reader-pw-5d1c";
    let mut admin = admin().await;
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {database}"
        ))))
        .await
        .unwrap();
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}'"
        ))))
        .await
        .unwrap();
    let restricted_url = database_url_with("mosaic", "mosaic", &database);
    let mut in_database = PgConnection::connect(restricted_url.expose_secret())
        .await
        .unwrap();
    in_database
        .execute("REVOKE SELECT ON pg_catalog.pg_extension FROM PUBLIC")
        .await
        .unwrap();
    in_database.close().await.unwrap();

    let result =
        run_probe(&PgvectorProbe::new(&database_url_with(&role, password, &database)).unwrap())
            .await;
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE {database}"
        ))))
        .await
        .unwrap();
    admin
        .execute(sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE {role}"))))
        .await
        .unwrap();

    assert_failed(&result, "PGVECTOR_PERMISSION_DENIED");
    assert!(result.error().unwrap().contains(&role), "{result:?}");
    assert!(
        result
            .remediation()
            .unwrap()
            .contains("GRANT SELECT ON pg_catalog.pg_extension"),
        "{result:?}"
    );
    assert!(!format!("{result:?}").contains(password));
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_wrong_password_is_an_auth_failure_that_never_shows_the_password() {
    let password = "Wr0ng-pg-Passw0rd";
    let url = database_url_with("mosaic", password, "mosaic");
    for result in [
        run_probe(&PostgresProbe::new(&url).unwrap()).await,
        run_probe(&PgvectorProbe::new(&url).unwrap()).await,
    ] {
        assert_failed(&result, "PG_AUTH");
        assert!(
            result.remediation().unwrap().contains("password"),
            "{result:?}"
        );
        let shown = format!("{result:?} {}", serde_json::to_string(&result).unwrap());
        assert!(!shown.contains(password), "{shown}");
    }
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_missing_database_is_named() {
    let database = unique("mosaic_health_missing");
    let result =
        run_probe(&PostgresProbe::new(&database_url_with("mosaic", "mosaic", &database)).unwrap())
            .await;
    assert_failed(&result, "PG_DATABASE_MISSING");
    assert!(result.error().unwrap().contains(&database), "{result:?}");
    assert!(
        result.remediation().unwrap().contains("CREATE DATABASE"),
        "{result:?}"
    );
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_valkey_failure_with_a_password_in_the_url_never_shows_it() {
    // The stack's Valkey has no password, so AUTH with one is not what fails here; selecting a database
    // that does not exist is, with the password still in the URL the driver was given.
    let mut url = url::Url::parse(&env("REDIS_URL")).unwrap();
    url.set_password(Some("Wr0ng-vk-Passw0rd")).unwrap();
    url.set_path("/99");
    let probe = ValkeyProbe::new(&ServerUrl::parse("REDIS_URL", url.as_str()).unwrap()).unwrap();
    let result = run_probe(&probe).await;
    assert_failed(&result, "VALKEY_ERROR");
    assert!(
        result.error().unwrap().contains("DB index is out of range"),
        "{result:?}"
    );
    let shown = format!("{result:?} {}", serde_json::to_string(&result).unwrap());
    assert!(!shown.contains("Wr0ng-vk-Passw0rd"), "{shown}");
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn step_ca_failures_each_have_their_code() {
    let url = env("STEP_CA_URL");
    let root = root_path();

    // A pin that is not this root's.
    let wrong_pin = "00".repeat(32);
    let result = run_probe(
        &StepCaProbe::new(&url, &root)
            .unwrap()
            .with_fingerprint(&wrong_pin)
            .unwrap(),
    )
    .await;
    assert_failed(&result, "CA_FINGERPRINT_MISMATCH");
    assert!(result.error().unwrap().contains(&wrong_pin), "{result:?}");

    // Another CA's root: the CA's certificate does not chain to it.
    let other = tempfile::tempdir().unwrap();
    let other_root = common::throwaway_root(other.path(), "Another CA Root");
    let result = run_probe(&StepCaProbe::new(&url, &other_root).unwrap()).await;
    assert_failed(&result, "CA_TLS");
    assert!(
        result
            .remediation()
            .unwrap()
            .contains(&other_root.display().to_string()),
        "{result:?}"
    );

    // The same CA on a port where nothing listens (a stopped CA, as a client sees it).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let result = run_probe(
        &StepCaProbe::new(&format!("https://localhost:{closed}"), &root)
            .unwrap()
            .with_timeout(Duration::from_secs(3)),
    )
    .await;
    assert_failed(&result, "CA_UNREACHABLE");
    assert!(result.latency() < Duration::from_secs(3), "{result:?}");

    // A file that is no certificate.
    let junk = other.path().join("junk.crt");
    std::fs::write(&junk, "not a certificate").unwrap();
    let result = run_probe(&StepCaProbe::new(&url, &junk).unwrap()).await;
    assert_failed(&result, "CA_ROOT_FILE");
}
