//! The federation CLI across processes on the local tier (no stack needed): `mosaic gateway serve` in
//! one process, the operators' commands in others, and the refusals of bad input with exit code 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

const SECRET: &str = "federation-cli-test-secret-0123456789abcdef";
const USER: &str = "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11";

fn mosaic(cwd: &Path, data: &Path, args: &[&str]) -> Output {
    base(cwd, data).args(args).output().unwrap()
}

fn base(cwd: &Path, data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    command
        .current_dir(cwd)
        .env_clear()
        .env("BETTER_AUTH_SECRET", SECRET)
        .env("MOSAIC_DATA_DIR", data)
        .env("NO_COLOR", "1");
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(cwd: &Path, data: &Path, name: &str) -> (Server, String) {
    let mut child = base(cwd, data)
        .args([
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--name",
            name,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("tier local"), "{line}");
    (Server(child), line)
}

fn scope(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join(format!("scope-{}.json", mosaic_oid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn two_gateway_processes_enroll_call_revoke_and_refuse_on_the_local_tier() {
    let cwd = tempfile::tempdir().unwrap();
    let (a, b) = (cwd.path().join("a"), cwd.path().join("b"));
    let (_server, announcement) = serve(cwd.path(), &a, "gw-a");
    let scope = scope(cwd.path(), r#"{"resources": ["calendar"]}"#);

    let out = mosaic(
        cwd.path(),
        &a,
        &[
            "federation",
            "grant",
            "create",
            "--user",
            USER,
            "--peer",
            "gw-b",
            "--scope",
            scope.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let grant: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = grant["id"].as_str().unwrap().to_owned();

    // `token` finds the public URL that `serve` announced for this data directory.
    let out = mosaic(cwd.path(), &a, &["federation", "grant", "token", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = text(&out.stdout).trim().to_owned();
    let root = announcement
        .split("server root sha256 ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(')');
    assert!(
        url.ends_with(&format!("&peer=gw-b&root-sha256={root}")),
        "{url} vs {announcement}"
    );
    assert!(text(&out.stderr).contains("single use"));

    let out = mosaic(cwd.path(), &b, &["federation", "peer", "enroll", &url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("enrolled with gw-a as gw-b: grant {id}")));

    let out = mosaic(
        cwd.path(),
        &b,
        &["federation", "peer", "call", "gw-a", "whoami"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"]["grant_id"], id.as_str());
    assert_eq!(answer["body"]["subject_user_id"], USER);

    let out = mosaic(
        cwd.path(),
        &a,
        &["federation", "grant", "revoke", &id, "--reason", "test"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = mosaic(
        cwd.path(),
        &b,
        &["federation", "peer", "call", "gw-a", "whoami"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("HTTP 403 grant_revoked") && stderr.contains("to fix:"),
        "{stderr}"
    );

    // A revoked grant takes no new token.
    let out = mosaic(cwd.path(), &a, &["federation", "grant", "token", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );

    // A second grant for the same peer: B already knows a gw-a, so without --name it refuses before
    // spending the token; with another name it enrolls, and A replaces gw-b's certificate.
    let out = mosaic(
        cwd.path(),
        &a,
        &[
            "federation",
            "grant",
            "create",
            "--user",
            USER,
            "--peer",
            "gw-b",
            "--scope",
            scope.to_str().unwrap(),
            "--json",
        ],
    );
    let second: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = second["id"].as_str().unwrap().to_owned();
    let out = mosaic(cwd.path(), &a, &["federation", "grant", "token", &second]);
    let url = text(&out.stdout).trim().to_owned();
    let out = mosaic(cwd.path(), &b, &["federation", "peer", "enroll", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("a peer named \"gw-a\" already exists here"),
        "{}",
        text(&out.stderr)
    );
    let out = mosaic(
        cwd.path(),
        &b,
        &["federation", "peer", "enroll", &url, "--name", "gw-a-2"],
    );
    assert!(
        out.status.success(),
        "the URL was still unused: {}",
        text(&out.stderr)
    );
    let out = mosaic(
        cwd.path(),
        &b,
        &["federation", "peer", "call", "gw-a-2", "whoami"],
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["body"]["grant_id"], second.as_str());

    // The key B stores for its certificate is sealed, never in clear, in B's SQLite file.
    let sqlite = std::fs::read(b.join("mosaic.sqlite3")).unwrap();
    assert!(!String::from_utf8_lossy(&sqlite).contains("PRIVATE KEY"));
}

#[test]
fn bad_input_exits_2_and_says_how_to_fix_it() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "federation".into(),
                "grant".into(),
                "create".into(),
                "--user".into(),
                "NOT-A-UUID".into(),
                "--peer".into(),
                "gw-b".into(),
                "--scope".into(),
                scope(cwd.path(), "{}").display().to_string(),
            ],
            "not a canonical UUID",
        ),
        (
            vec![
                "federation".into(),
                "grant".into(),
                "create".into(),
                "--user".into(),
                USER.into(),
                "--peer".into(),
                "gw-b".into(),
                "--scope".into(),
                scope(cwd.path(), "{\n\"a\": [1,\n}").display().to_string(),
            ],
            "line 3",
        ),
        (
            vec![
                "federation".into(),
                "grant".into(),
                "create".into(),
                "--user".into(),
                USER.into(),
                "--peer".into(),
                "Has Space".into(),
                "--scope".into(),
                scope(cwd.path(), "{}").display().to_string(),
            ],
            "not a usable peer name",
        ),
        (
            vec![
                "federation".into(),
                "grant".into(),
                "token".into(),
                USER.into(),
                "--ttl".into(),
                "901".into(),
            ],
            "901",
        ),
        (
            vec![
                "federation".into(),
                "peer".into(),
                "enroll".into(),
                "https://gw-a:8443/api/federation/v1/enrollment".into(),
            ],
            "#token",
        ),
        (
            vec![
                "federation".into(),
                "peer".into(),
                "call".into(),
                "nobody".into(),
                "whoami".into(),
            ],
            "no peer named",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mosaic(cwd.path(), &data, &args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }

    // Without BETTER_AUTH_SECRET nothing is opened, and the message says what to set.
    let out = base(cwd.path(), &data)
        .env_remove("BETTER_AUTH_SECRET")
        .args(["federation", "peer", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("export BETTER_AUTH_SECRET"));
}
