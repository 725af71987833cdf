//! `mosaic demo` on the local tier: nothing installed, no configuration, no secret; it must exit 0 with
//! its six steps done. Runs in every `cargo test` (no stack needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn demo(cwd: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .arg("demo")
        .args(args)
        .current_dir(cwd)
        // A fresh machine: none of the stack's or the operator's settings.
        .env_remove("MOSAIC_CONFIG")
        .env_remove("MOSAIC_TIER")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("BETTER_AUTH_SECRET")
        .env_remove("MOSAIC_DATA_DIR")
        .env_remove("MOSAIC_PUBLIC_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_demo_runs_all_six_steps_on_the_local_tier_with_nothing_installed() {
    let cwd = tempfile::tempdir().unwrap();
    let out = demo(cwd.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        stdout.contains("local tier (SQLite and LocalCa"),
        "{stdout}"
    );
    assert!(
        stdout.contains("BETTER_AUTH_SECRET is not set: using an ephemeral random secret"),
        "{stdout}"
    );
    for (step, what) in [
        (1, "creates a grant"),
        (2, "issues an enrollment token"),
        (3, "enrolls"),
        (4, "whoami over mutual TLS"),
        (5, "revokes the grant"),
        (6, "same request again"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("[{step}/6]")))
            .unwrap_or_else(|| panic!("step {step} missing:\n{stdout}"));
        assert!(
            line.contains(what) && line.ends_with('✓'),
            "step {step}: {line}"
        );
    }
    assert!(stdout.contains("HTTP 200: allowed under grant"), "{stdout}");
    assert!(stdout.contains("HTTP 403 grant_revoked"), "{stdout}");
    assert!(
        stdout.contains("All 6 steps behaved as expected."),
        "{stdout}"
    );
    // The secret token is never printed.
    assert!(stdout.contains("#token=<token>&"), "{stdout}");
}

#[test]
fn the_demo_keeps_its_data_with_dir_and_refuses_to_reuse_it() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("kept");
    let first = demo(cwd.path(), &["--dir", dir.to_str().unwrap()]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    for file in [
        "gateway-a/mosaic.sqlite3",
        "gateway-a/local-ca/intermediate-key.sealed",
        "gateway-a/server-ca/root-key.sealed",
        "gateway-b/mosaic.sqlite3",
    ] {
        assert!(dir.join(file).exists(), "{file} missing");
    }
    let sealed =
        std::fs::read_to_string(dir.join("gateway-a/local-ca/intermediate-key.sealed")).unwrap();
    assert!(!sealed.contains("PRIVATE KEY"), "keys are stored sealed");
    let second = demo(cwd.path(), &["--dir", dir.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already holds a demo"));
}
