//! `mosaic gateway doctor` against real loopback faults, through the real binary: a closed port, a
//! listener that never answers, a password in the URLs, and concurrent checks. No server stack is needed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Read as _,
    net::TcpListener,
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

const PG_PASSWORD: &str = "Pg-Fault-S3cret";
const VALKEY_PASSWORD: &str = "Vk-Fault-S3cret";

fn mosaic(cwd: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    command.current_dir(cwd).args(args).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command.envs(vars.iter().copied());
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Accepts every connection, reads what it is sent, never answers.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0_u8; 1024];
                while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    port
}

/// A throwaway root certificate, so the step-ca check gets as far as the network.
fn throwaway_root(dir: &Path) -> String {
    let path = dir.join("root.crt");
    let root = mosaic_ca_client::ServerCa::generate("doctor fault test root").unwrap();
    std::fs::write(&path, root.root_pem().unwrap()).unwrap();
    path.display().to_string()
}

/// Federated settings with every server at `port` and passwords in both URLs.
fn federated_at(port: u16, root: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MOSAIC_TIER", "federated".to_owned()),
        (
            "DATABASE_URL",
            format!("postgresql://mosaic:{PG_PASSWORD}@127.0.0.1:{port}/mosaic"),
        ),
        (
            "REDIS_URL",
            format!("redis://default:{VALKEY_PASSWORD}@127.0.0.1:{port}"),
        ),
        ("STEP_CA_URL", format!("https://127.0.0.1:{port}")),
        ("STEP_CA_ROOT_CERT_PATH", root.to_owned()),
    ]
}

fn doctor(cwd: &Path, extra: &[&str], vars: &[(&'static str, String)]) -> Output {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec!["gateway", "doctor"];
    args.extend_from_slice(extra);
    mosaic(cwd, &args, &vars)
}

fn assert_no_password(output: &Output) {
    for shown in [text(&output.stdout), text(&output.stderr)] {
        assert!(
            !shown.contains(PG_PASSWORD) && !shown.contains(VALKEY_PASSWORD),
            "{shown}"
        );
    }
}

#[test]
fn a_closed_port_gives_a_cross_and_a_remediation_for_every_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let vars = federated_at(port, &throwaway_root(dir.path()));

    let out = doctor(dir.path(), &[], &vars);
    assert_eq!(out.status.code(), Some(1));
    assert_no_password(&out);
    let human = text(&out.stdout);
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines[0], "Tier: federated  Config: (none)");
    let target = format!("127.0.0.1:{port}");
    for (i, (name, fix)) in [
        ("postgres", "start PostgreSQL"),
        ("valkey  ", "start Valkey"),
        ("pgvector", "start PostgreSQL"),
        ("step-ca ", "start step-ca"),
    ]
    .iter()
    .enumerate()
    {
        let check = lines[1 + 2 * i];
        let remediation = lines[2 + 2 * i];
        let expected_target = if name.trim() == "pgvector" {
            "(embedded)"
        } else {
            target.as_str()
        };
        assert!(
            check.starts_with(&format!("✗ {name}  {expected_target}  (")),
            "{check}"
        );
        assert!(check.contains("cannot connect"), "{check}");
        assert!(
            remediation.starts_with("    fix: ") && remediation.contains(fix),
            "{remediation}"
        );
    }
    assert!(
        !human.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let out = doctor(dir.path(), &["--json"], &vars);
    assert_eq!(out.status.code(), Some(1));
    assert_no_password(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    for check in report["checks"].as_array().unwrap() {
        assert_eq!(check["ok"], false);
        assert!(
            check["remediation"].as_str().is_some_and(|r| !r.is_empty()),
            "{check}"
        );
        assert_eq!(check["detail"], serde_json::Value::Null);
    }
}

#[test]
fn a_listener_that_never_answers_fails_at_the_timeout_and_checks_run_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let port = silent_listener();
    let vars = federated_at(port, &throwaway_root(dir.path()));

    // Four checks that each wait out a 2 s timeout: about 2 s together, 8 s one after the other.
    let started = Instant::now();
    let out = doctor(dir.path(), &["--json", "--timeout", "2"], &vars);
    let wall = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_no_password(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 4);
    let mut slowest = 0;
    for check in checks {
        assert_eq!(check["ok"], false, "{check}");
        let error = check["error"].as_str().unwrap();
        assert!(error.contains("within 2s"), "{check}");
        assert!(
            check["remediation"]
                .as_str()
                .unwrap()
                .contains("did not answer"),
            "{check}"
        );
        let latency = check["latency_ms"].as_u64().unwrap();
        assert!((2000..6000).contains(&latency), "{check}");
        slowest = slowest.max(latency);
    }
    // The process also starts and prints; the margin is wide on purpose.
    assert!(
        wall < Duration::from_millis(slowest) * 8 / 5,
        "{wall:?} vs slowest {slowest} ms"
    );

    let out = doctor(dir.path(), &["--timeout", "1"], &vars);
    assert_eq!(out.status.code(), Some(1));
    assert_no_password(&out);
    let human = text(&out.stdout);
    assert!(human.contains("✗ postgres  "), "{human}");
    assert!(
        human.contains("no answer from postgres within 1s"),
        "{human}"
    );
}

#[test]
fn the_federated_tier_without_step_ca_settings_says_how_to_set_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let mut vars = federated_at(port, "unused");
    vars.retain(|(k, _)| !k.starts_with("STEP_CA_"));
    let out = doctor(dir.path(), &[], &vars);
    assert_eq!(out.status.code(), Some(1));
    let human = text(&out.stdout);
    let line = human
        .lines()
        .position(|l| l.starts_with("✗ step-ca "))
        .unwrap();
    let lines: Vec<&str> = human.lines().collect();
    assert!(
        lines[line].contains("(not configured)") && lines[line].contains("STEP_CA_URL is not set"),
        "{human}"
    );
    assert!(
        lines[line + 1].contains("export STEP_CA_URL=https://localhost:9000"),
        "{human}"
    );
}

#[test]
fn the_standalone_tier_checks_postgres_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let out = doctor(
        dir.path(),
        &["--json"],
        &federated_at(port, "unused")[1..]
            .iter()
            .cloned()
            .chain([("MOSAIC_TIER", "standalone".to_owned())])
            .collect::<Vec<_>>(),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgres"]);
}
