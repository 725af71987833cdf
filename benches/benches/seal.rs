//! `mosaic-seal` against its reference, the raw `aes-gcm` primitive, in the same run.
//!
//! Every iteration is one seal plus one open of the same value, with keys derived beforehand (a keyring
//! with one current and two previous keys; the raw cipher built once). Sizes: 250 B and 2 KiB (the
//! issue's), and the 239-byte PEM that `crates/mosaic-seal/interop/bench-typescript-way.mjs` measures in
//! Node, for the ratio to the TypeScript gateway's way.
//!
//! References:
//! - `raw aes-gcm`: `Aes256Gcm::encrypt` then `decrypt` with a fresh OS-random nonce, what any correct
//!   use of the primitive must at least do;
//! - `raw aes-gcm, fixed nonce`: the same without the random nonce, to show the primitive alone;
//! - `raw aes-gcm with aad`: the first with the same associated data as `v1 with aad`, its fair reference.
//!
//! Run: `cargo bench -p mosaic-benches --bench seal`; summarise medians and ratios with
//! `node crates/mosaic-seal/interop/bench-report.mjs <target-dir>/criterion`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use aes_gcm::{
    Aes256Gcm, Key, KeyInit,
    aead::{Aead, Generate, Nonce, Payload},
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mosaic_seal::Keyring;

const CURRENT: &str = "bench-current-secret-0123456789-abcdefghijklmnop";
const PREVIOUS: [&str; 2] = [
    "bench-previous-secret-1-0123456789-abcdefghijklm",
    "bench-previous-secret-2-0123456789-abcdefghijklm",
];
const AAD: &[u8] = b"federation_peers/client_key_pem/6f1d0c52-0f3e-4a4e-9d36-5e7b0f1f2a10";

/// The 239-byte PEM-shaped text also used by the Node script (same construction there).
fn pem_239() -> String {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{ALPHABET}\n{ALPHABET}\n{}\n-----END PRIVATE KEY-----\n",
        &ALPHABET[..54]
    );
    assert_eq!(pem.len(), 239);
    pem
}

fn text_of_len(len: usize) -> String {
    "0123456789abcdef".chars().cycle().take(len).collect()
}

fn seal_open(c: &mut Criterion) {
    let keyring = Keyring::from_secrets(CURRENT, PREVIOUS).unwrap();
    let raw = Aes256Gcm::new(&Key::<Aes256Gcm>::from([7u8; 32]));

    for (name, plaintext) in [
        ("250B", text_of_len(250)),
        ("239B-pem", pem_239()),
        ("2KiB", text_of_len(2048)),
    ] {
        let bytes = plaintext.as_bytes();
        let mut group = c.benchmark_group(format!("seal+open/{name}"));
        group.throughput(Throughput::Bytes(u64::try_from(bytes.len()).unwrap()));

        group.bench_function("raw aes-gcm", |b| {
            b.iter(|| {
                let nonce = Nonce::<Aes256Gcm>::generate();
                let ciphertext = raw.encrypt(&nonce, black_box(bytes)).unwrap();
                let opened = raw.decrypt(&nonce, ciphertext.as_slice()).unwrap();
                black_box(opened)
            });
        });
        group.bench_function("raw aes-gcm, fixed nonce", |b| {
            let nonce = Nonce::<Aes256Gcm>::default();
            b.iter(|| {
                let ciphertext = raw.encrypt(&nonce, black_box(bytes)).unwrap();
                let opened = raw.decrypt(&nonce, ciphertext.as_slice()).unwrap();
                black_box(opened)
            });
        });
        group.bench_function("raw aes-gcm with aad", |b| {
            b.iter(|| {
                let nonce = Nonce::<Aes256Gcm>::generate();
                let sealed = Payload {
                    msg: black_box(bytes),
                    aad: AAD,
                };
                let ciphertext = raw.encrypt(&nonce, sealed).unwrap();
                let opened = Payload {
                    msg: ciphertext.as_slice(),
                    aad: AAD,
                };
                black_box(raw.decrypt(&nonce, opened).unwrap())
            });
        });
        group.bench_function("v1", |b| {
            b.iter(|| {
                let sealed = keyring.seal(black_box(bytes), b"").unwrap();
                let opened = keyring.open(&sealed, b"").unwrap();
                black_box(opened)
            });
        });
        group.bench_function("v1 with aad", |b| {
            b.iter(|| {
                let sealed = keyring.seal(black_box(bytes), AAD).unwrap();
                let opened = keyring.open(&sealed, AAD).unwrap();
                black_box(opened)
            });
        });
        group.bench_function("legacy", |b| {
            b.iter(|| {
                let sealed = keyring.seal_legacy(black_box(&plaintext)).unwrap();
                let opened = keyring.open(&sealed, b"").unwrap();
                black_box(opened)
            });
        });
        group.finish();
    }
}

criterion_group!(benches, seal_open);
criterion_main!(benches);
