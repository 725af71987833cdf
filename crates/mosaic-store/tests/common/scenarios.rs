//! Scenarios run against both backends: the same calls, the same expectations.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mosaic_store::{
    AuditOutcome, AuditQuery, AuthorizationDecision, ClientKeyPem, DenyReason, GrantFilter,
    GrantId, GrantStatus, Keyring, NewAuditEntry, NewGrant, PeerState, RotationOptions, Store,
    StoreError, SubjectUserId,
};
use serde_json::json;
use sqlx::Connection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    NEW_SECRET, OLD_SECRET, certificate, identity, keyring, new_peer, test_pem, typescript_rows,
};

/// Where a scenario's database lives, so that it can be opened with several keyrings and written to raw.
pub enum Backend {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Backend {
    pub async fn open(&self, keyring: Arc<Keyring>) -> Store {
        match self {
            Self::Postgres(url) => {
                Store::connect(mosaic_store::StoreOptions::new(url.clone(), keyring))
                    .await
                    .unwrap()
            }
            Self::Sqlite(path) => Store::open_local(path, keyring).await.unwrap(),
        }
    }

    /// Inserts a peer row directly, as another program (the TypeScript gateway) would.
    pub async fn insert_raw_peer(&self, id: Uuid, name: &str, sealed_key: &str) {
        const SQL: &str = "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, \
             client_key_pem, created_at, updated_at) VALUES ($1, $2, $2, 'https://ts.example', 'pending', $3, $4, $4)";
        let at = "2026-01-01T00:00:00.000000Z";
        match self {
            Self::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(SQL)
                    .bind(id)
                    .bind(name)
                    .bind(sealed_key)
                    .bind(
                        OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                            .unwrap(),
                    )
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Self::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query(SQL)
                    .bind(id)
                    .bind(name)
                    .bind(sealed_key)
                    .bind(at)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Copies the sealed key of one row onto another, as an attacker with database access might.
    pub async fn copy_sealed_key(&self, from: Uuid, to: Uuid) {
        const SQL: &str = "UPDATE federation_peers SET client_key_pem = \
             (SELECT client_key_pem FROM federation_peers WHERE id = $1) WHERE id = $2";
        match self {
            Self::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(SQL)
                    .bind(from)
                    .bind(to)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            Self::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query(SQL)
                    .bind(from)
                    .bind(to)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// Runs a statement that must violate a constraint; returns the database's message.
    pub async fn violating(&self, sql: &'static str) -> String {
        let result = match self {
            Self::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.map(|_| ())
            }
            Self::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                sqlx::query(sql).execute(&mut conn).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => panic!("the database accepted a row its constraints should refuse: {sql}"),
            Err(e) => e.to_string(),
        }
    }
}

fn deny(decision: &AuthorizationDecision) -> DenyReason {
    match decision {
        AuthorizationDecision::Deny(reason) => *reason,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// Grants, tokens, peers, authorization and audit, through every transition and refusal.
pub async fn lifecycle(store: &Store) {
    // Peers.
    let peer = store.insert_peer(&new_peer("gw-b.example")).await.unwrap();
    assert_eq!(peer.state, PeerState::Pending);
    assert!(peer.certificate.is_none() && peer.client_key.is_none());
    let dup = store
        .insert_peer(&new_peer("gw-b.example"))
        .await
        .unwrap_err();
    assert!(matches!(dup, StoreError::AlreadyExists { .. }), "{dup}");
    assert_eq!(
        store
            .get_peer_by_name("gw-b.example")
            .await
            .unwrap()
            .unwrap()
            .id,
        peer.id
    );

    // Grants.
    let subject = SubjectUserId::from(Uuid::new_v4());
    let scope = json!({"read": ["whoami"], "write": []});
    let expiry = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let grant = store
        .create_grant(&NewGrant::new(subject, peer.id, scope.clone()).expires_at(expiry))
        .await
        .unwrap();
    assert_eq!(grant.status, GrantStatus::Pending);
    assert_eq!(grant.scope, scope);
    assert_eq!(grant.peer_id, peer.id);
    assert_eq!(grant.subject_user_id, subject);
    let expected_expiry = expiry
        .replace_nanosecond(expiry.microsecond() * 1000)
        .unwrap();
    assert_eq!(
        grant.expires_at,
        Some(expected_expiry),
        "timestamps round-trip to the microsecond"
    );
    assert_eq!(
        store.get_grant(grant.id).await.unwrap().unwrap(),
        grant,
        "a grant reads back as written"
    );
    let bad_scope = store
        .create_grant(&NewGrant::new(
            subject,
            peer.id,
            json!(["not", "an", "object"]),
        ))
        .await;
    assert!(matches!(
        bad_scope,
        Err(StoreError::InvalidInput { field: "scope", .. })
    ));
    let no_peer = store
        .create_grant(&NewGrant::new(
            subject,
            mosaic_store::PeerId::new_random(),
            json!({}),
        ))
        .await;
    assert!(
        matches!(no_peer, Err(StoreError::NotFound { entity: "peer", .. })),
        "{no_peer:?}"
    );

    // Enrollment tokens.
    let too_long = store
        .create_enrollment_token(grant.id, Duration::from_secs(901))
        .await
        .unwrap_err();
    assert!(matches!(
        too_long,
        StoreError::TokenTtlOutOfRange {
            requested: 901,
            max: 900
        }
    ));
    assert!(
        store
            .create_enrollment_token(grant.id, Duration::ZERO)
            .await
            .is_err()
    );
    let issued = store
        .create_enrollment_token(grant.id, Duration::from_secs(900))
        .await
        .unwrap();
    assert_eq!(issued.token.expose().len(), 43);
    assert!(
        !format!("{issued:?}").contains(issued.token.expose()),
        "Debug never shows the token"
    );
    assert_eq!(issued.peer_id, peer.id);
    let unknown = store
        .claim_enrollment_token(&mosaic_store::EnrollmentToken::from_text("nope"))
        .await;
    assert!(matches!(unknown, Err(StoreError::TokenUnknown)));
    let claimed = store.claim_enrollment_token(&issued.token).await.unwrap();
    assert_eq!((claimed.grant_id, claimed.peer_id), (grant.id, peer.id));
    let again = store.claim_enrollment_token(&issued.token).await;
    assert!(matches!(again, Err(StoreError::TokenUsed)), "{again:?}");
    let short = store
        .create_enrollment_token(grant.id, Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = store.claim_enrollment_token(&short.token).await;
    assert!(
        matches!(expired, Err(StoreError::TokenExpired)),
        "{expired:?}"
    );

    // Not yet enrolled: refused.
    let cert = certificate();
    let who = identity(grant.id, subject);
    let before = store.authorize(&who, &cert.serial).await.unwrap();
    assert_eq!(
        deny(&before.decision),
        DenyReason::GrantNotActive {
            status: GrantStatus::Pending
        }
    );

    // Enrollment completes: the peer gets its certificate, the grant becomes active.
    let active_peer = store.activate_peer(peer.id, &cert).await.unwrap();
    assert_eq!(active_peer.state, PeerState::Active);
    assert_eq!(
        active_peer.certificate.as_ref().unwrap().serial,
        cert.serial
    );
    let twice = store
        .activate_peer(peer.id, &certificate())
        .await
        .unwrap_err();
    assert!(
        matches!(twice, StoreError::InvalidTransition { ref current, .. } if current == "active"),
        "{twice}"
    );
    let active = store.activate_grant(grant.id).await.unwrap();
    assert_eq!(active.status, GrantStatus::Active);
    assert!(active.activated_at.is_some());
    assert!(matches!(
        store.activate_grant(grant.id).await,
        Err(StoreError::InvalidTransition { .. })
    ));
    let token_for_active = store
        .create_enrollment_token(grant.id, Duration::from_secs(60))
        .await;
    assert!(
        matches!(token_for_active, Err(StoreError::InvalidTransition { .. })),
        "{token_for_active:?}"
    );

    // Another peer cannot take the same certificate serial.
    let other = store.insert_peer(&new_peer("gw-c.example")).await.unwrap();
    let taken = store.activate_peer(other.id, &cert).await.unwrap_err();
    assert!(matches!(taken, StoreError::AlreadyExists { .. }), "{taken}");

    // Authorization.
    let allowed = store.authorize(&who, &cert.serial).await.unwrap();
    match &allowed.decision {
        AuthorizationDecision::Allow(granted) => {
            assert_eq!(granted.grant_id, grant.id);
            assert_eq!(granted.subject_user_id, subject);
            assert_eq!(granted.peer_id, peer.id);
            assert_eq!(granted.scope, scope);
        }
        other => panic!("expected allow, got {other:?}"),
    }
    let wrong_serial = store.authorize(&who, &certificate().serial).await.unwrap();
    assert_eq!(deny(&wrong_serial.decision), DenyReason::SerialMismatch);
    let wrong_subject = store
        .authorize(
            &identity(grant.id, SubjectUserId::from(Uuid::new_v4())),
            &cert.serial,
        )
        .await;
    assert_eq!(
        deny(&wrong_subject.unwrap().decision),
        DenyReason::SubjectMismatch
    );
    let unknown_grant = store
        .authorize(
            &identity(GrantId::from(Uuid::new_v4()), subject),
            &cert.serial,
        )
        .await;
    assert_eq!(
        deny(&unknown_grant.unwrap().decision),
        DenyReason::UnknownGrant
    );

    // A grant of another peer is refused with this peer's certificate.
    let other_cert = certificate();
    store.activate_peer(other.id, &other_cert).await.unwrap();
    let other_grant = store
        .create_grant(&NewGrant::new(subject, other.id, json!({})))
        .await
        .unwrap();
    store.activate_grant(other_grant.id).await.unwrap();
    let cross = store
        .authorize(&identity(other_grant.id, subject), &cert.serial)
        .await
        .unwrap();
    assert_eq!(deny(&cross.decision), DenyReason::SerialMismatch);

    // Suspension and resumption of the peer.
    store.suspend_peer(peer.id).await.unwrap();
    let suspended = store.authorize(&who, &cert.serial).await.unwrap();
    assert_eq!(
        deny(&suspended.decision),
        DenyReason::PeerNotActive {
            state: PeerState::Suspended
        }
    );
    assert!(matches!(
        store.suspend_peer(peer.id).await,
        Err(StoreError::InvalidTransition { .. })
    ));
    store.resume_peer(peer.id).await.unwrap();
    assert!(
        store
            .authorize(&who, &cert.serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );

    // A renewed certificate replaces the old one.
    let renewed = certificate();
    store
        .renew_peer_certificate(peer.id, &renewed, None)
        .await
        .unwrap();
    assert_eq!(
        deny(&store.authorize(&who, &cert.serial).await.unwrap().decision),
        DenyReason::SerialMismatch
    );
    assert!(
        store
            .authorize(&who, &renewed.serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );

    // Listing.
    let by_peer = store
        .list_grants(GrantFilter::all().peer(peer.id))
        .await
        .unwrap();
    assert_eq!(
        by_peer.iter().map(|g| g.id).collect::<Vec<_>>(),
        vec![grant.id]
    );
    let active_grants = store
        .list_grants(GrantFilter::all().status(GrantStatus::Active))
        .await
        .unwrap();
    assert_eq!(active_grants.len(), 2);
    assert!(
        store
            .list_grants(
                GrantFilter::all()
                    .peer(peer.id)
                    .status(GrantStatus::Pending)
            )
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.list_grants(GrantFilter::all()).await.unwrap().len(),
        2
    );

    // Audit, newest first.
    for (action, outcome) in [
        ("enrollment.claim", AuditOutcome::Succeeded),
        ("request.authorize", AuditOutcome::Allowed),
        ("request.authorize", AuditOutcome::Denied),
    ] {
        store
            .append_audit(
                &NewAuditEntry::new(action, outcome)
                    .peer(peer.id)
                    .grant(grant.id)
                    .subject(subject)
                    .detail(json!({"serial": renewed.serial.as_str()})),
            )
            .await
            .unwrap();
    }
    store
        .append_audit(
            &NewAuditEntry::new("request.authorize", AuditOutcome::Denied)
                .grant(GrantId::from(Uuid::new_v4())),
        )
        .await
        .unwrap();
    let newest = store.list_audit(AuditQuery::newest(10)).await.unwrap();
    assert_eq!(newest.len(), 4);
    assert!(
        newest
            .windows(2)
            .all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)),
        "newest first"
    );
    assert_eq!(newest[0].grant_id.map(|g| g != grant.id), Some(true));
    let for_grant = store
        .list_audit(AuditQuery::newest(2).grant(grant.id))
        .await
        .unwrap();
    assert_eq!(for_grant.len(), 2);
    assert_eq!(for_grant[0].outcome, AuditOutcome::Denied);
    assert_eq!(for_grant[1].outcome, AuditOutcome::Allowed);
    assert_eq!(
        for_grant[0].detail,
        json!({"serial": renewed.serial.as_str()})
    );
    let bad_action = store
        .append_audit(&NewAuditEntry::new("Bad Action", AuditOutcome::Failed))
        .await;
    assert!(matches!(bad_action, Err(StoreError::InvalidInput { .. })));

    // Revocation, with a reason; final.
    let revoked = store
        .revoke_grant(grant.id, "peer decommissioned")
        .await
        .unwrap();
    assert_eq!(revoked.status, GrantStatus::Revoked);
    assert_eq!(
        revoked.revoked_reason.as_deref(),
        Some("peer decommissioned")
    );
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        store.revoke_grant(grant.id, "again").await,
        Err(StoreError::InvalidTransition { .. })
    ));
    assert!(matches!(
        store.activate_grant(grant.id).await,
        Err(StoreError::InvalidTransition { .. })
    ));
    let after = store.authorize(&who, &renewed.serial).await.unwrap();
    assert_eq!(
        deny(&after.decision),
        DenyReason::GrantNotActive {
            status: GrantStatus::Revoked
        }
    );

    // Expiry: authorization checks it at once; the transition records it.
    let soon = OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let brief = store
        .create_grant(&NewGrant::new(subject, other.id, json!({})).expires_at(soon))
        .await
        .unwrap();
    store.activate_grant(brief.id).await.unwrap();
    assert!(
        store
            .authorize(&identity(brief.id, subject), &other_cert.serial)
            .await
            .unwrap()
            .decision
            .is_allowed()
    );
    assert!(
        matches!(
            store.expire_grant(brief.id).await,
            Err(StoreError::InvalidInput { .. })
        ),
        "not due yet"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let late = store
        .authorize(&identity(brief.id, subject), &other_cert.serial)
        .await
        .unwrap();
    assert_eq!(deny(&late.decision), DenyReason::GrantExpired);
    assert_eq!(
        store.expire_grant(brief.id).await.unwrap().status,
        GrantStatus::Expired
    );
    let past = store
        .create_grant(&NewGrant::new(subject, other.id, json!({})).expires_at(soon))
        .await;
    assert!(matches!(
        past,
        Err(StoreError::InvalidInput {
            field: "expires_at",
            ..
        })
    ));
    let due = OffsetDateTime::now_utc() + time::Duration::milliseconds(300);
    let swept = store
        .create_grant(&NewGrant::new(subject, other.id, json!({})).expires_at(due))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        store.activate_grant(swept.id).await,
        Err(StoreError::GrantExpired(_))
    ));
    assert_eq!(store.expire_due_grants().await.unwrap(), vec![swept.id]);

    // The peer is revoked for good.
    let gone = store.revoke_peer(peer.id).await.unwrap();
    assert_eq!(gone.state, PeerState::Revoked);
    assert!(gone.revoked_at.is_some());
    assert!(matches!(
        store.resume_peer(peer.id).await,
        Err(StoreError::InvalidTransition { .. })
    ));
    let missing = store.revoke_peer(mosaic_store::PeerId::new_random()).await;
    assert!(matches!(
        missing,
        Err(StoreError::NotFound { entity: "peer", .. })
    ));
}

/// The database itself refuses rows that break the lifecycle.
pub async fn constraints(backend: &Backend) {
    let checks: [&'static str; 4] = [
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, created_at, updated_at) \
         VALUES (X'00000000000000000000000000000001', 'a', 'a', 'https://a', 'active', '2026-01-01', '2026-01-01')",
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, created_at, updated_at) \
         VALUES (X'00000000000000000000000000000002', 'b', 'b', 'https://b', 'dormant', '2026-01-01', '2026-01-01')",
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, client_key_pem, \
         created_at, updated_at) VALUES (X'00000000000000000000000000000003', 'c', 'c', 'https://c', 'pending', \
         '-----BEGIN PRIVATE KEY-----', '2026-01-01', '2026-01-01')",
        "INSERT INTO federation_grants (id, subject_user_id, peer_id, status, scope, created_at) VALUES \
         (X'00000000000000000000000000000004', X'00000000000000000000000000000005', \
         X'00000000000000000000000000000006', 'pending', '{}', '2026-01-01')",
    ];
    let pg_checks: [&'static str; 4] = [
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state) \
         VALUES ('00000000-0000-0000-0000-000000000001', 'a', 'a', 'https://a', 'active')",
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state) \
         VALUES ('00000000-0000-0000-0000-000000000002', 'b', 'b', 'https://b', 'dormant')",
        "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, client_key_pem) \
         VALUES ('00000000-0000-0000-0000-000000000003', 'c', 'c', 'https://c', 'pending', '-----BEGIN PRIVATE KEY-----')",
        "INSERT INTO federation_grants (id, subject_user_id, peer_id) VALUES \
         ('00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-000000000005', \
         '00000000-0000-0000-0000-000000000006')",
    ];
    let statements = match backend {
        Backend::Postgres(_) => pg_checks,
        Backend::Sqlite(_) => checks,
    };
    // An active peer without a certificate; an unknown state; a plaintext key; a grant of a missing peer.
    let expected = [
        "federation_peers_active_has_cert",
        "CHECK",
        "CHECK",
        "FOREIGN KEY",
    ];
    for (sql, what) in statements.iter().zip(expected) {
        let message = backend.violating(sql).await;
        let hint = match what {
            "CHECK" => ["check", "CHECK"].iter().any(|w| message.contains(w)),
            "FOREIGN KEY" => ["foreign key", "FOREIGN KEY"]
                .iter()
                .any(|w| message.contains(w)),
            name => message.contains(name) || message.contains("CHECK"),
        };
        assert!(hint, "{sql}\n refused for an unexpected reason: {message}");
    }
}

