//! Certificates and CSRs built with `x509-cert`'s builders, carrying the federation extensions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{str::FromStr, time::Duration};

use der::{Decode, Encode, asn1::OctetString};
use mosaic_oid::{
    FederationIdentity, GRANT_ID, GrantId, OidRegistry, SUBJECT_USER_ID, SubjectUserId, Uuid,
    extract_identity,
};
use p256::ecdsa::{DerSignature, SigningKey};
use spki::SubjectPublicKeyInfoRef;
use x509_cert::{
    Certificate,
    builder::{Builder, CertificateBuilder, profile::BuilderProfile},
    certificate::TbsCertificate,
    ext::Extension,
    name::Name,
    request::{CertReq, RequestBuilder},
    serial_number::SerialNumber,
    spki::SubjectPublicKeyInfo,
    time::Validity,
};

const GRANT: &str = "6a1f9a58-2c1e-4a8b-bb5e-0c2f6d9e4b31";
const SUBJECT: &str = "d2c4e6f8-1a3b-4c5d-8e7f-9a0b1c2d3e4f";

/// A leaf profile that adds no extensions of its own.
struct Leaf;

impl BuilderProfile for Leaf {
    fn get_issuer(&self, _subject: &Name) -> Name {
        Name::from_str("CN=Mosaic test CA").unwrap()
    }
    fn get_subject(&self) -> Name {
        Name::from_str("CN=peer.federation.test,O=Mosaic").unwrap()
    }
    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(vec![])
    }
}

fn key() -> SigningKey {
    SigningKey::from_slice(&[0x42; 32]).unwrap()
}

fn builder() -> CertificateBuilder<Leaf> {
    let key = key();
    CertificateBuilder::new(
        Leaf,
        SerialNumber::from(0x4d6f_7361u32),
        Validity::from_now(Duration::from_secs(3600)).unwrap(),
        SubjectPublicKeyInfo::from_key(key.verifying_key()).unwrap(),
    )
    .unwrap()
}

fn build(builder: CertificateBuilder<Leaf>) -> Vec<u8> {
    builder
        .build::<_, DerSignature>(&key())
        .unwrap()
        .to_der()
        .unwrap()
}

fn raw(oid: der::oid::ObjectIdentifier, critical: bool, value: &[u8]) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).unwrap(),
    }
}

fn ids() -> (GrantId, SubjectUserId) {
    (
        GrantId::new(Uuid::parse_str(GRANT).unwrap()),
        SubjectUserId::new(Uuid::parse_str(SUBJECT).unwrap()),
    )
}

#[test]
fn add_extension_with_the_associated_oid() {
    let (grant, subject) = ids();
    let mut b = builder();
    b.add_extension(&grant).unwrap();
    b.add_extension(&subject).unwrap();
    let der = build(b);
    let identity = extract_identity(&der).unwrap();
    assert_eq!(
        identity,
        FederationIdentity {
            grant_id: grant,
            subject_user_id: subject
        }
    );

    // Both are non-critical, and their values are exactly 0C 24 <uuid>.
    let cert = Certificate::from_der(&der).unwrap();
    let exts = cert.tbs_certificate().extensions().unwrap();
    for (ext, oid, text) in [
        (&exts[0], GRANT_ID, GRANT),
        (&exts[1], SUBJECT_USER_ID, SUBJECT),
    ] {
        assert_eq!(ext.extn_id, oid);
        assert!(!ext.critical);
        assert_eq!(
            ext.extn_value.as_bytes(),
            [&[0x0C, 0x24], text.as_bytes()].concat()
        );
    }
}

#[test]
fn identity_extensions_under_an_own_pen_arc() {
    let (grant, subject) = ids();
    let identity = FederationIdentity {
        grant_id: grant,
        subject_user_id: subject,
    };
    let own = OidRegistry::for_private_enterprise(32473).unwrap();
    let mut b = builder();
    for ext in identity.extensions(&own).unwrap() {
        b.add_extension(ext).unwrap();
    }
    let der = build(b);
    assert_eq!(FederationIdentity::from_der(&der, &own).unwrap(), identity);
    assert_eq!(
        extract_identity(&der).unwrap_err().code(),
        "missing_extension"
    );
}

