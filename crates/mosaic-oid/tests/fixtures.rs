//! The openssl-made certificates of `tests/fixtures/` (made by `tests/fixtures/generate.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use der::Decode;
use mosaic_oid::{
    Error, FederationIdentity, GRANT_ID, OidArc, OidRegistry, certificate_der, extract_identity,
};
use x509_cert::Certificate;

const GRANT: &str = "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70";
const SUBJECT: &str = "5f0c6a3e-2b7d-4c19-8e4a-7d1f9b3c2a60";

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_good(identity: FederationIdentity) {
    assert_eq!(identity.grant_id.to_string(), GRANT);
    assert_eq!(identity.subject_user_id.to_string(), SUBJECT);
}

#[test]
fn good_certificate_in_every_form() {
    let der = fixture("good.der");
    assert!(
        (900..1200).contains(&der.len()),
        "about 1 KiB: {}",
        der.len()
    );
    let registry = OidRegistry::default();
    check_good(extract_identity(&der).unwrap());
    check_good(FederationIdentity::from_der(&der, &registry).unwrap());
    check_good(FederationIdentity::from_pem(&fixture("good.pem"), &registry).unwrap());
    check_good(FederationIdentity::from_pem_or_der(&fixture("good.pem"), &registry).unwrap());
    check_good(FederationIdentity::from_pem_or_der(&der, &registry).unwrap());
    // A bundle: the leaf first, then the CA. The leaf is read.
    check_good(FederationIdentity::from_pem(&fixture("good-chain.pem"), &registry).unwrap());
    let cert = Certificate::from_der(&der).unwrap();
    check_good(FederationIdentity::from_certificate(&cert, &registry).unwrap());
    assert_eq!(
        certificate_der(&fixture("good.pem")).unwrap().as_ref(),
        der.as_slice()
    );
}

#[test]
fn own_pen_arc_needs_its_registry() {
    let der = fixture("own-pen.der");
    let own = OidRegistry::new("1.3.6.1.4.1.32473.7".parse::<OidArc>().unwrap());
    check_good(FederationIdentity::from_der(&der, &own).unwrap());
    // The development registry does not find its OIDs there, and says which OID it looked for.
    let err = extract_identity(&der).unwrap_err();
    assert_eq!(err.code(), "missing_extension");
    assert!(err.to_string().contains("1.3.6.1.4.1.99999.1"), "{err}");
    // And the own-arc registry does not accept the development arc.
    let err = FederationIdentity::from_der(&fixture("good.der"), &own).unwrap_err();
    assert!(err.to_string().contains("1.3.6.1.4.1.32473.7.1"), "{err}");
}

/// Every malformed fixture, the error code it must give, and a phrase its message must contain.
const MALFORMED: &[(&str, &str, &str)] = &[
    (
        "malformed-missing.der",
        "missing_extension",
        "has no extension",
    ),
    ("malformed-duplicate.der", "duplicate_extension", "2 times"),
    (
        "malformed-printable-string.der",
        "wrong_string_tag",
        "PrintableString (tag 0x13)",
    ),
    (
        "malformed-ia5-string.der",
        "wrong_string_tag",
        "IA5String (tag 0x16)",
    ),
    ("malformed-zero-length.der", "zero_length", "length 0"),
    (
        "malformed-length-35.der",
        "wrong_length",
        "length 35, expected 36",
    ),
    ("malformed-ber-long-form.der", "not_der", "long-form length"),
    (
        "malformed-truncated.der",
        "truncated",
        "declares 36 bytes but 30 follow",
    ),
    (
        "malformed-trailing-bytes.der",
        "trailing_bytes",
        "1 trailing byte",
    ),
    (
        "malformed-not-uuid.der",
        "not_canonical_uuid",
        "not a canonical UUID",
    ),
    (
        "malformed-uppercase-uuid.der",
        "not_canonical_uuid",
        "uppercase",
    ),
];

#[test]
fn each_malformed_fixture_has_its_own_clear_error() {
    let registry = OidRegistry::default();
    for (name, code, phrase) in MALFORMED {
        let der = fixture(name);
        let err = extract_identity(&der).unwrap_err();
        assert_eq!(err.code(), *code, "{name}: {err}");
        let message = err.to_string();
        assert!(
            message.contains(phrase),
            "{name}: {message:?} lacks {phrase:?}"
        );
        assert!(
            message.contains("1.3.6.1.4.1.99999.1 (mosaic.federation.grantId)"),
            "{name}: {message}"
        );
        assert_eq!(err.extension().map(|e| e.oid), Some(GRANT_ID), "{name}");
        assert!(!err.remediation().is_empty());

        // x509-cert decodes every fixture (the certificate itself is well-formed), and extraction
        // from the decoded certificate gives the same error.
        let cert = Certificate::from_der(&der).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            FederationIdentity::from_certificate(&cert, &registry).unwrap_err(),
            err,
            "{name}"
        );
    }
}

#[test]
fn codes_of_the_malformed_cases_are_distinct_where_the_issue_lists_distinct_cases() {
    // The issue's list: missing, duplicated, wrong tag, zero length, length != 36, not DER,
    // trailing bytes, not a canonical UUID. Each is its own variant.
    let mut codes: Vec<&str> = MALFORMED.iter().map(|(_, code, _)| *code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 9, "{codes:?}");
}

#[test]
fn not_a_certificate() {
    for (input, code) in [
        (&b""[..], "malformed_certificate"),
        (&[0x30, 0x03, 0x02, 0x01, 0x01][..], "malformed_certificate"),
        (&b"hello"[..], "pem"),
        (
            &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
            "pem",
        ),
        (
            &b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"[..],
            "pem",
        ),
        (&b"-----BEGIN CERTIFICATE-----\nMIIB\n"[..], "pem"),
    ] {
        let err: Error =
            FederationIdentity::from_pem_or_der(input, &OidRegistry::default()).unwrap_err();
        assert_eq!(err.code(), code, "{input:?}: {err}");
        assert!(err.extension().is_none());
    }
    // A good certificate with a byte appended, or cut short.
    let mut der = fixture("good.der");
    der.push(0);
    let err = extract_identity(&der).unwrap_err();
    assert_eq!(err.code(), "malformed_certificate", "{err}");
    assert!(err.to_string().contains("after the Certificate"), "{err}");
    der.truncate(der.len() - 10);
    assert_eq!(
        extract_identity(&der).unwrap_err().code(),
        "malformed_certificate"
    );
    // The label of a non-certificate PEM block is named.
    let err = FederationIdentity::from_pem(
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        &OidRegistry::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("CERTIFICATE REQUEST"), "{err}");
}