/// 20 gateways claim one token at the same instant: exactly one wins, the others are told it is used.
pub async fn concurrent_claimers(store: &Store) {
    let peer = store.insert_peer(&new_peer("racer.example")).await.unwrap();
    let grant = store
        .create_grant(&NewGrant::new(
            SubjectUserId::from(Uuid::new_v4()),
            peer.id,
            json!({}),
        ))
        .await
        .unwrap();
    let issued = store
        .create_enrollment_token(grant.id, Duration::from_secs(300))
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let token = issued.token.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_enrollment_token(&token).await
        }));
    }
    let mut wins = 0;
    let mut used = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(claim) => {
                assert_eq!(claim.grant_id, grant.id);
                wins += 1;
            }
            Err(StoreError::TokenUsed) => used += 1,
            Err(other) => panic!("a claimer failed for another reason: {other}"),
        }
    }
    assert_eq!((wins, used), (1, 19));
}

/// Inserts `count` peers with client keys under `store`'s keyring; returns id → plaintext PEM.
pub async fn seed_sealed_peers(store: &Store, prefix: &str, count: usize) -> HashMap<Uuid, String> {
    let mut expected = HashMap::new();
    for n in 0..count {
        let pem = test_pem(n);
        let peer = store
            .insert_peer(
                &new_peer(&format!("{prefix}-{n}.example"))
                    .client_key(ClientKeyPem::new(pem.clone())),
            )
            .await
            .unwrap();
        expected.insert(peer.id.as_uuid(), pem);
    }
    expected
}

