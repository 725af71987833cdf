//! `mosaic-store`'s online key rotation on the real PostgreSQL, against its references, in the same run.
//!
//! Goal (issue 6): 100 000 sealed rows re-sealed at ≥ 10 000 rows/s, memory flat in the number of rows.
//!
//! Every iteration of `rotation/batched` re-seals all 100 000 `federation_peers.client_key_pem` values of a
//! fresh database under the other of two secrets (A → B, then B → A, …): keyset pages of 1 000 rows,
//! re-sealed in Rust, written back with one guarded `UPDATE … FROM unnest(…)` per batch, then the check
//! pass that confirms nothing is left. The rows start in the TypeScript gateway's legacy format (the first,
//! warm-up, rotation turns them into v1 values).
//!
//! References, measured in the same run:
//! - `rotation/row_at_a_time`: the same job written the obvious way, one guarded `UPDATE` per row (on a
//!   10 000-row database; compare rows per second);
//! - `rotation/reseal_only`: `Keyring::reseal` of the same 100 000 values in memory, no database: the
//!   crypto floor.
//!
//! After criterion, the bench prints one timed rotation of each size with its rows/s, and the peak RSS
//! growth of the process during a 10 000-row and a 100 000-row rotation (`/proc/self/clear_refs` resets
//! the high-water mark before each), which shows whether memory is flat in the row count.
//!
//! Needs the stack: `infra/native/up`, `eval "$(infra/native/env)"`, then
//! `cargo bench -p mosaic-benches --bench rotation`. It creates and drops its own databases.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mosaic_seal::Keyring;
use mosaic_store::{RotationOptions, Store, StoreOptions};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use uuid::Uuid;

const SECRET_A: &str = "rotation-bench-secret-a-0123456789-abcdefghijklmnop";
const SECRET_B: &str = "rotation-bench-secret-b-0123456789-abcdefghijklmnop";
const LARGE: usize = 100_000;
const SMALL: usize = 10_000;

/// The row counts of this run: the real sizes under `cargo bench`, and small ones when the bench runs once
/// as a test (`cargo test --bench rotation`, no `--bench` argument), where building 100 000 rows in a debug
/// build would cost minutes and measure nothing.
fn sizes() -> (usize, usize) {
    if std::env::args().any(|arg| arg == "--bench") {
        (LARGE, SMALL)
    } else {
        (1_000, 100)
    }
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: infra/native/up, then eval \"$(infra/native/env)\"")
    })
}

/// A 241-byte PEM-shaped private key, like the P-256 PKCS#8 keys the gateway stores.
fn pem(n: usize) -> String {
    format!(
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg{n:016}AAAAAAAAAAAAAAAA\n\
         oUQDQgAE{n:016}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
         AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n-----END PRIVATE KEY-----\n"
    )
}

/// A fresh database with `rows` peers whose keys are sealed in the legacy format under `SECRET_A`.
struct BenchDatabase {
    name: String,
    url: String,
    admin: PgConnectOptions,
}

