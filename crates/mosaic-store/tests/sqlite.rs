//! The local tier: SQLite files in temporary directories. Needs nothing installed, so nothing is ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::scenarios::{self, Backend};
use common::{NEW_SECRET, keyring, sqlite_store};
use mosaic_store::{EmbeddingRecord, StoreError, Tier};

fn backend(dir: &tempfile::TempDir) -> Backend {
    Backend::Sqlite(dir.path().join("mosaic.db"))
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    let (store, _dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    assert_eq!(store.tier(), Tier::Local);
    scenarios::lifecycle(&store).await;
}

#[tokio::test]
async fn constraints_on_sqlite() {
    let (_store, dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    scenarios::constraints(&backend(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_claimers_on_sqlite() {
    let (store, _dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    scenarios::concurrent_claimers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_killed_and_resumed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenarios::rotation_killed_and_resumed(&backend(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_with_concurrent_writers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenarios::rotation_with_concurrent_writers(&backend(&dir)).await;
}

#[tokio::test]
async fn typescript_rows_load_on_sqlite() {
    let (_store, dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    scenarios::typescript_rows_load(&backend(&dir)).await;
}

#[tokio::test]
async fn sealed_keys_are_bound_to_their_row_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenarios::sealed_keys_are_bound_to_their_row(&backend(&dir)).await;
}

#[tokio::test]
async fn embeddings_need_the_federated_tier() {
    let (store, _dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    let record = EmbeddingRecord::new(
        "docs",
        "a",
        "text",
        vec![1.0; mosaic_store::EMBEDDING_DIMENSIONS],
    );
    let err = store.upsert_embedding(&record).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NeedsFederatedTier {
                feature: "embeddings"
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), "needs_federated_tier");
    assert!(err.remediation().unwrap().contains("federated"));
    let err = store
        .nearest_embeddings("docs", &[1.0; mosaic_store::EMBEDDING_DIMENSIONS], 3)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NeedsFederatedTier { .. }));
    assert!(matches!(
        store.delete_embedding("docs", "a").await,
        Err(StoreError::NeedsFederatedTier { .. })
    ));
}

#[tokio::test]
async fn local_tier_decides_from_the_database_every_time() {
    // Without Valkey nothing is cached: a revocation by another process (the CLI) counts at once.
    let (store, dir) = sqlite_store(keyring(NEW_SECRET, &[])).await;
    let cli =
        mosaic_store::Store::open_local(&dir.path().join("mosaic.db"), keyring(NEW_SECRET, &[]))
            .await
            .unwrap();
    let peer = store
        .insert_peer(&common::new_peer("p.example"))
        .await
        .unwrap();
    let cert = common::certificate();
    store.activate_peer(peer.id, &cert).await.unwrap();
    let subject = mosaic_store::SubjectUserId::from(uuid::Uuid::new_v4());
    let grant = store
        .create_grant(&mosaic_store::NewGrant::new(
            subject,
            peer.id,
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    store.activate_grant(grant.id).await.unwrap();
    let who = common::identity(grant.id, subject);
    for _ in 0..2 {
        let first = store.authorize(&who, &cert.serial).await.unwrap();
        assert!(first.decision.is_allowed());
        assert_eq!(first.source, mosaic_store::DecisionSource::Database);
    }
    cli.revoke_grant(grant.id, "from another process")
        .await
        .unwrap();
    assert!(
        !store
            .authorize(&who, &cert.serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
}

#[tokio::test]
async fn bad_urls_are_refused_without_leaking_passwords() {
    let err = mosaic_store::Store::connect(mosaic_store::StoreOptions::new(
        "mysql://user:hunter2@localhost/db",
        keyring(NEW_SECRET, &[]),
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), "invalid_database_url");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("***"), "{err}");
}