/// Every expected row is there and opens (through `store`'s keyring) to its plaintext.
pub async fn assert_all_open(store: &Store, expected: &HashMap<Uuid, String>) {
    let peers = store.list_peers().await.unwrap();
    let opened: HashMap<Uuid, String> = peers
        .into_iter()
        .filter_map(|p| {
            p.client_key
                .map(|key| (p.id.as_uuid(), key.expose().to_owned()))
        })
        .collect();
    assert_eq!(opened.len(), expected.len(), "no row lost, none added");
    for (id, pem) in expected {
        assert_eq!(opened.get(id), Some(pem), "row {id} opens to its plaintext");
    }
}

/// Rotation killed after two batches (an abort of the task, mid-flight), then run again: every row opens
/// under the new key alone, none is lost; at every step every row opens with the rotating keyring.
pub async fn rotation_killed_and_resumed(backend: &Backend) {
    let old_store = backend.open(keyring(OLD_SECRET, &[])).await;
    let mut expected = seed_sealed_peers(&old_store, "rot", 450).await;
    // Three rows as the TypeScript gateway wrote them (legacy format, old secret, no associated data).
    let old_ring = keyring(OLD_SECRET, &[]);
    for n in 0..3 {
        let id = Uuid::new_v4();
        let pem = test_pem(10_000 + n);
        backend
            .insert_raw_peer(
                id,
                &format!("legacy-{n}.example"),
                &old_ring.seal_legacy(&pem).unwrap(),
            )
            .await;
        expected.insert(id, pem);
    }
    old_store.close().await;

    let rotating = backend.open(keyring(NEW_SECRET, &[OLD_SECRET])).await;
    let before = rotating.sealed_value_status().await.unwrap();
    assert_eq!(before.legacy_values, 3);
    assert_eq!(before.values_needing_reseal(), 453);

    // Dry run: counts, writes nothing.
    let dry = rotating
        .rotate_sealed_values(RotationOptions::default().dry_run(true), |_| {})
        .await
        .unwrap();
    assert_eq!(dry.resealed, 453);
    assert_eq!(rotating.sealed_value_status().await.unwrap(), before);

    // Kill: abort the task once two batches have been reported.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let task_store = rotating.clone();
    let task = tokio::spawn(async move {
        task_store
            .rotate_sealed_values(RotationOptions::default().batch_size(100), move |p| {
                let _ = tx.send(p.batches);
            })
            .await
    });
    while let Some(batches) = rx.recv().await {
        if batches >= 2 {
            task.abort();
            break;
        }
    }
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "the rotation was killed before finishing"
    );
    let midway = rotating.sealed_value_status().await.unwrap();
    let under_new = midway.keys.iter().find(|k| k.current).unwrap().values;
    assert!(
        under_new >= 200 && midway.values_needing_reseal() > 0,
        "killed part-way: {midway:?}"
    );
    assert_eq!(midway.total_values(), 453);
    assert_all_open(&rotating, &expected).await;

    // A staged stop between batches, then the rest.
    let staged = rotating
        .rotate_sealed_values(
            RotationOptions::default().batch_size(100).max_batches(1),
            |_| {},
        )
        .await;
    assert!(staged.unwrap().stopped_early);
    assert_all_open(&rotating, &expected).await;
    let report = rotating
        .rotate_sealed_values(RotationOptions::default().batch_size(100), |_| {})
        .await
        .unwrap();
    assert!(!report.stopped_early);
    assert!(
        report.resealed > 0 && report.resealed < 453,
        "resumed, not restarted: {report:?}"
    );
    assert_eq!(report.unreadable, 0);

    let after = rotating.sealed_value_status().await.unwrap();
    assert_eq!(after.legacy_values, 0);
    assert_eq!(after.values_needing_reseal(), 0);
    assert_eq!(after.keys.iter().find(|k| k.current).unwrap().values, 453);
    rotating.close().await;

    // The old secret can now be dropped: the new key alone opens everything.
    let new_only = backend.open(keyring(NEW_SECRET, &[])).await;
    assert_all_open(&new_only, &expected).await;
    let nothing = new_only
        .rotate_sealed_values(RotationOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(nothing.resealed, 0, "running again finds nothing to do");
}

