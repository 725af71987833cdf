//! Interop with Node's own `crypto` module, both directions.
//!
//! - Rust opens the committed vectors that `interop/make-vectors.mjs` made with Node (legacy: what the
//!   TypeScript gateway writes; v1: the README's layout implemented independently in JavaScript).
//! - Node opens what Rust sealed (`interop/open.mjs`), legacy exactly as the TypeScript gateway does.
//! - Fresh vectors made by running the script now also open, so the committed files cannot drift from it.
//!
//! These tests need `node` (≥ 18) on PATH, or its path in the `NODE` environment variable; without it they
//! fail with a message saying so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use mosaic_seal::{Keyring, KeyringOptions};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct VectorFile {
    generator: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    secret: String,
    plaintext: String,
    #[serde(default)]
    aad: Option<String>,
    sealed: String,
}

#[derive(Debug, Deserialize)]
struct NodeResult {
    plaintext_base64: Option<String>,
    error: Option<String>,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".to_owned())
}

/// Runs node with `args`, feeding `stdin`; panics with a clear message if node is missing or fails.
fn run_node(args: &[&Path], stdin: &str) -> String {
    let node = node();
    let mut child = Command::new(&node)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `{node}` ({error}): the Node interop tests need Node.js ≥ 18 on PATH, or its \
                 path in the NODE environment variable"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "`{node} {args:?}` failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn keyring_for(secret: &str) -> Keyring {
    // The vectors include a short secret, as older deployments may have; opening needs it allowed.
    Keyring::from_secrets_with(
        secret,
        [] as [&str; 0],
        KeyringOptions::default().allow_short_secrets(),
    )
    .unwrap()
}

fn load(path: &Path) -> VectorFile {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn open_all(file: &VectorFile, expect_v1: bool) {
    assert!(file.vectors.len() >= 15, "{}", file.generator);
    for vector in &file.vectors {
        assert_eq!(
            vector.sealed.starts_with(mosaic_seal::V1_PREFIX),
            expect_v1,
            "{}",
            vector.name
        );
        let keyring = keyring_for(&vector.secret);
        let aad = vector.aad.as_deref().unwrap_or_default().as_bytes();
        let opened = keyring
            .open(&vector.sealed, aad)
            .unwrap_or_else(|error| panic!("{}: {error}", vector.name));
        assert_eq!(
            opened.as_str().unwrap(),
            vector.plaintext,
            "{}",
            vector.name
        );

        // And the same value does not open under another secret.
        let other = keyring_for("a-different-secret-that-is-long-enough-to-pass");
        assert!(other.open(&vector.sealed, aad).is_err(), "{}", vector.name);
        if expect_v1 {
            assert!(
                keyring.open(&vector.sealed, b"another place").is_err(),
                "{}",
                vector.name
            );
        }
    }
}

#[test]
fn rust_opens_committed_legacy_vectors_made_by_node() {
    open_all(
        &load(&crate_dir().join("tests/fixtures/node-legacy.json")),
        false,
    );
}

#[test]
fn rust_opens_committed_v1_vectors_made_by_node() {
    open_all(
        &load(&crate_dir().join("tests/fixtures/node-v1.json")),
        true,
    );
}

#[test]
fn rust_opens_fresh_vectors_made_by_node_now() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mosaic-seal-node-vectors");
    run_node(&[&crate_dir().join("interop/make-vectors.mjs"), &out], "");
    open_all(&load(&out.join("node-legacy.json")), false);
    open_all(&load(&out.join("node-v1.json")), true);
}

/// Seals with Rust, opens with Node; returns Node's plaintexts (or errors) in order.
fn node_opens(requests: &[serde_json::Value]) -> Vec<NodeResult> {
    let stdout = run_node(
        &[&crate_dir().join("interop/open.mjs")],
        &serde_json::to_string(requests).unwrap(),
    );
    let results: Vec<NodeResult> = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(results.len(), requests.len());
    results
}

fn plaintexts() -> Vec<String> {
    vec![
        String::new(),
        "hello".to_owned(),
        "clé privée — 鍵 🔑\n".to_owned(),
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
            .to_owned(),
        "x".repeat(2048),
    ]
}

const SECRETS: [&str; 3] = [
    "Qm9iIGFuZCBBbGljZSBzaGFyZSBhIGxvbmcgcmFuZG9tIHNlY3JldA==",
    "clé-secrète-アリス-🔑-avec-assez-de-longueur",
    "dev-secret",
];

#[test]
fn node_opens_legacy_values_sealed_by_rust() {
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for secret in SECRETS {
        let keyring = keyring_for(secret);
        for plaintext in plaintexts() {
            requests.push(serde_json::json!({
                "format": "legacy",
                "secret": secret,
                "sealed": keyring.seal_legacy(&plaintext).unwrap(),
            }));
            expected.push(Some(plaintext));
        }
    }
    // A control that must fail in Node: sealed under another secret.
    requests.push(serde_json::json!({
        "format": "legacy",
        "secret": SECRETS[0],
        "sealed": keyring_for(SECRETS[1]).seal_legacy("x").unwrap(),
    }));
    expected.push(None);

    for (result, expected) in node_opens(&requests).into_iter().zip(expected) {
        match expected {
            Some(plaintext) => {
                assert_eq!(result.error, None);
                let opened = STANDARD.decode(result.plaintext_base64.unwrap()).unwrap();
                assert_eq!(String::from_utf8(opened).unwrap(), plaintext);
            }
            None => assert!(
                result.error.is_some(),
                "node opened a value under another secret"
            ),
        }
    }
}

#[test]
fn node_opens_v1_values_sealed_by_rust_from_the_documented_layout() {
    let aad = "federation_peers/client_key_pem/42";
    let mut requests = Vec::new();
    let mut expected = Vec::new();
    for secret in SECRETS {
        let keyring = keyring_for(secret);
        for plaintext in plaintexts() {
            requests.push(serde_json::json!({
                "format": "v1",
                "secret": secret,
                "aad": aad,
                "sealed": keyring.seal(plaintext.as_bytes(), aad.as_bytes()).unwrap(),
            }));
            expected.push(Some(plaintext));
        }
    }
    // Controls that must fail in Node: another AAD; another secret.
    let keyring = keyring_for(SECRETS[0]);
    requests.push(serde_json::json!({
        "format": "v1", "secret": SECRETS[0], "aad": "another row",
        "sealed": keyring.seal(b"x", aad.as_bytes()).unwrap(),
    }));
    expected.push(None);
    requests.push(serde_json::json!({
        "format": "v1", "secret": SECRETS[1], "aad": aad,
        "sealed": keyring.seal(b"x", aad.as_bytes()).unwrap(),
    }));
    expected.push(None);

    for (result, expected) in node_opens(&requests).into_iter().zip(expected) {
        match expected {
            Some(plaintext) => {
                assert_eq!(result.error, None);
                let opened = STANDARD.decode(result.plaintext_base64.unwrap()).unwrap();
                assert_eq!(String::from_utf8(opened).unwrap(), plaintext);
            }
            None => assert!(result.error.is_some(), "node opened a control value"),
        }
    }
}
