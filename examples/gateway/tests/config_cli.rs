//! Configuration through the real `mosaic` binary: where the file comes from, what overrides it, and the
//! errors (exit 2) for a bad file or tier. No server is contacted: the tiers used here either check
//! nothing or point at a closed loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

/// Runs `mosaic <args>` in `cwd` with exactly the variables `vars` (nothing inherited but PATH).
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

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn without_configuration_the_tier_is_local_and_its_embedded_parts_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vars = [("MOSAIC_DATA_DIR", data.to_str().unwrap())];
    let out = mosaic(dir.path(), &["gateway", "doctor"], &vars);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("Tier: local  Config: (none)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("✓ sqlite") && stdout.contains("created and migrated"),
        "{stdout}"
    );
    assert!(stdout.contains("✓ local-ca"), "{stdout}");
    assert!(data.join("mosaic.sqlite3").exists());
    let out = mosaic(dir.path(), &["gateway", "doctor", "--json"], &vars);
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    assert_eq!(report["tier"], "local");
    assert_eq!(report["config"], serde_json::Value::Null);
    assert_eq!(report["ok"], true);
    assert_eq!(report["checks"][0]["name"], "sqlite");
    assert_eq!(report["checks"][0]["detail"], "opened and migrated");
    assert_eq!(report["checks"][1]["name"], "local-ca");

    // No data directory at all (no MOSAIC_DATA_DIR, no HOME): a cross that says what to set.
    let out = mosaic(dir.path(), &["gateway", "doctor", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["checks"][0]["ok"], false);
    assert!(
        report["checks"][0]["remediation"]
            .as_str()
            .unwrap()
            .contains("MOSAIC_DATA_DIR"),
        "{report}"
    );
}

#[test]
fn the_file_in_the_working_directory_is_used_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let file = format!(
        r#"{{"tier": "standalone", "database": "postgresql://mosaic:mosaic@127.0.0.1:{port}/mosaic"}}"#
    );
    std::fs::write(dir.path().join("mosaic.config.json"), file).unwrap();
    let out = mosaic(dir.path(), &["gateway", "doctor", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report = json(&out);
    assert_eq!(report["tier"], "standalone");
    assert_eq!(report["config"], "mosaic.config.json");
    assert_eq!(report["checks"][0]["target"], format!("127.0.0.1:{port}"));
}

#[test]
fn the_environment_overrides_the_file_and_flag_beats_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (file_port, env_port) = (closed_port(), closed_port());
    let cwd_file = format!(
        r#"{{"tier": "federated", "database": "postgresql://m:m@127.0.0.1:{file_port}/m"}}"#
    );
    std::fs::write(dir.path().join("mosaic.config.json"), cwd_file).unwrap();
    std::fs::write(dir.path().join("by-variable.json"), r#"{"tier": "local"}"#).unwrap();
    std::fs::write(dir.path().join("by-flag.json"), r#"{"tier": "standalone"}"#).unwrap();

    // MOSAIC_TIER beats the file's tier; DATABASE_URL beats the file's database.
    let env_url = format!("postgresql://m:m@127.0.0.1:{env_port}/m");
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor", "--json"],
        &[
            ("MOSAIC_TIER", "standalone"),
            ("DATABASE_URL", env_url.as_str()),
        ],
    );
    let report = json(&out);
    assert_eq!(report["tier"], "standalone");
    assert_eq!(report["checks"].as_array().unwrap().len(), 1);
    assert_eq!(
        report["checks"][0]["target"],
        format!("127.0.0.1:{env_port}")
    );

    // MOSAIC_CONFIG beats the working directory's file; --config beats MOSAIC_CONFIG.
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor", "--json"],
        &[("MOSAIC_CONFIG", "by-variable.json")],
    );
    assert_eq!(json(&out)["config"], "by-variable.json");
    assert_eq!(json(&out)["tier"], "local");
    let out = mosaic(
        dir.path(),
        &["--config", "by-flag.json", "gateway", "doctor", "--json"],
        &[("MOSAIC_CONFIG", "by-variable.json")],
    );
    let report = json(&out);
    assert_eq!(report["config"], "by-flag.json");
    assert_eq!(report["tier"], "standalone");
    // by-flag.json names no database and none is in the environment: the check says how to set it.
    assert_eq!(report["checks"][0]["error"], "DATABASE_URL is not set");
    assert!(
        report["checks"][0]["remediation"]
            .as_str()
            .unwrap()
            .contains("\"database\" in by-flag.json")
    );
}

#[test]
fn an_unknown_field_exits_2_and_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mosaic.config.json"),
        "{\n  \"tier\": \"local\",\n  \"queeu\": \"redis://x\"\n}\n",
    )
    .unwrap();
    for args in [
        &["gateway", "doctor"][..],
        &["gateway", "doctor", "--json"][..],
    ] {
        let out = mosaic(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(2));
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("mosaic.config.json:3:"), "{stderr}");
        assert!(stderr.contains("unknown field `queeu`"), "{stderr}");
        assert!(stderr.contains("fix:"), "{stderr}");
    }
}

#[test]
fn malformed_json_exits_2_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"tier\": \"federated\",,}",
    )
    .unwrap();
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor", "--config", "broken.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.json:1:22: malformed JSON: key must be a string"),
        "{stderr}"
    );
}

#[test]
fn a_missing_file_or_unknown_tier_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor"],
        &[("MOSAIC_CONFIG", "missing.json")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.json does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor"],
        &[("MOSAIC_TIER", "galactic")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("MOSAIC_TIER is \"galactic\""),
        "{}",
        text(&out.stderr)
    );
    let out = mosaic(dir.path(), &["gateway", "doctor", "--timeout", "zero"], &[]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

#[test]
fn a_malformed_url_exits_2_without_showing_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = mosaic(
        dir.path(),
        &["gateway", "doctor"],
        &[
            ("MOSAIC_TIER", "standalone"),
            ("DATABASE_URL", "postgresql//mosaic:Url-s3cret@localhost"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("DATABASE_URL is invalid"), "{stderr}");
    assert!(
        !stderr.contains("Url-s3cret") && !text(&out.stdout).contains("Url-s3cret"),
        "{stderr}"
    );
}