#[test]
fn csr_carries_the_extensions() {
    let (grant, subject) = ids();
    let mut b = RequestBuilder::new(Name::from_str("CN=peer.federation.test").unwrap()).unwrap();
    b.add_extension(&grant).unwrap();
    b.add_extension(&subject).unwrap();
    let csr = b.build::<_, DerSignature>(&key()).unwrap();
    let csr = CertReq::from_der(&csr.to_der().unwrap()).unwrap();
    let identity = FederationIdentity::from_csr(&csr, &OidRegistry::default()).unwrap();
    assert_eq!(identity.grant_id, grant);
    assert_eq!(identity.subject_user_id, subject);

    // A CSR without them is refused with the missing OID.
    let b = RequestBuilder::new(Name::from_str("CN=peer.federation.test").unwrap()).unwrap();
    let csr = b.build::<_, DerSignature>(&key()).unwrap();
    let err = FederationIdentity::from_csr(&csr, &OidRegistry::default()).unwrap_err();
    assert_eq!(err.code(), "missing_extension");
}

#[test]
fn builder_made_malformed_certificates() {
    let (grant, subject) = ids();
    let good_grant = grant.to_der_bytes();
    let cases: Vec<(Vec<Extension>, &str)> = vec![
        (
            vec![subject.extension(&OidRegistry::DEVELOPMENT).unwrap()],
            "missing_extension",
        ),
        (
            vec![
                raw(GRANT_ID, false, &good_grant),
                raw(GRANT_ID, false, &good_grant),
                raw(SUBJECT_USER_ID, false, &subject.to_der_bytes()),
            ],
            "duplicate_extension",
        ),
        (
            vec![raw(
                GRANT_ID,
                false,
                &[&[0x13, 0x24], GRANT.as_bytes()].concat(),
            )],
            "wrong_string_tag",
        ),
        (
            vec![raw(
                GRANT_ID,
                false,
                &[&[0x16, 0x24], GRANT.as_bytes()].concat(),
            )],
            "wrong_string_tag",
        ),
        (vec![raw(GRANT_ID, false, &[0x0C, 0x00])], "zero_length"),
        (
            vec![raw(
                GRANT_ID,
                false,
                &[&[0x0C, 0x23], &GRANT.as_bytes()[..35]].concat(),
            )],
            "wrong_length",
        ),
        (
            vec![raw(
                GRANT_ID,
                false,
                &[&[0x0C, 0x81, 0x24], GRANT.as_bytes()].concat(),
            )],
            "not_der",
        ),
        (
            vec![raw(GRANT_ID, false, &[&good_grant[..], &[0x00]].concat())],
            "trailing_bytes",
        ),
        (vec![raw(GRANT_ID, false, &[])], "empty_value"),
        (
            vec![raw(
                GRANT_ID,
                false,
                &[&[0x0C, 0x24], GRANT.to_uppercase().as_bytes()].concat(),
            )],
            "not_canonical_uuid",
        ),
    ];
    for (extensions, code) in cases {
        let mut b = builder();
        let with_subject = extensions.iter().any(|e| e.extn_id == SUBJECT_USER_ID);
        for ext in extensions {
            b.add_extension(ext).unwrap();
        }
        if !with_subject {
            b.add_extension(&subject).unwrap();
        }
        let der = build(b);
        let err = extract_identity(&der).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains("1.3.6.1.4.1.99999.1"), "{err}");
        let cert = Certificate::from_der(&der).unwrap();
        assert_eq!(
            FederationIdentity::from_certificate(&cert, &OidRegistry::default()).unwrap_err(),
            err
        );
    }
}

#[test]
fn a_critical_extension_is_still_read() {
    // Issuers must mark them non-critical (webpki refuses unknown critical extensions), but a critical
    // one still carries a well-formed identity, so extraction does not second-guess the TLS layer.
    let (grant, subject) = ids();
    let mut b = builder();
    b.add_extension(raw(GRANT_ID, true, &grant.to_der_bytes()))
        .unwrap();
    b.add_extension(&subject).unwrap();
    let der = build(b);
    assert_eq!(extract_identity(&der).unwrap().grant_id, grant);
}

