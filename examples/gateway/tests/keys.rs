//! `mosaic keys status` and `mosaic keys rotate` on the local tier (a SQLite file in a temporary data
//! directory): runs with nothing installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use mosaic_store::{ClientKeyPem, Keyring, NewPeer, Store};

const OLD_SECRET: &str = "keys-cli-test-old-secret-0123456789abcdefghijkl";
const NEW_SECRET: &str = "keys-cli-test-new-secret-0123456789abcdefghijkl";

fn mosaic(dir: &Path, args: &[&str]) -> Output {
    let previous = dir.join("previous-secrets");
    std::fs::write(&previous, format!("{OLD_SECRET}\n")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("BETTER_AUTH_SECRET", NEW_SECRET)
        .env("MOSAIC_SEAL_PREVIOUS_SECRETS_FILE", &previous)
        .env("MOSAIC_DATA_DIR", dir.join("data"))
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn seed(dir: &Path, count: usize) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let keyring = Arc::new(Keyring::from_secrets(OLD_SECRET, [] as [&str; 0]).unwrap());
    let store = Store::open_local(&dir.join("data").join("mosaic.sqlite3"), keyring)
        .await
        .unwrap();
    for n in 0..count {
        let pem = format!("-----BEGIN PRIVATE KEY-----\nKEY{n}\n-----END PRIVATE KEY-----\n");
        store
            .insert_peer(
                &NewPeer::new(
                    format!("p{n}.example"),
                    format!("p{n}"),
                    "https://p.example",
                )
                .client_key(ClientKeyPem::new(pem)),
            )
            .await
            .unwrap();
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_then_rotate_then_status() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path(), 25).await;
    let new_id = Keyring::from_secrets(NEW_SECRET, [] as [&str; 0])
        .unwrap()
        .current_key_id()
        .to_string();
    let old_id = Keyring::from_secrets(OLD_SECRET, [] as [&str; 0])
        .unwrap()
        .current_key_id()
        .to_string();

    let before = json(&mosaic(dir.path(), &["keys", "status", "--json"]));
    assert_eq!(
        before,
        serde_json::json!({
            "keys": [
                {"key_id": new_id, "current": true, "values": 0},
                {"key_id": old_id, "current": false, "values": 25},
            ],
            "legacy_values": 0,
        })
    );
    let human = mosaic(dir.path(), &["keys", "status"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("25 value(s) need re-sealing"));

    let dry = json(&mosaic(
        dir.path(),
        &["keys", "rotate", "--dry-run", "--json"],
    ));
    assert_eq!(dry["resealed"], 25);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(
        json(&mosaic(dir.path(), &["keys", "status", "--json"])),
        before,
        "a dry run writes nothing"
    );

    let rotated = mosaic(dir.path(), &["keys", "rotate", "--batch-size", "10"]);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    assert!(String::from_utf8_lossy(&rotated.stdout).contains("Re-sealed 25 value(s)"));

    let after = json(&mosaic(dir.path(), &["keys", "status", "--json"]));
    assert_eq!(
        after["keys"][0],
        serde_json::json!({"key_id": new_id, "current": true, "values": 25})
    );
    assert_eq!(after["keys"][1]["values"], 0);
    assert_eq!(after["legacy_values"], 0);
}

#[test]
fn a_missing_secret_is_a_clear_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["keys", "status"])
        .current_dir(dir.path())
        .env_clear()
        .env("MOSAIC_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BETTER_AUTH_SECRET"), "{stderr}");
    assert!(output.stdout.is_empty());
}
