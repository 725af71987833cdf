//! The federated tier against the real PostgreSQL (pgvector) and Valkey that `infra/native/up` starts.
//! Each test creates its own database with the superuser of `DATABASE_URL` and drops it afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::scenarios::{self, Backend};
use common::{FreshDatabase, NEW_SECRET, certificate, identity, keyring, new_peer, valkey_url};
use mosaic_store::{
    AuthorizationDecision, DecisionSource, DenyReason, EMBEDDING_DIMENSIONS, EmbeddingRecord,
    GrantStatus, NewGrant, Store, StoreError, SubjectUserId, Tier,
};
use serde_json::json;
use sqlx::Row;
use uuid::Uuid;

const STACK: &str = "needs the federated stack: run infra/test";

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn migrations_create_the_vector_extension_and_the_schema() {
    let _ = STACK;
    let db = FreshDatabase::create().await;
    let store = db.store(keyring(NEW_SECRET, &[])).await;
    assert_eq!(store.tier(), Tier::Federated);
    let mut conn = db.connection().await;
    let version: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&mut conn)
            .await
            .expect("the vector extension is installed by the first migration");
    assert!(!version.is_empty());
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_sqlx%' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "embeddings",
            "federation_audit_log",
            "federation_enrollment_tokens",
            "federation_grants",
            "federation_peers"
        ]
    );
    // Migrating again (another gateway starting) is a no-op.
    let again = db.store(keyring(NEW_SECRET, &[])).await;
    again.close().await;
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn lifecycle_on_postgres() {
    let db = FreshDatabase::create().await;
    let store = db.store(keyring(NEW_SECRET, &[])).await;
    scenarios::lifecycle(&store).await;
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn lifecycle_on_postgres_with_valkey() {
    let db = FreshDatabase::create().await;
    let store = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &valkey_url())
        .await;
    scenarios::lifecycle(&store).await;
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn constraints_on_postgres() {
    let db = FreshDatabase::create().await;
    let _store = db.store(keyring(NEW_SECRET, &[])).await;
    scenarios::constraints(&Backend::Postgres(db.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the federated stack: run infra/test"]
async fn twenty_concurrent_claimers_on_postgres() {
    let db = FreshDatabase::create().await;
    let store = db.store(keyring(NEW_SECRET, &[])).await;
    scenarios::concurrent_claimers(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn rotation_killed_and_resumed_on_postgres() {
    let db = FreshDatabase::create().await;
    db.store(keyring(NEW_SECRET, &[])).await.close().await; // migrate
    scenarios::rotation_killed_and_resumed(&Backend::Postgres(db.url.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn rotation_with_concurrent_writers_on_postgres() {
    let db = FreshDatabase::create().await;
    scenarios::rotation_with_concurrent_writers(&Backend::Postgres(db.url.clone())).await;
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn typescript_rows_load_on_postgres() {
    let db = FreshDatabase::create().await;
    db.store(keyring(NEW_SECRET, &[])).await.close().await; // migrate
    scenarios::typescript_rows_load(&Backend::Postgres(db.url.clone())).await;
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn sealed_keys_are_bound_to_their_row_on_postgres() {
    let db = FreshDatabase::create().await;
    scenarios::sealed_keys_are_bound_to_their_row(&Backend::Postgres(db.url.clone())).await;
}

/// An active grant with an enrolled peer; returns (grant id, subject, serial).
async fn active_grant(
    store: &Store,
) -> (
    mosaic_store::GrantId,
    SubjectUserId,
    mosaic_store::CertSerial,
) {
    let peer = store
        .insert_peer(&new_peer(&format!("{}.example", Uuid::new_v4().simple())))
        .await
        .unwrap();
    let cert = certificate();
    store.activate_peer(peer.id, &cert).await.unwrap();
    let subject = SubjectUserId::from(Uuid::new_v4());
    let grant = store
        .create_grant(&NewGrant::new(
            subject,
            peer.id,
            json!({"read": ["whoami"]}),
        ))
        .await
        .unwrap();
    store.activate_grant(grant.id).await.unwrap();
    (grant.id, subject, cert.serial)
}

async fn wait_for_subscription(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(store.shared_cache_connected() && store.invalidations_subscribed()) {
        assert!(
            Instant::now() < deadline,
            "Valkey at REDIS_URL did not accept a subscription within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `authorize` until it denies; returns how long that took.
async fn time_until_denied(
    store: &Store,
    who: &mosaic_store::FederationIdentity,
    serial: &mosaic_store::CertSerial,
    deadline: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        if !store
            .authorize(who, serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < deadline,
            "the other instance still allowed after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn revocation_on_one_instance_invalidates_the_cached_decision_on_another() {
    let db = FreshDatabase::create().await;
    let valkey = valkey_url();
    let gateway_a = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &valkey)
        .await;
    let gateway_b = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &valkey)
        .await;
    wait_for_subscription(&gateway_a).await;
    wait_for_subscription(&gateway_b).await;

    let mut latencies = Vec::new();
    for _ in 0..5 {
        let (grant, subject, serial) = active_grant(&gateway_a).await;
        let who = identity(grant, subject);
        // B decides from the database, then answers from its caches.
        let first = gateway_b.authorize(&who, &serial).await.unwrap();
        assert!(first.decision.is_allowed());
        assert_eq!(first.source, DecisionSource::Database);
        // The activation's own invalidation may still be on its way to B, and then B rightly refuses to
        // cache what it computed before hearing of it; soon B answers from its in-process cache.
        let cached_by = Instant::now() + Duration::from_secs(2);
        loop {
            let again = gateway_b.authorize(&who, &serial).await.unwrap();
            assert!(again.decision.is_allowed());
            if again.source == DecisionSource::LocalCache {
                break;
            }
            assert!(
                Instant::now() < cached_by,
                "B never served the decision from its cache"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A's cache is filled from the shared one.
        assert_eq!(
            gateway_a.authorize(&who, &serial).await.unwrap().source,
            DecisionSource::SharedCache
        );

        gateway_a.revoke_grant(grant, "test").await.unwrap();
        latencies.push(time_until_denied(&gateway_b, &who, &serial, Duration::from_secs(2)).await);
        let denied = gateway_b.authorize(&who, &serial).await.unwrap();
        assert_eq!(
            denied.decision,
            AuthorizationDecision::Deny(DenyReason::GrantNotActive {
                status: GrantStatus::Revoked
            })
        );
    }
    latencies.sort();
    eprintln!(
        "revocation → denial on the other instance: median {:?}, max {:?}",
        latencies[2], latencies[4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn cached_decisions_are_real_a_change_nobody_announces_is_not_seen() {
    // The control for the test above: a revocation written behind the store's back (no invalidation) is
    // not seen while the decision is cached, so it is the invalidation that makes the difference.
    let db = FreshDatabase::create().await;
    let store = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &valkey_url())
        .await;
    wait_for_subscription(&store).await;
    let (grant, subject, serial) = active_grant(&store).await;
    let who = identity(grant, subject);
    assert!(
        store
            .authorize(&who, &serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
    let mut conn = db.connection().await;
    sqlx::query(
        "UPDATE federation_grants SET status = 'revoked', revoked_at = now() WHERE id = $1",
    )
    .bind(Uuid::from(grant))
    .execute(&mut conn)
    .await
    .unwrap();
    let cached = store.authorize(&who, &serial).await.unwrap();
    assert!(cached.decision.is_allowed());
    assert_ne!(cached.source, DecisionSource::Database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn with_valkey_down_authorization_is_still_correct() {
    // A closed port: nothing listens there, so every Valkey call fails as it does when Valkey is stopped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_valkey = format!("redis://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let db = FreshDatabase::create().await;
    let started = Instant::now();
    let store = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &dead_valkey)
        .await;
    eprintln!("store with a dead Valkey opened in {:?}", started.elapsed());
    assert!(!store.shared_cache_connected());
    assert!(!store.invalidations_subscribed());
    // A healthy gateway on the same database, with the real Valkey.
    let healthy = db
        .store_with_valkey(keyring(NEW_SECRET, &[]), &valkey_url())
        .await;

    let (grant, subject, serial) = active_grant(&store).await;
    let who = identity(grant, subject);
    let mut timings = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let decision = store.authorize(&who, &serial).await.unwrap();
        timings.push(started.elapsed());
        assert!(decision.decision.is_allowed());
        assert_eq!(
            decision.source,
            DecisionSource::Database,
            "degraded mode decides from the database"
        );
    }
    timings.sort();
    eprintln!(
        "decisions with Valkey down (debug build): median {:?}, slowest {:?}",
        timings[10], timings[19]
    );
    let wrong = store.authorize(&who, &certificate().serial).await.unwrap();
    assert_eq!(
        wrong.decision,
        AuthorizationDecision::Deny(DenyReason::SerialMismatch)
    );

    // Revoked through the healthy gateway: the degraded one denies at once (it caches nothing).
    healthy.revoke_grant(grant, "test").await.unwrap();
    let denied = store.authorize(&who, &serial).await.unwrap();
    assert_eq!(
        denied.decision,
        AuthorizationDecision::Deny(DenyReason::GrantNotActive {
            status: GrantStatus::Revoked
        })
    );

    // Revoking through the degraded gateway works too (the invalidation is queued for later).
    let (grant, subject, serial) = active_grant(&healthy).await;
    let who = identity(grant, subject);
    assert!(
        store
            .authorize(&who, &serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
    store
        .revoke_grant(grant, "while Valkey is down")
        .await
        .unwrap();
    assert!(
        !store
            .authorize(&who, &serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_database_failure_is_an_error_never_an_allow() {
    let db = FreshDatabase::create().await;
    let store = db.store(keyring(NEW_SECRET, &[])).await;
    let (grant, subject, serial) = active_grant(&store).await;
    let who = identity(grant, subject);
    assert!(
        store
            .authorize(&who, &serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
    store.close().await;
    let err = store.authorize(&who, &serial).await.unwrap_err();
    assert_eq!(err.code(), "database_error");
}

fn unit(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; EMBEDDING_DIMENSIONS];
    v[axis] = 1.0;
    v[axis + 1] = tilt;
    v
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn embeddings_upsert_and_nearest_by_cosine_distance() {
    let db = FreshDatabase::create().await;
    let store = db.store(keyring(NEW_SECRET, &[])).await;
    store
        .upsert_embedding(&EmbeddingRecord::new("docs", "x", "along x", unit(0, 0.0)))
        .await
        .unwrap();
    store
        .upsert_embedding(&EmbeddingRecord::new(
            "docs",
            "x-ish",
            "mostly x",
            unit(0, 0.5),
        ))
        .await
        .unwrap();
    store
        .upsert_embedding(&EmbeddingRecord::new("docs", "y", "along y", unit(1, 0.0)))
        .await
        .unwrap();
    store
        .upsert_embedding(&EmbeddingRecord::new(
            "other",
            "x",
            "another collection",
            unit(0, 0.0),
        ))
        .await
        .unwrap();

    let hits = store
        .nearest_embeddings("docs", &unit(0, 0.1), 2)
        .await
        .unwrap();
    assert_eq!(
        hits.iter()
            .map(|h| h.document_id.as_str())
            .collect::<Vec<_>>(),
        ["x", "x-ish"]
    );
    assert!(hits[0].distance < hits[1].distance);
    assert!(
        hits[0].distance >= 0.0 && hits[0].distance < 0.01,
        "{}",
        hits[0].distance
    );

    // Upsert replaces: "y" now points along x and comes first.
    store
        .upsert_embedding(
            &EmbeddingRecord::new("docs", "y", "moved", unit(0, 0.0)).metadata(json!({"v": 2})),
        )
        .await
        .unwrap();
    let hits = store
        .nearest_embeddings("docs", &unit(0, 0.0), 3)
        .await
        .unwrap();
    assert_eq!(hits.len(), 3, "only this collection");
    let y = hits.iter().find(|h| h.document_id == "y").unwrap();
    assert_eq!(
        (y.content.as_str(), &y.metadata),
        ("moved", &json!({"v": 2}))
    );
    assert!(y.distance < 0.01);
    assert!(store.delete_embedding("docs", "y").await.unwrap());
    assert!(!store.delete_embedding("docs", "y").await.unwrap());

    let wrong = store
        .nearest_embeddings("docs", &[1.0, 2.0, 3.0], 1)
        .await
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            StoreError::EmbeddingDimensions {
                expected: 1536,
                actual: 3
            }
        ),
        "{wrong}"
    );
    let zero = store
        .upsert_embedding(&EmbeddingRecord::new(
            "docs",
            "z",
            "",
            vec![0.0; EMBEDDING_DIMENSIONS],
        ))
        .await;
    assert!(matches!(zero, Err(StoreError::InvalidInput { .. })));
    let nan = store
        .nearest_embeddings("docs", &unit(0, f32::NAN), 1)
        .await;
    assert!(matches!(nan, Err(StoreError::InvalidInput { .. })));

    // The HNSW index with cosine ops exists and serves the query.
    let mut conn = db.connection().await;
    let indexdef: String = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'embeddings_embedding_hnsw_idx'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(
        indexdef.contains("hnsw") && indexdef.contains("vector_cosine_ops"),
        "{indexdef}"
    );
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let literal = format!(
        "[{}]",
        unit(0, 0.0)
            .iter()
            .map(f32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN SELECT document_id FROM embeddings ORDER BY embedding <=> '{literal}'::vector LIMIT 2"
    )))
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .iter()
    .map(|row| row.get::<String, _>(0))
    .collect();
    assert!(
        plan.iter()
            .any(|line| line.contains("embeddings_embedding_hnsw_idx")),
        "{plan:#?}"
    );
}