/// Rotation while a gateway (already on the new secret) keeps inserting and renewing: everything ends
/// under the new key, nothing lost, the gateway's writes are never overwritten.
pub async fn rotation_with_concurrent_writers(backend: &Backend) {
    let old_store = backend.open(keyring(OLD_SECRET, &[])).await;
    let mut expected = seed_sealed_peers(&old_store, "busy", 400).await;
    old_store.close().await;

    let gateway = backend.open(keyring(NEW_SECRET, &[OLD_SECRET])).await;
    let rotating = backend.open(keyring(NEW_SECRET, &[OLD_SECRET])).await;
    let existing: Vec<Uuid> = expected.keys().copied().take(50).collect();
    let writer = tokio::spawn({
        let gateway = gateway.clone();
        async move {
            let mut written = HashMap::new();
            for n in 0..60 {
                let pem = test_pem(50_000 + n);
                let peer = gateway
                    .insert_peer(
                        &new_peer(&format!("new-{n}.example"))
                            .client_key(ClientKeyPem::new(pem.clone())),
                    )
                    .await
                    .unwrap();
                written.insert(peer.id.as_uuid(), pem);
                // Renew (re-key) an existing peer too: it must keep the gateway's new value.
                let id = existing[n % existing.len()];
                let renewed_pem = test_pem(60_000 + n);
                let renew_peer = mosaic_store::PeerId::from(id);
                if gateway.get_peer(renew_peer).await.unwrap().unwrap().state == PeerState::Pending
                {
                    gateway
                        .activate_peer(renew_peer, &certificate())
                        .await
                        .unwrap();
                }
                gateway
                    .renew_peer_certificate(
                        renew_peer,
                        &certificate(),
                        Some(&ClientKeyPem::new(renewed_pem.clone())),
                    )
                    .await
                    .unwrap();
                written.insert(id, renewed_pem);
                tokio::task::yield_now().await;
            }
            written
        }
    });
    let report = rotating
        .rotate_sealed_values(RotationOptions::default().batch_size(50), |_| {})
        .await
        .unwrap();
    let written = writer.await.unwrap();
    assert!(
        report.passes >= 2,
        "a check pass always follows a pass that wrote: {report:?}"
    );
    expected.extend(written);
    // The writer may finish after the last pass; its values are under the new key anyway.
    let status = rotating.sealed_value_status().await.unwrap();
    assert_eq!(status.values_needing_reseal(), 0, "{status:?}");
    let new_only = backend.open(keyring(NEW_SECRET, &[])).await;
    assert_all_open(&new_only, &expected).await;
}

