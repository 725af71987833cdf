//! `mosaic ca issue` against the real step-ca of the native stack.
//!
//! Needs `eval "$(infra/native/env)"` (STEP_CA_*); fails, never passes, without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Output},
};

const NEEDS_STACK: &str = "needs the federated stack: run infra/test";
/// A test sealing secret (32+ bytes).
const SECRET: &str = "ca-issue-test-secret-0123456789abcdef";

fn require_stack() {
    for name in [
        "STEP_CA_URL",
        "STEP_CA_PROVISIONER_KEY_JSON",
        "STEP_CA_PROVISIONER_PASSWORD",
        "STEP_CA_ROOT_CERT_PATH",
    ] {
        assert!(
            std::env::var_os(name).is_some(),
            "{name} is not set: start the stack with infra/native/up and eval \"$(infra/native/env)\" ({NEEDS_STACK})"
        );
    }
}

fn mosaic(args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    cmd.args(args);
    for (name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn uuid() -> String {
    mosaic_oid::Uuid::new_v4().to_string()
}

fn issue(out: &Path, grant: &str, user: &str, env: &[(&str, Option<&str>)]) -> Output {
    mosaic(
        &[
            "ca",
            "issue",
            "--grant-id",
            grant,
            "--subject-user-id",
            user,
            "--name",
            "cli-peer.mosaic.test",
            "--out",
            out.to_str().unwrap(),
        ],
        env,
    )
}

#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn issues_verifies_and_writes_a_sealed_key() {
    require_stack();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("peer");
    let (grant, user) = (uuid(), uuid());
    let result = issue(&out, &grant, &user, &[("BETTER_AUTH_SECRET", Some(SECRET))]);
    assert!(
        result.status.success(),
        "stdout: {}\nstderr: {}",
        text(&result.stdout),
        text(&result.stderr)
    );
    let stdout = text(&result.stdout);
    assert!(
        stdout.contains(&grant) && stdout.contains(&user),
        "{stdout}"
    );

    // The certificate verifies with openssl against the CA's root.
    let root = std::env::var("STEP_CA_ROOT_CERT_PATH").unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &root, "-untrusted"])
        .arg(out.join("chain.pem"))
        .arg(out.join("cert.pem"))
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify.stdout));

    // The key is only on disk sealed, private, and opens (with the printed associated data) to the
    // certificate's key.
    let sealed = std::fs::read_to_string(out.join("key.sealed")).unwrap();
    assert!(!sealed.contains("PRIVATE KEY"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("key.sealed"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "key.sealed must not be readable by others: {mode:o}"
        );
    }
    let aad = stdout
        .split("--aad ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let open = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["seal", "open", "--aad", &aad])
        .env("BETTER_AUTH_SECRET", SECRET)
        .stdin(std::fs::File::open(out.join("key.sealed")).unwrap())
        .output()
        .unwrap();
    assert!(open.status.success(), "{}", text(&open.stderr));
    let key_pem = text(&open.stdout);
    assert!(
        key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "not a PKCS#8 key"
    );
    let key_file = dir.path().join("key.pem");
    std::fs::write(&key_file, &key_pem).unwrap();
    let pubkey = |args: &[&str]| text(&Command::new("openssl").args(args).output().unwrap().stdout);
    assert_eq!(
        pubkey(&["pkey", "-in", key_file.to_str().unwrap(), "-pubout"]),
        pubkey(&[
            "x509",
            "-in",
            out.join("cert.pem").to_str().unwrap(),
            "-noout",
            "-pubkey"
        ]),
    );

    // A second run into the same directory overwrites nothing.
    let before = std::fs::read(out.join("cert.pem")).unwrap();
    let again = issue(&out, &grant, &user, &[("BETTER_AUTH_SECRET", Some(SECRET))]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("error[OUTPUT_EXISTS]"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read(out.join("cert.pem")).unwrap(), before);
}

/// Each failure exits 1 with its code and a remediation, and writes nothing.
#[test]
#[ignore = "needs the federated stack: run infra/test"]
fn failures_exit_1_with_code_and_remediation_and_write_nothing() {
    require_stack();
    let dir = tempfile::tempdir().unwrap();
    // (what is wrong, grant id, subject user id, extra environment)
    #[allow(clippy::type_complexity)]
    let cases: [(&str, String, String, Vec<(&str, Option<&str>)>); 4] = [
        (
            "INVALID_GRANT_ID",
            "not-a-uuid".into(),
            uuid(),
            vec![("BETTER_AUTH_SECRET", Some(SECRET))],
        ),
        (
            "INVALID_SUBJECT_USER_ID",
            uuid(),
            "42".into(),
            vec![("BETTER_AUTH_SECRET", Some(SECRET))],
        ),
        (
            "SEAL_SECRET",
            uuid(),
            uuid(),
            vec![("BETTER_AUTH_SECRET", None)],
        ),
        (
            "KEY_DECRYPT",
            uuid(),
            uuid(),
            vec![
                ("BETTER_AUTH_SECRET", Some(SECRET)),
                ("STEP_CA_PROVISIONER_PASSWORD", Some("wrong-password-1234")),
            ],
        ),
    ];
    for (i, (code, grant, user, env)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("case-{i}"));
        let result = issue(&out, grant, user, env);
        let stderr = text(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{code}: {stderr}");
        assert!(
            stderr.contains(&format!("error[{code}]")),
            "{code}: {stderr}"
        );
        assert!(stderr.contains("to fix: "), "{code}: {stderr}");
        assert!(text(&result.stdout).is_empty(), "{code}");
        assert!(
            !out.join("cert.pem").exists() && !out.join("key.sealed").exists(),
            "{code}: wrote files"
        );
        assert!(
            !stderr.contains(&std::env::var("STEP_CA_PROVISIONER_PASSWORD").unwrap()),
            "{code}: password leaked"
        );
    }
}
