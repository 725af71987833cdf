//! `mosaic-ca-client`: the client-side cost of one issuance, and end-to-end latency against step-ca.
//!
//! - `ca-client/prepare`: everything the client does before the request leaves: a fresh P-256 key,
//!   the CSR (x509-cert builder, signed), and the ES256 one-time token (claims, signature).
//!   - `mosaic-ca-client prepare` is `StepCaClient::prepare` (the doc-hidden step behind `issue`);
//!   - reference `p256 keygen + 2 ECDSA signatures` is the irreducible cryptography of the same work
//!     (one key, one CSR signature, one token signature over inputs of similar size), with no encoding;
//!   - `LocalCa issue (in-process)` adds signing the certificate and the full verification
//!     (webpki chain, key, names, mosaic-oid extraction): the whole pipeline without a network.
//! - `end-to-end` (only when `STEP_CA_URL` is set, i.e. after `eval "$(infra/native/env)"`): sequential
//!   `issue` calls against the local step-ca, p50 / p99 / mean, with `GET /health` over the same pinned
//!   TLS connection as the reference floor; then 200 issuances with 16 in flight (throughput).
//!
//! Run: `cargo bench -p mosaic-benches --bench ca`. Figures: crates/mosaic-ca-client/README.md.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stderr
)]

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use criterion::Criterion;
use mosaic_ca_client::{IssueRequest, LocalCa, StepCaClient, StepCaConfig, TokenOptions};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer},
    elliptic_curve::Generate,
};

const GRANT: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
const USER: &str = "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11";

/// A client that is never connected: only `prepare` is timed with it.
fn offline_client(root_pem: String) -> StepCaClient {
    let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = key.verifying_key().to_sec1_point(false);
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        "d": URL_SAFE_NO_PAD.encode([0x42; 32]),
    });
    let config = StepCaConfig::builder()
        .url("https://localhost:9000")
        .provisioner_key_json(jwk.to_string())
        .root_cert(root_pem.into_bytes())
        .build()
        .unwrap();
    StepCaClient::new(config).unwrap()
}

fn client_side(c: &mut Criterion) {
    let ca = LocalCa::generate("bench").unwrap();
    let client = offline_client(ca.root_pem());
    let request = IssueRequest::new(GRANT, USER, "peer-1.mosaic.test");
    let options = TokenOptions::default();
    // Inputs of the size the real work signs: a ~300-byte CSR body, a ~700-byte token signing input.
    let csr_like = vec![0x5a_u8; 300];
    let token_like = vec![0x61_u8; 700];

    let mut group = c.benchmark_group("ca-client/prepare (key + CSR + token)");
    group.bench_function("mosaic-ca-client prepare", |b| {
        b.iter(|| client.prepare(black_box(&request), &options).unwrap())
    });
    group.bench_function("p256 keygen + 2 ECDSA signatures (reference)", |b| {
        b.iter(|| {
            let key = SigningKey::try_generate_from_rng(&mut getrandom::SysRng).unwrap();
            let a: Signature = key.sign(black_box(&csr_like));
            let t: Signature = key.sign(black_box(&token_like));
            (a, t)
        })
    });
    group.bench_function("LocalCa issue (in-process, with verification)", |b| {
        b.iter(|| ca.issue_now(black_box(&request)).unwrap())
    });
    group.finish();
}

/// The nearest-rank percentile `p` (1..=100) of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let p50 = percentile(&samples, 50);
    let p99 = percentile(&samples, 99);
    let mean = samples.iter().sum::<Duration>() / u32::try_from(samples.len()).unwrap();
    eprintln!(
        "{name:<48} n={:<4} p50 {:>8.2} ms  p99 {:>8.2} ms  mean {:>8.2} ms",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3
    );
    (p50, p99)
}

fn end_to_end() {
    if std::env::var_os("STEP_CA_URL").is_none() {
        eprintln!(
            "ca/end-to-end: SKIPPED: STEP_CA_URL is not set (start step-ca with infra/native/up and \
             eval \"$(infra/native/env)\" to measure issuance latency against it)"
        );
        return;
    }
    let client = Arc::new(
        StepCaClient::new(
            StepCaConfig::builder()
                .url(std::env::var("STEP_CA_URL").unwrap())
                .provisioner_key_json(std::env::var("STEP_CA_PROVISIONER_KEY_JSON").unwrap())
                .provisioner_password(
                    std::env::var("STEP_CA_PROVISIONER_PASSWORD").unwrap_or_default(),
                )
                .root_cert_path(std::env::var("STEP_CA_ROOT_CERT_PATH").unwrap())
                .build()
                .expect("the STEP_CA_* variables must describe the running CA"),
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = 200;
    runtime.block_on(async {
        let request = || {
            IssueRequest::new(
                uuid::Uuid::new_v4().to_string(),
                uuid::Uuid::new_v4().to_string(),
                "bench.mosaic.test",
            )
        };
        // Warm up the connection and the CA.
        for _ in 0..5 {
            client.issue(&request()).await.unwrap();
        }
        let mut health = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            client.health().await.unwrap();
            health.push(t.elapsed());
        }
        let mut issue = Vec::with_capacity(n);
        for _ in 0..n {
            let r = request();
            let t = Instant::now();
            black_box(client.issue(&r).await.unwrap());
            issue.push(t.elapsed());
        }
        eprintln!(
            "ca/end-to-end against {} (sequential, one connection):",
            client.config().url()
        );
        let (h50, h99) = summary("GET /health (reference: TLS round trip)", health);
        let (i50, i99) = summary("issue (key+CSR+token, POST /1.0/sign, verify)", issue);
        eprintln!(
            "  issue / health: p50 {:.1}x, p99 {:.1}x",
            i50.as_secs_f64() / h50.as_secs_f64(),
            i99.as_secs_f64() / h99.as_secs_f64()
        );

        let started = Instant::now();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let permit = Arc::clone(&semaphore).acquire_owned().await.unwrap();
            let client = Arc::clone(&client);
            let r = request();
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                client.issue(&r).await.unwrap();
                drop(permit);
                t.elapsed()
            }));
        }
        let mut concurrent = Vec::with_capacity(n);
        for task in tasks {
            concurrent.push(task.await.unwrap());
        }
        let wall = started.elapsed();
        summary("issue, 16 in flight", concurrent);
        eprintln!(
            "  throughput: {n} issuances in {:.2} s = {:.0} per second",
            wall.as_secs_f64(),
            f64::from(u32::try_from(n).unwrap()) / wall.as_secs_f64()
        );
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    client_side(&mut criterion);
    criterion.final_summary();
    end_to_end();
}