#[test]
fn explicit_false_critical_flag_is_not_der() {
    // x509-cert's builder omits a FALSE critical flag, as DER requires; splice one in by hand.
    let (grant, subject) = ids();
    let mut b = builder();
    b.add_extension(&grant).unwrap();
    b.add_extension(&subject).unwrap();
    let der = build(b);
    // Extension: 30 L 06 n <oid> 04 26 <38 bytes>  ->  30 L+3 06 n <oid> 01 01 00 04 26 <38 bytes>
    let oid_len = u8::try_from(GRANT_ID.as_bytes().len()).unwrap();
    let oid_tlv = [&[0x06, oid_len][..], GRANT_ID.as_bytes()].concat();
    let at = der
        .windows(oid_tlv.len())
        .position(|w| w == oid_tlv)
        .unwrap();
    assert_eq!(der[at - 2], 0x30);
    let mut spliced = der[..at + oid_tlv.len()].to_vec();
    spliced.extend_from_slice(&[0x01, 0x01, 0x00]);
    spliced.extend_from_slice(&der[at + oid_tlv.len()..]);
    spliced[at - 1] += 3;
    // Re-encoding through x509-cert would drop the flag again, so fix the enclosing lengths
    // (Extensions, [3], tbsCertificate, Certificate) by hand.
    let fixed = fix_lengths(&spliced, &der, at - 2, 3);
    let err = extract_identity(&fixed).unwrap_err();
    assert_eq!(err.code(), "not_der", "{err}");
    assert!(err.to_string().contains("critical flag"), "{err}");
    // x509-cert decodes the spliced certificate (so the splice is sound) and accepts the explicit
    // FALSE; only the DER walk of `from_der` sees it.
    let cert = Certificate::from_der(&fixed).unwrap();
    assert_eq!(
        FederationIdentity::from_certificate(&cert, &OidRegistry::default())
            .unwrap()
            .grant_id,
        grant
    );
}

/// Adds `delta` to the length of every TLV of `original` that encloses `offset`, writing into
/// `spliced` (which is `original` with `delta` bytes inserted after `offset`). Only handles the
/// length forms a ~500-byte certificate uses (short, 0x81, 0x82).
fn fix_lengths(spliced: &[u8], original: &[u8], offset: usize, delta: usize) -> Vec<u8> {
    fn walk(bytes: &[u8], start: usize, end: usize, offset: usize, out: &mut Vec<(usize, usize)>) {
        let mut pos = start;
        while pos < end {
            let tag = bytes[pos];
            let (len, hdr) = match bytes[pos + 1] {
                l if l < 0x80 => (l as usize, 2),
                0x81 => (bytes[pos + 2] as usize, 3),
                0x82 => (
                    ((bytes[pos + 2] as usize) << 8) | bytes[pos + 3] as usize,
                    4,
                ),
                other => panic!("length form {other:#x}"),
            };
            if pos < offset && offset < pos + hdr + len {
                out.push((pos, hdr));
                if tag & 0x20 != 0 {
                    walk(bytes, pos + hdr, pos + hdr + len, offset, out);
                }
            }
            pos += hdr + len;
        }
    }
    let mut enclosing = vec![];
    walk(original, 0, original.len(), offset, &mut enclosing);
    let mut out = spliced.to_vec();
    for (pos, hdr) in enclosing {
        match hdr {
            2 => {
                out[pos + 1] += u8::try_from(delta).unwrap();
                assert!(out[pos + 1] < 0x80, "short form overflowed");
            }
            3 => out[pos + 2] += u8::try_from(delta).unwrap(),
            4 => {
                let len = (usize::from(out[pos + 2]) << 8 | usize::from(out[pos + 3])) + delta;
                out[pos + 2] = u8::try_from(len >> 8).unwrap();
                out[pos + 3] = u8::try_from(len & 0xFF).unwrap();
            }
            _ => unreachable!(),
        }
    }
    out
}
