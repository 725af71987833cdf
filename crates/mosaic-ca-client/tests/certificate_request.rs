//! `CertificateRequest`: a certificate issued from its CSR by another party (here `LocalCa`, in
//! process: no server needed) is verified exactly as the crate's issuers verify their own, and each
//! kind of wrong certificate is refused with its own code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_ca_client::{
    CaError, CertificateRequest, FederationIdentity, IssuedCertificate, LocalCa, OidRegistry,
};

const NAME: &str = "peer-1.example";

fn identity() -> FederationIdentity {
    FederationIdentity {
        grant_id: "3f2504e0-4f89-41d3-9a0c-0305e82c3301".parse().unwrap(),
        subject_user_id: "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11".parse().unwrap(),
    }
}

fn request() -> CertificateRequest {
    CertificateRequest::generate(NAME, ["peer-1.example", "10.0.0.1"]).unwrap()
}

/// What a granting party returns for `request`: LocalCa issues from the CSR alone.
fn issue_for(
    ca: &LocalCa,
    request: &CertificateRequest,
    id: FederationIdentity,
) -> IssuedCertificate {
    let issued = ca.issue_now(&request.issue_request(id)).unwrap();
    assert!(issued.key.is_none(), "the issuer never had the key");
    issued
}

fn verify(
    request: &CertificateRequest,
    issued: &IssuedCertificate,
    root_der: &[u8],
    id: &FederationIdentity,
) -> Result<IssuedCertificate, CaError> {
    request.verify_issued(
        &issued.cert_pem,
        &issued.chain_pem,
        root_der,
        id,
        &OidRegistry::DEVELOPMENT,
    )
}

#[test]
fn a_certificate_issued_for_the_csr_verifies_and_gets_the_key() {
    let ca = LocalCa::generate("granting").unwrap();
    let request = request();
    let issued = issue_for(&ca, &request, identity());
    let verified = verify(&request, &issued, ca.root_der(), &identity()).unwrap();
    assert_eq!(verified.identity, identity());
    assert_eq!(verified.serial, issued.serial);
    assert_eq!(verified.cert_der, issued.cert_der);
    assert_eq!(verified.not_after, issued.not_after);
    let key = verified
        .key
        .as_ref()
        .expect("the request's key is attached");
    assert_eq!(key.as_str(), request.private_key_pem().as_str());
    assert!(!format!("{verified:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_certificate_for_another_key_is_key_mismatch() {
    let ca = LocalCa::generate("granting").unwrap();
    let ours = request();
    let theirs = request();
    let issued = issue_for(&ca, &theirs, identity());
    let err = verify(&ours, &issued, ca.root_der(), &identity()).unwrap_err();
    assert_eq!(err.code(), "KEY_MISMATCH", "{err}");
    assert!(!err.remediation().is_empty());
}

#[test]
fn another_identity_is_oid_mismatch_and_another_arc_is_oid_missing() {
    let ca = LocalCa::generate("granting").unwrap();
    let request = request();
    let issued = issue_for(&ca, &request, identity());
    let expected = FederationIdentity {
        grant_id: "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70".parse().unwrap(),
        ..identity()
    };
    let err = verify(&request, &issued, ca.root_der(), &expected).unwrap_err();
    assert_eq!(err.code(), "OID_MISMATCH", "{err}");
    let message = err.to_string();
    assert!(message.contains("mosaic.federation.grantId"), "{message}");
    assert!(
        message.contains("0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70"),
        "{message}"
    );
    assert!(
        message.contains("3f2504e0-4f89-41d3-9a0c-0305e82c3301"),
        "{message}"
    );

    let expected = FederationIdentity {
        subject_user_id: "5f0c6a3e-2b7d-4c19-8e4a-7d1f9b3c2a60".parse().unwrap(),
        ..identity()
    };
    let err = verify(&request, &issued, ca.root_der(), &expected).unwrap_err();
    assert_eq!(err.code(), "OID_MISMATCH", "{err}");
    assert!(err.to_string().contains("subjectUserId"), "{err}");

    let own_arc = OidRegistry::for_private_enterprise(32473).unwrap();
    let err = request
        .verify_issued(
            &issued.cert_pem,
            &issued.chain_pem,
            ca.root_der(),
            &identity(),
            &own_arc,
        )
        .unwrap_err();
    assert_eq!(err.code(), "OID_MISSING", "{err}");
    assert!(err.to_string().contains("1.3.6.1.4.1.32473.1"), "{err}");
}

#[test]
fn another_root_or_a_missing_intermediate_is_chain_invalid() {
    let ca = LocalCa::generate("granting").unwrap();
    let stranger = LocalCa::generate("stranger").unwrap();
    let request = request();
    let issued = issue_for(&ca, &request, identity());
    let err = verify(&request, &issued, stranger.root_der(), &identity()).unwrap_err();
    assert_eq!(err.code(), "CHAIN_INVALID", "{err}");
    assert!(err.to_string().contains("unknown issuer"), "{err}");

    let err = request
        .verify_issued(
            &issued.cert_pem,
            "",
            ca.root_der(),
            &identity(),
            &OidRegistry::DEVELOPMENT,
        )
        .unwrap_err();
    assert_eq!(err.code(), "CHAIN_INVALID", "{err}");

    let err = verify(&request, &issued, b"not a certificate", &identity()).unwrap_err();
    assert_eq!(err.code(), "CONFIG", "{err}");
}

#[test]
fn garbage_pem_is_cert_parse_and_never_panics() {
    let ca = LocalCa::generate("granting").unwrap();
    let request = request();
    let issued = issue_for(&ca, &request, identity());
    let two = format!("{}{}", issued.cert_pem, issued.cert_pem);
    let bad_base64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    let unterminated = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    let not_der = "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
    let key_only = request.private_key_pem().as_str();
    for (certificate, chain, what) in [
        ("", issued.chain_pem.as_str(), "no PEM CERTIFICATE block"),
        (
            "garbage",
            issued.chain_pem.as_str(),
            "no PEM CERTIFICATE block",
        ),
        (
            key_only,
            issued.chain_pem.as_str(),
            "no PEM CERTIFICATE block",
        ),
        (
            two.as_str(),
            issued.chain_pem.as_str(),
            "2 PEM CERTIFICATE blocks",
        ),
        (bad_base64, issued.chain_pem.as_str(), "base64"),
        (unterminated, issued.chain_pem.as_str(), "END"),
        (not_der, issued.chain_pem.as_str(), "certificate"),
        (issued.cert_pem.as_str(), bad_base64, "the chain"),
        (issued.cert_pem.as_str(), not_der, "chain certificate"),
    ] {
        let err = request
            .verify_issued(
                certificate,
                chain,
                ca.root_der(),
                &identity(),
                &OidRegistry::DEVELOPMENT,
            )
            .unwrap_err();
        assert_eq!(
            err.code(),
            "CERT_PARSE",
            "{certificate:?} / {chain:?}: {err}"
        );
        assert!(err.to_string().contains(what), "{err}");
        // The message never quotes a private key.
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