/// Rows written by the TypeScript gateway (sealed by Node's crypto, legacy format) load, and rotate.
pub async fn typescript_rows_load(backend: &Backend) {
    let fixture = typescript_rows();
    for (id, name, _, sealed) in &fixture.rows {
        backend.insert_raw_peer(*id, name, sealed).await;
    }
    let store = backend.open(keyring(&fixture.secret, &[])).await;
    for (id, name, pem, _) in &fixture.rows {
        let peer = store
            .get_peer(mosaic_store::PeerId::from(*id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&peer.common_name, name);
        assert_eq!(peer.client_key.as_ref().unwrap().expose(), pem);
    }
    assert_eq!(store.sealed_value_status().await.unwrap().legacy_values, 3);
    store.close().await;

    // And they survive a rotation away from the TypeScript gateway's secret.
    let rotating = backend.open(keyring(NEW_SECRET, &[&fixture.secret])).await;
    rotating
        .rotate_sealed_values(RotationOptions::default(), |_| {})
        .await
        .unwrap();
    let new_only = backend.open(keyring(NEW_SECRET, &[])).await;
    let expected = fixture
        .rows
        .iter()
        .map(|(id, _, pem, _)| (*id, pem.clone()))
        .collect();
    assert_all_open(&new_only, &expected).await;
}

/// A sealed key copied onto another row does not open there: the associated data binds it to its row.
pub async fn sealed_keys_are_bound_to_their_row(backend: &Backend) {
    let store = backend.open(keyring(NEW_SECRET, &[])).await;
    let a = store
        .insert_peer(&new_peer("a.example").client_key(ClientKeyPem::new(test_pem(1))))
        .await
        .unwrap();
    let b = store
        .insert_peer(&new_peer("b.example").client_key(ClientKeyPem::new(test_pem(2))))
        .await
        .unwrap();
    assert_eq!(a.client_key.as_ref().unwrap().expose(), test_pem(1));
    assert!(
        !format!("{a:?}").contains("TEST-KEY"),
        "Debug never shows the key"
    );
    backend
        .copy_sealed_key(a.id.as_uuid(), b.id.as_uuid())
        .await;
    let err = store.get_peer(b.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Seal {
                source: mosaic_seal::SealError::BadAssociatedData { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("TEST-KEY"));
    // A store with the wrong secret cannot open the keys, and says so.
    let wrong = backend.open(keyring(OLD_SECRET, &[])).await;
    assert!(matches!(
        wrong.get_peer(a.id).await,
        Err(StoreError::Seal { .. })
    ));
}
