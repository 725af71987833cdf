//! `mosaic-oid` against its references, in the same run.
//!
//! - `extract-identity/*`: both ids from the ~1 KiB openssl-made fixture
//!   (`crates/mosaic-oid/tests/fixtures/good.der`, 1010 bytes, 9 extensions).
//!   - `mosaic-oid walk` is `FederationIdentity::from_der` (the fast path);
//!   - reference `x509-parser` is `parse_x509_certificate` (full parse) plus
//!     `get_extension_unique` for each OID, then the same strict value decoder;
//!   - `x509-cert full decode` is `Certificate::from_der` plus `FederationIdentity::from_certificate`.
//! - `value/encode+decode`: one `GrantId` to its 38 DER bytes and back.
//!   - `mosaic-oid` is `GrantId::to_der_bytes` then `GrantId::from_der` (strict, canonical only);
//!   - reference `der Utf8StringRef + uuid` is the generic way: `Utf8StringRef::new(&uuid_text)` →
//!     `to_der` (allocating), `Utf8StringRef::from_der` → `Uuid::parse_str`.
//!
//! Run: `cargo bench -p mosaic-benches --bench oid`. Medians and ratios: crates/mosaic-oid/README.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{borrow::Cow, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use der::{Decode, Encode, asn1::Utf8StringRef};
use mosaic_oid::{
    FederationField, FederationIdentity, GrantId, OidRegistry, Uuid, decode_uuid_value,
};
use x509_cert::Certificate;
use x509_parser::{oid_registry::Oid, parse_x509_certificate};

const CERT: &[u8] = include_bytes!("../../crates/mosaic-oid/tests/fixtures/good.der");

fn x509_parser_reference(cert: &[u8], registry: &OidRegistry, oids: &[Oid<'_>; 2]) -> [Uuid; 2] {
    let (_, parsed) = parse_x509_certificate(cert).unwrap();
    let mut out = [Uuid::nil(); 2];
    for ((slot, oid), field) in out.iter_mut().zip(oids).zip(FederationField::ALL) {
        let ext = parsed.get_extension_unique(oid).unwrap().unwrap();
        *slot = decode_uuid_value(ext.value, registry.extension_id(field)).unwrap();
    }
    out
}

fn extract(c: &mut Criterion) {
    let registry = OidRegistry::DEVELOPMENT;
    let oids =
        FederationField::ALL.map(|f| Oid::new(Cow::Owned(registry.oid(f).as_bytes().to_vec())));
    // All three agree before they are timed.
    let ours = FederationIdentity::from_der(CERT, &registry).unwrap();
    let reference = x509_parser_reference(CERT, &registry, &oids);
    assert_eq!(
        [*ours.grant_id.as_uuid(), *ours.subject_user_id.as_uuid()],
        reference
    );
    let full =
        FederationIdentity::from_certificate(&Certificate::from_der(CERT).unwrap(), &registry);
    assert_eq!(full.unwrap(), ours);

    let mut group = c.benchmark_group("extract-identity/1KiB-cert");
    group.bench_function("mosaic-oid walk", |b| {
        b.iter(|| FederationIdentity::from_der(black_box(CERT), &registry).unwrap())
    });
    group.bench_function("x509-parser parse + lookup (reference)", |b| {
        b.iter(|| x509_parser_reference(black_box(CERT), &registry, &oids))
    });
    group.bench_function("x509-cert full decode", |b| {
        b.iter(|| {
            let cert = Certificate::from_der(black_box(CERT)).unwrap();
            FederationIdentity::from_certificate(&cert, &registry).unwrap()
        })
    });
    group.finish();
}

fn value(c: &mut Criterion) {
    let grant = GrantId::new(Uuid::parse_str("0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70").unwrap());
    let mut group = c.benchmark_group("value/encode+decode");
    group.bench_function("mosaic-oid GrantId", |b| {
        b.iter(|| {
            let bytes = black_box(grant).to_der_bytes();
            GrantId::from_der(black_box(&bytes)).unwrap()
        })
    });
    group.bench_function("der Utf8StringRef + uuid (reference)", |b| {
        b.iter(|| {
            let mut text = [0u8; 36];
            let text = black_box(grant)
                .as_uuid()
                .hyphenated()
                .encode_lower(&mut text);
            let der = Utf8StringRef::new(text).unwrap().to_der().unwrap();
            let decoded = Utf8StringRef::from_der(black_box(&der)).unwrap();
            Uuid::parse_str(decoded.as_str()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, extract, value);
criterion_main!(benches);