impl BenchDatabase {
    async fn create(rows: usize) -> Self {
        let base = database_url();
        let admin = PgConnectOptions::from_str(&base).unwrap();
        let name = format!("mosaic_bench_rotation_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .expect("PostgreSQL at DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&base).unwrap();
        url.set_path(&format!("/{name}"));
        let db = Self {
            name,
            url: url.to_string(),
            admin,
        };
        // Migrate through the store, then bulk-load like an existing deployment would have grown.
        db.store(SECRET_A, &[]).await.close().await;
        let pool = PgPool::connect(&db.url).await.unwrap();
        let keyring = Keyring::from_secrets(SECRET_A, [] as [&str; 0]).unwrap();
        for start in (0..rows).step_by(10_000) {
            let end = (start + 10_000).min(rows);
            let ids: Vec<Uuid> = (start..end).map(|_| Uuid::new_v4()).collect();
            let names: Vec<String> = (start..end)
                .map(|n| format!("bench-peer-{n}.example"))
                .collect();
            let sealed: Vec<String> = (start..end)
                .map(|n| keyring.seal_legacy(&pem(n)).unwrap())
                .collect();
            sqlx::query(
                "INSERT INTO federation_peers (id, common_name, display_name, endpoint_url, state, client_key_pem, \
                 created_at, updated_at) SELECT u.id, u.name, u.name, 'https://bench.example', 'pending', u.sealed, \
                 now(), now() FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(id, name, sealed)",
            )
            .bind(ids)
            .bind(names)
            .bind(sealed)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("VACUUM ANALYZE federation_peers")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        db
    }

    async fn store(&self, current: &str, previous: &[&str]) -> Store {
        let keyring = Arc::new(Keyring::from_secrets(current, previous.iter().copied()).unwrap());
        Store::connect(StoreOptions::new(self.url.clone(), keyring))
            .await
            .unwrap()
    }

    async fn drop_database(self) {
        let mut conn = PgConnection::connect_with(&self.admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}

/// Alternates the direction of the rotation, so that every iteration has all rows to re-seal.
struct Rotator {
    to_b: Store,
    to_a: Store,
    next_is_b: bool,
}

impl Rotator {
    async fn new(db: &BenchDatabase) -> Self {
        Self {
            to_b: db.store(SECRET_B, &[SECRET_A]).await,
            to_a: db.store(SECRET_A, &[SECRET_B]).await,
            next_is_b: true,
        }
    }

    /// One full rotation; returns how many values it re-sealed.
    async fn rotate(&mut self) -> u64 {
        let store = if self.next_is_b {
            &self.to_b
        } else {
            &self.to_a
        };
        self.next_is_b = !self.next_is_b;
        let report = store
            .rotate_sealed_values(RotationOptions::default(), |_| {})
            .await
            .unwrap();
        report.resealed
    }

    /// The reference: the same job, one guarded UPDATE per row.
    async fn rotate_row_at_a_time(&mut self, pool: &PgPool) -> u64 {
        let (secret, previous) = if self.next_is_b {
            (SECRET_B, SECRET_A)
        } else {
            (SECRET_A, SECRET_B)
        };
        self.next_is_b = !self.next_is_b;
        let keyring = Keyring::from_secrets(secret, [previous]).unwrap();
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "SELECT id, client_key_pem FROM federation_peers WHERE client_key_pem IS NOT NULL",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut written = 0;
        for (id, old) in rows {
            if !keyring.needs_reseal(&old).unwrap() {
                continue;
            }
            let new = keyring
                .reseal(
                    &old,
                    format!("federation_peers/client_key_pem/{id}").as_bytes(),
                )
                .unwrap();
            written += sqlx::query(
                "UPDATE federation_peers SET client_key_pem = $3, updated_at = now() WHERE id = $1 AND client_key_pem = $2",
            )
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected();
        }
        written
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn peak_rss_reset() {
    // Writing 5 resets the "peak resident set size" (VmHWM) to the current RSS (Linux ≥ 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn bench_rotation(c: &mut Criterion) {
    let rt = runtime();
    let (large_rows, small_rows) = sizes();
    let large = rt.block_on(BenchDatabase::create(large_rows));
    let small = rt.block_on(BenchDatabase::create(small_rows));
    let mut large_rotator = rt.block_on(Rotator::new(&large));
    let mut small_rotator = rt.block_on(Rotator::new(&small));
    let small_pool = rt.block_on(PgPool::connect(&small.url)).unwrap();
    // Warm-up: legacy → v1 on both.
    assert_eq!(rt.block_on(large_rotator.rotate()), large_rows as u64);
    assert_eq!(rt.block_on(small_rotator.rotate()), small_rows as u64);

    let mut group = c.benchmark_group("rotation");
    // Flat sampling: every sample the same number of (seconds-long) iterations, ten samples.
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(20));

    group.throughput(Throughput::Elements(large_rows as u64));
    group.bench_function("batched/100000", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                assert_eq!(rt.block_on(large_rotator.rotate()), large_rows as u64);
            }
            start.elapsed()
        });
    });

    let values: Vec<(Uuid, String)> = rt.block_on(async {
        let pool = PgPool::connect(&large.url).await.unwrap();
        let values =
            sqlx::query_as::<_, (Uuid, String)>("SELECT id, client_key_pem FROM federation_peers")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        values
    });
    let reseal_keyring = Keyring::from_secrets(SECRET_B, [SECRET_A]).unwrap();
    group.bench_function("reseal_only/100000", |b| {
        b.iter_batched(
            || (),
            |()| {
                for (id, value) in &values {
                    let aad = format!("federation_peers/client_key_pem/{id}");
                    std::hint::black_box(reseal_keyring.reseal(value, aad.as_bytes()).unwrap());
                }
            },
            BatchSize::PerIteration,
        );
    });
    drop(values);

    group.throughput(Throughput::Elements(small_rows as u64));
    group.bench_function("batched/10000", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                assert_eq!(rt.block_on(small_rotator.rotate()), small_rows as u64);
            }
            start.elapsed()
        });
    });
    group.bench_function("row_at_a_time/10000", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                assert_eq!(
                    rt.block_on(small_rotator.rotate_row_at_a_time(&small_pool)),
                    small_rows as u64
                );
            }
            start.elapsed()
        });
    });
    group.finish();

    // One timed rotation of each size, and the memory it needed.
    for (rotator, rows) in [
        (&mut small_rotator, small_rows),
        (&mut large_rotator, large_rows),
    ] {
        let rss_before = status_kib("VmRSS:");
        peak_rss_reset();
        let start = Instant::now();
        let resealed = rt.block_on(rotator.rotate());
        let elapsed = start.elapsed();
        let peak = status_kib("VmHWM:");
        assert_eq!(resealed, rows as u64);
        #[allow(clippy::cast_precision_loss)]
        let rate = rows as f64 / elapsed.as_secs_f64();
        println!(
            "rotation of {rows} rows: {elapsed:.2?}, {rate:.0} rows/s; RSS before {rss_before} KiB, peak {peak} KiB \
             (growth {} KiB)",
            peak.saturating_sub(rss_before)
        );
    }

    // Every value is under the key of the last rotation, none lost.
    let check = rt.block_on(async {
        let store = if large_rotator.next_is_b {
            &large_rotator.to_a
        } else {
            &large_rotator.to_b
        };
        store.sealed_value_status().await.unwrap()
    });
    assert_eq!(check.values_needing_reseal(), 0);
    assert_eq!(check.total_values(), large_rows as u64);

    rt.block_on(async {
        small_pool.close().await;
        for rotator in [large_rotator, small_rotator] {
            rotator.to_a.close().await;
            rotator.to_b.close().await;
        }
        large.drop_database().await;
        small.drop_database().await;
    });
}

criterion_group!(benches, bench_rotation);
criterion_main!(benches);
