//! `mosaic gateway doctor` through the real binary against the real native stack (`infra/native/up`,
//! settings from `eval "$(infra/native/env)"`). Each test fails, never passes, when the stack or a
//! variable is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

/// `host:port` of the stack's step-ca, as the doctor prints it (the port follows `STEP_CA_HOST_PORT`).
fn step_ca_target() -> String {
    env("STEP_CA_URL")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with infra/native/up and run eval \"$(infra/native/env)\"")
    })
}

/// Runs `mosaic gateway doctor <extra>` in `cwd` with exactly `vars` (nothing inherited but PATH).
fn doctor(cwd: &Path, extra: &[&str], vars: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    command
        .current_dir(cwd)
        .args(["gateway", "doctor"])
        .args(extra)
        .env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(vars.iter().map(|(k, v)| (*k, v.as_str())));
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn step_ca_vars() -> Vec<(&'static str, String)> {
    vec![
        ("STEP_CA_URL", env("STEP_CA_URL")),
        ("STEP_CA_ROOT_CERT_PATH", env("STEP_CA_ROOT_CERT_PATH")),
    ]
}

/// The stack's URL with another password and/or database.
fn database_url_with(password: &str, database: &str) -> String {
    let url = env("DATABASE_URL");
    let (scheme_user, rest) = url.split_once("://").unwrap();
    let (userinfo, host_path) = rest.split_once('@').unwrap();
    let user = userinfo.split(':').next().unwrap();
    let host = host_path.split('/').next().unwrap();
    format!("{scheme_user}://{user}:{password}@{host}/{database}")
}

/// Runs SQL as the stack's superuser with Debian's psql (which `infra/native/up` installs).
fn psql(sql: &str) {
    let status = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            &env("DATABASE_URL"),
            "-c",
            sql,
        ])
        .status()
        .expect("psql is needed (infra/native/up installs it)");
    assert!(status.success(), "psql failed: {sql}");
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn the_native_stack_is_all_green_as_the_guide_shows() {
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"tier": "federated", "database": env("DATABASE_URL"), "queue": env("REDIS_URL")});
    std::fs::write(dir.path().join("mosaic.config.json"), config.to_string()).unwrap();

    let out = doctor(dir.path(), &[], &step_ca_vars());
    let human = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{human}{}", text(&out.stderr));
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 5, "{human}");
    assert_eq!(lines[0], "Tier: federated  Config: mosaic.config.json");
    assert!(
        lines[1].starts_with("✓ postgres  localhost:5433  ("),
        "{human}"
    );
    assert!(lines[1].contains("ms)  PostgreSQL 17"), "{human}");
    assert!(
        lines[2].starts_with("✓ valkey    localhost:6380  ("),
        "{human}"
    );
    assert!(lines[2].contains("ms)  Valkey 8"), "{human}");
    assert!(lines[3].starts_with("✓ pgvector  (embedded)  ("), "{human}");
    assert!(lines[3].contains("ms)  pgvector 0."), "{human}");
    assert!(
        lines[4].starts_with(&format!("✓ step-ca   {}  (", step_ca_target())),
        "{human}"
    );
    assert!(lines[4].contains("ms)  root SHA-256 "), "{human}");

    let out = doctor(dir.path(), &["--json"], &step_ca_vars());
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["tier"], "federated");
    assert_eq!(report["config"], "mosaic.config.json");
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["ok"], true, "{check}");
        assert!(check["latency_ms"].is_u64(), "{check}");
        assert!(check["detail"].is_string(), "{check}");
        assert!(
            check["error"].is_null() && check["remediation"].is_null(),
            "{check}"
        );
    }
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn a_database_without_vector_is_reported_as_not_installed() {
    let database = format!("mosaic_doctor_novector_{}", std::process::id());
    psql(&format!("DROP DATABASE IF EXISTS {database}"));
    psql(&format!("CREATE DATABASE {database}"));
    let dir = tempfile::tempdir().unwrap();
    let mut vars = step_ca_vars();
    vars.extend([
        ("MOSAIC_TIER", "federated".to_owned()),
        ("DATABASE_URL", database_url_with("mosaic", &database)),
        ("REDIS_URL", env("REDIS_URL")),
    ]);
    let human_out = doctor(dir.path(), &[], &vars);
    let json_out = doctor(dir.path(), &["--json"], &vars);
    psql(&format!("DROP DATABASE {database}"));

    assert_eq!(human_out.status.code(), Some(1));
    let human = text(&human_out.stdout);
    let lines: Vec<&str> = human.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("✗ pgvector  (embedded)  ("))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        lines[at].contains(&format!("not installed in database \"{database}\"")),
        "{human}"
    );
    assert!(
        lines[at + 1].starts_with("    fix: run `CREATE EXTENSION vector;`"),
        "{human}"
    );
    assert!(lines.iter().any(|l| l.starts_with("✓ postgres")), "{human}");

    let report: serde_json::Value = serde_json::from_slice(&json_out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let pgvector = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pgvector")
        .unwrap();
    assert_eq!(pgvector["ok"], false);
    assert!(
        pgvector["remediation"]
            .as_str()
            .unwrap()
            .contains("CREATE EXTENSION vector"),
        "{pgvector}"
    );
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn a_password_in_database_url_never_shows() {
    let password = "Doctor-Wr0ng-Passw0rd";
    let dir = tempfile::tempdir().unwrap();
    let mut vars = step_ca_vars();
    vars.extend([
        ("MOSAIC_TIER", "federated".to_owned()),
        ("DATABASE_URL", database_url_with(password, "mosaic")),
        ("REDIS_URL", env("REDIS_URL")),
    ]);
    for extra in [&[][..], &["--json"][..]] {
        let out = doctor(dir.path(), extra, &vars);
        assert_eq!(out.status.code(), Some(1));
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(shown.contains("refused the login"), "{shown}");
        assert!(!shown.contains(password), "{shown}");
    }
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn step_ca_with_a_wrong_root_or_a_stopped_port_is_a_cross() {
    let dir = tempfile::tempdir().unwrap();
    let other_root = dir.path().join("other-root.crt");
    let other = mosaic_ca_client::ServerCa::generate("Another CA Root").unwrap();
    std::fs::write(&other_root, other.root_pem().unwrap()).unwrap();
    let base = vec![
        ("MOSAIC_TIER", "federated".to_owned()),
        ("DATABASE_URL", env("DATABASE_URL")),
        ("REDIS_URL", env("REDIS_URL")),
    ];

    let mut vars = base.clone();
    vars.extend([
        ("STEP_CA_URL", env("STEP_CA_URL")),
        ("STEP_CA_ROOT_CERT_PATH", other_root.display().to_string()),
    ]);
    let out = doctor(dir.path(), &[], &vars);
    assert_eq!(out.status.code(), Some(1));
    let human = text(&out.stdout);
    let lines: Vec<&str> = human.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("✗ step-ca "))
        .unwrap_or_else(|| panic!("{human}"));
    assert!(
        lines[at].contains(&format!("TLS to step-ca at {} failed", step_ca_target())),
        "{human}"
    );
    assert!(lines[at + 1].contains("does not chain to"), "{human}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with('✓')).count(),
        3,
        "{human}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut vars = base;
    vars.extend([
        ("STEP_CA_URL", format!("https://localhost:{closed}")),
        ("STEP_CA_ROOT_CERT_PATH", env("STEP_CA_ROOT_CERT_PATH")),
    ]);
    let out = doctor(dir.path(), &[], &vars);
    assert_eq!(out.status.code(), Some(1));
    let human = text(&out.stdout);
    assert!(
        human.contains(&format!("cannot connect to step-ca at localhost:{closed}")),
        "{human}"
    );
    assert!(human.contains("fix: start step-ca"), "{human}");
}
