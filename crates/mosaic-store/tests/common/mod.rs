//! Shared helpers of the integration tests: fresh databases on the real PostgreSQL, keyrings, fixtures.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod scenarios;

use std::str::FromStr;
use std::sync::Arc;

use mosaic_store::{
    CertSerial, FederationIdentity, GrantId, Keyring, NewPeer, PeerCertificate, Store,
    StoreOptions, SubjectUserId,
};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

pub const OLD_SECRET: &str = "old-better-auth-secret-for-mosaic-store-tests-0001";
pub const NEW_SECRET: &str = "new-better-auth-secret-for-mosaic-store-tests-0002";

pub fn keyring(current: &str, previous: &[&str]) -> Arc<Keyring> {
    Arc::new(Keyring::from_secrets(current, previous.iter().copied()).unwrap())
}

/// `DATABASE_URL`, which `eval "$(infra/native/env)"` sets. Missing means the test must fail, not pass.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: start the stack with infra/native/up and eval \"$(infra/native/env)\" \
             (or run infra/test)"
        )
    })
}

/// `REDIS_URL` (Valkey), which `eval "$(infra/native/env)"` sets.
pub fn valkey_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "REDIS_URL is not set: start the stack with infra/native/up and eval \"$(infra/native/env)\" \
             (or run infra/test)"
        )
    })
}

/// A database created for one test with the superuser of `DATABASE_URL`, dropped (with `FORCE`) when this
/// value is dropped, also when the test panics.
pub struct FreshDatabase {
    pub url: String,
    name: String,
    admin: PgConnectOptions,
}

impl FreshDatabase {
    pub async fn create() -> Self {
        let base = database_url();
        let admin = PgConnectOptions::from_str(&base).expect("DATABASE_URL is a PostgreSQL URL");
        let name = format!("mosaic_store_test_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin).await.unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL at DATABASE_URL (is infra/native/up running?): {e}")
        });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("the DATABASE_URL role may create databases");
        conn.close().await.ok();
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        Self {
            url: url.to_string(),
            name,
            admin,
        }
    }

    pub async fn store(&self, keyring: Arc<Keyring>) -> Store {
        Store::connect(StoreOptions::new(self.url.clone(), keyring))
            .await
            .unwrap()
    }

    pub async fn store_with_valkey(&self, keyring: Arc<Keyring>, valkey: &str) -> Store {
        Store::connect(StoreOptions::new(self.url.clone(), keyring).valkey_url(valkey))
            .await
            .unwrap()
    }

    /// A raw connection for checks and for writing rows the way other programs would.
    pub async fn connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.admin.clone().database(&self.name))
            .await
            .unwrap()
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside async: a short-lived thread with its own runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect_with(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

/// A SQLite store in a fresh temporary directory (kept alive by the returned guard).
pub async fn sqlite_store(keyring: Arc<Keyring>) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_local(&dir.path().join("mosaic.db"), keyring)
        .await
        .unwrap();
    (store, dir)
}

/// A peer certificate record with a random serial (the PEM is a placeholder: the store does not parse it).
pub fn certificate() -> PeerCertificate {
    let serial = CertSerial::from_be_bytes(Uuid::new_v4().as_bytes()).unwrap();
    PeerCertificate::new(
        "-----BEGIN CERTIFICATE-----\nTUlJQg==\n-----END CERTIFICATE-----\n",
        serial,
        OffsetDateTime::now_utc() + time::Duration::days(30),
    )
}

pub fn new_peer(name: &str) -> NewPeer {
    NewPeer::new(name, format!("Peer {name}"), format!("https://{name}:8443"))
}

pub fn identity(grant: GrantId, subject: SubjectUserId) -> FederationIdentity {
    FederationIdentity {
        grant_id: grant,
        subject_user_id: subject,
    }
}

pub fn test_pem(n: usize) -> String {
    format!(
        "-----BEGIN PRIVATE KEY-----\nTEST-KEY-{n:08}-{}\n-----END PRIVATE KEY-----\n",
        "A".repeat(200)
    )
}

/// Rows written by the TypeScript gateway, made with Node's crypto by `tests/fixtures/make-typescript-rows.mjs`.
pub struct TypeScriptRows {
    pub secret: String,
    pub rows: Vec<(Uuid, String, String, String)>, // id, common name, plaintext PEM, sealed value
}

pub fn typescript_rows() -> TypeScriptRows {
    let text = include_str!("../fixtures/typescript-rows.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                Uuid::parse_str(row["id"].as_str().unwrap()).unwrap(),
                row["common_name"].as_str().unwrap().to_owned(),
                row["client_key_pem"].as_str().unwrap().to_owned(),
                row["client_key_pem_sealed"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    TypeScriptRows {
        secret: json["better_auth_secret"].as_str().unwrap().to_owned(),
        rows,
    }
}
