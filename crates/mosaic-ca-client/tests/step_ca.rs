//! Against the real step-ca of the native stack (`infra/native/up`, then `eval "$(infra/native/env)"`).
//!
//! Every test here needs STEP_CA_URL, STEP_CA_PROVISIONER_KEY_JSON, STEP_CA_PROVISIONER_PASSWORD and
//! STEP_CA_ROOT_CERT_PATH and fails (never passes) without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashSet,
    net::TcpListener,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use mosaic_ca_client::{
    CaError, ENV_PROVISIONER_KEY_JSON, ENV_PROVISIONER_PASSWORD, ENV_ROOT_CERT_PATH, ENV_URL,
    GRANT_ID_CLAIM, IssueRequest, Issuer, LocalCa, SUBJECT_USER_ID_CLAIM, StepCaClient,
    StepCaConfig, TokenOptions,
};

const NEEDS_STACK: &str = "needs the federated stack: run infra/test";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the stack with infra/native/up and eval \"$(infra/native/env)\" ({NEEDS_STACK})")
    })
}

/// The stack's variables, with `change` applied.
fn config_with(change: impl Fn(&str) -> Option<Option<String>>) -> Result<StepCaConfig, CaError> {
    for name in [
        ENV_URL,
        ENV_PROVISIONER_KEY_JSON,
        ENV_PROVISIONER_PASSWORD,
        ENV_ROOT_CERT_PATH,
    ] {
        var(name);
    }
    StepCaConfig::from_vars(|name| change(name).unwrap_or_else(|| std::env::var(name).ok()))
}

/// A client for the stack's CA. The native stack's provisioner allows 1 minute to 30 days.
fn client() -> StepCaClient {
    let config = config_with(|_| None).unwrap();
    let config = rebuild(config, |b| {
        b.validity_bounds(Duration::from_secs(60), Duration::from_secs(720 * 3600))
    });
    StepCaClient::new(config).unwrap()
}

/// Re-creates a config through the builder from the environment, applying `f`.
fn rebuild(
    _base: StepCaConfig,
    f: impl FnOnce(mosaic_ca_client::StepCaConfigBuilder) -> mosaic_ca_client::StepCaConfigBuilder,
) -> StepCaConfig {
    let builder = StepCaConfig::builder()
        .url(var(ENV_URL))
        .provisioner_key_json(var(ENV_PROVISIONER_KEY_JSON))
        .provisioner_password(var(ENV_PROVISIONER_PASSWORD))
        .root_cert_path(var(ENV_ROOT_CERT_PATH));
    f(builder).build().unwrap()
}

fn uuid() -> String {
    mosaic_oid::Uuid::new_v4().to_string()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn health_answers_over_the_pinned_root() {
    client().health().await.unwrap();
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn issues_a_certificate_that_openssl_verifies_with_the_extension_bytes() {
    let client = client();
    let grant = uuid();
    let user = uuid();
    let cert = client
        .issue(&IssueRequest::new(&grant, &user, "peer-1.mosaic.test"))
        .await
        .unwrap();
    assert_eq!(cert.identity.grant_id.to_string(), grant);
    assert_eq!(cert.identity.subject_user_id.to_string(), user);
    assert!(cert.key.is_some());

    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    std::fs::write(path("cert.pem"), &cert.cert_pem).unwrap();
    std::fs::write(path("chain.pem"), &cert.chain_pem).unwrap();
    std::fs::write(path("key.pem"), cert.key.as_ref().unwrap().as_bytes()).unwrap();
    let root = var(ENV_ROOT_CERT_PATH);

    // The chain, checked by an independent implementation, for client authentication.
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        &root,
        "-untrusted",
        &path("chain.pem"),
        "-purpose",
        "sslclient",
        &path("cert.pem"),
    ]);
    assert!(ok && out.contains(": OK"), "openssl verify: {out}");
    // ... and not against another root.
    let other = LocalCa::generate("not the CA").unwrap();
    std::fs::write(path("other-root.pem"), other.root_pem()).unwrap();
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        &path("other-root.pem"),
        "-untrusted",
        &path("chain.pem"),
        &path("cert.pem"),
    ]);
    assert!(!ok, "must not verify against another root: {out}");

    // The key we got is the certificate's key.
    let (_, cert_pub) = openssl(&["x509", "-in", &path("cert.pem"), "-noout", "-pubkey"]);
    let (_, key_pub) = openssl(&["pkey", "-in", &path("key.pem"), "-pubout"]);
    assert_eq!(cert_pub, key_pub);

    // The profile: clientAuth, digitalSignature, the SAN, both OIDs non-critical.
    let (ok, text) = openssl(&["x509", "-in", &path("cert.pem"), "-noout", "-text"]);
    assert!(ok, "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(text.contains("DNS:peer-1.mosaic.test"), "{text}");
    assert!(text.contains("Subject: CN = peer-1.mosaic.test"), "{text}");
    for oid in ["1.3.6.1.4.1.99999.1", "1.3.6.1.4.1.99999.2"] {
        assert!(
            text.contains(&format!("{oid}:")),
            "{oid} missing or critical:\n{text}"
        );
        assert!(
            !text.contains(&format!("{oid}: critical")),
            "{oid} is critical:\n{text}"
        );
    }

    // The raw extension values: 0C 24 followed by the 36 ASCII bytes of each UUID.
    let (ok, asn1) = openssl(&["asn1parse", "-in", &path("cert.pem")]);
    assert!(ok, "{asn1}");
    for (oid, value) in [
        ("1.3.6.1.4.1.99999.1", &grant),
        ("1.3.6.1.4.1.99999.2", &user),
    ] {
        let expected = format!("0C24{}", hex::encode_upper(value.as_bytes()));
        let line = asn1
            .lines()
            .skip_while(|l| !l.contains(&format!(":{oid}")))
            .nth(1)
            .unwrap_or_default();
        assert!(
            line.contains("OCTET STRING") && line.contains(&expected),
            "{oid}: {line}\n{asn1}"
        );
    }
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_callers_csr_and_a_requested_validity_are_honoured() {
    let client = client();
    // The caller's own CSR, made by openssl.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem").display().to_string();
    let csr = dir.path().join("r.pem").display().to_string();
    let (ok, out) = openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/CN=peer-2.mosaic.test",
        "-addext",
        "subjectAltName=DNS:peer-2.mosaic.test,IP:127.0.0.2",
    ]);
    assert!(ok, "{out}");
    let request = IssueRequest::new(uuid(), uuid(), "peer-2.mosaic.test")
        .with_sans(["peer-2.mosaic.test", "127.0.0.2"])
        .with_csr(std::fs::read(&csr).unwrap())
        .with_validity(Duration::from_secs(600));
    let cert = client.issue(&request).await.unwrap();
    assert!(cert.key.is_none());
    // step-ca backdates notBefore by a minute.
    let lifetime = cert.not_after.duration_since(cert.not_before).unwrap();
    assert!(
        (Duration::from_secs(600)..=Duration::from_secs(661)).contains(&lifetime),
        "{lifetime:?}"
    );
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_reused_token_is_ca_unauthorized() {
    let client = client();
    let prepared = client
        .prepare(
            &IssueRequest::new(uuid(), uuid(), "replay.mosaic.test"),
            &TokenOptions::default(),
        )
        .unwrap();
    client.submit(&prepared).await.unwrap();
    let err = client.submit(&prepared).await.unwrap_err();
    eprintln!("{}: {err}", err.code());
    assert_eq!(err.code(), "CA_UNAUTHORIZED", "{err}");
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!err.remediation().is_empty());
    assert!(
        !err.to_string().contains(prepared.token()),
        "the token must not appear in errors"
    );
}

/// A plain private JWK of a fresh key, optionally claiming another key's kid.
fn foreign_jwk(kid: Option<&str>) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut d = [0u8; 32];
    getrandom::fill(&mut d).unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
    let point = key.verifying_key().to_sec1_point(false);
    let mut jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256",
        "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()), "d": b64(&d),
    });
    if let Some(kid) = kid {
        jwk["kid"] = kid.into();
    }
    jwk.to_string()
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_wrong_provisioner_key_is_ca_unauthorized() {
    let real_kid = client().config().provisioner_kid().to_owned();
    // A key the CA does not know, under its own kid (no such provisioner) and under the real kid
    // (the signature does not verify).
    for kid in [None, Some(real_kid.as_str())] {
        let jwk = foreign_jwk(kid);
        let config =
            config_with(|name| (name == ENV_PROVISIONER_KEY_JSON).then(|| Some(jwk.clone())))
                .unwrap();
        let err = StepCaClient::new(config)
            .unwrap()
            .issue(&IssueRequest::new(uuid(), uuid(), "intruder.mosaic.test"))
            .await
            .unwrap_err();
        eprintln!("{}: {err}", err.code());
        assert_eq!(err.code(), "CA_UNAUTHORIZED", "kid {kid:?}: {err}");
    }
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_wrong_root_is_ca_tls() {
    let other = LocalCa::generate("wrong root").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, other.root_pem()).unwrap();
    let root = root.display().to_string();
    let config =
        config_with(|name| (name == ENV_ROOT_CERT_PATH).then(|| Some(root.clone()))).unwrap();
    let client = StepCaClient::new(config).unwrap();
    let err = client
        .issue(&IssueRequest::new(uuid(), uuid(), "peer.mosaic.test"))
        .await
        .unwrap_err();
    eprintln!("{}: {err}", err.code());
    assert_eq!(err.code(), "CA_TLS", "{err}");
    assert!(err.to_string().to_lowercase().contains("issuer"), "{err}");
    assert_eq!(client.health().await.unwrap_err().code(), "CA_TLS");
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_wrong_password_is_key_decrypt() {
    let err = config_with(|name| {
        (name == ENV_PROVISIONER_PASSWORD).then(|| Some("not-the-dev-password".into()))
    })
    .unwrap_err();
    assert_eq!(err.code(), "KEY_DECRYPT", "{err}");
    assert!(!err.to_string().contains(&var(ENV_PROVISIONER_PASSWORD)));
    let err = config_with(|name| (name == ENV_PROVISIONER_PASSWORD).then_some(None)).unwrap_err();
    assert_eq!(err.code(), "CONFIG", "{err}");
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_token_without_a_federation_claim_is_refused_by_the_ca() {
    let client = client();
    for claim in [GRANT_ID_CLAIM, SUBJECT_USER_ID_CLAIM] {
        let options = TokenOptions {
            omit_claims: vec![claim.to_owned()],
            ..TokenOptions::default()
        };
        let prepared = client
            .prepare(
                &IssueRequest::new(uuid(), uuid(), "no-claim.mosaic.test"),
                &options,
            )
            .unwrap();
        let err = client.submit(&prepared).await.unwrap_err();
        eprintln!("{}: {err}", err.code());
        assert_eq!(err.code(), "CA_REJECTED", "{claim}: {err}");
        assert!(
            err.to_string().contains(claim),
            "the CA's message names the claim: {err}"
        );
        assert!(
            err.remediation().contains("template"),
            "{}",
            err.remediation()
        );
    }
    // A token with a non-canonical id (which this client would never send) is refused too.
    let options = TokenOptions {
        override_claims: vec![(
            GRANT_ID_CLAIM.to_owned(),
            "3F2504E0-4F89-41D3-9A0C-0305E82C3301".into(),
        )],
        ..TokenOptions::default()
    };
    let prepared = client
        .prepare(
            &IssueRequest::new(uuid(), uuid(), "upper.mosaic.test"),
            &options,
        )
        .unwrap();
    assert_eq!(
        client.submit(&prepared).await.unwrap_err().code(),
        "CA_REJECTED"
    );
}

/// A listener that counts the connections it accepts.
fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (port, count)
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_non_uuid_id_is_refused_before_any_request() {
    let (port, count) = counting_listener();
    let url = format!("https://127.0.0.1:{port}");
    let config = config_with(|name| (name == ENV_URL).then(|| Some(url.clone()))).unwrap();
    let client = StepCaClient::new(config).unwrap();
    let err = client
        .issue(&IssueRequest::new("not-a-uuid", uuid(), "peer"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_GRANT_ID", "{err}");
    let err = client
        .issue(&IssueRequest::new(uuid(), "{5e1f}", "peer"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_SUBJECT_USER_ID", "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "no connection may be made for an invalid id"
    );
    // The control: a valid request does reach the listener (which hangs up: unreachable, not TLS).
    let err = client
        .issue(&IssueRequest::new(uuid(), uuid(), "peer"))
        .await
        .unwrap_err();
    assert!(["CA_UNREACHABLE", "CA_TLS"].contains(&err.code()), "{err}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        count.load(Ordering::SeqCst) >= 1,
        "the control request must have connected"
    );
}

#[tokio::test]
#[ignore = "needs the federated stack: run infra/test"]
async fn a_stopped_ca_is_ca_unreachable_within_the_timeout() {
    // A closed port: what a stopped step-ca leaves behind.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let config = config_with(|name| (name == ENV_URL).then(|| Some(url.clone()))).unwrap();
    let timeout = config.connect_timeout();
    let started = Instant::now();
    let err = StepCaClient::new(config)
        .unwrap()
        .issue(&IssueRequest::new(uuid(), uuid(), "peer"))
        .await
        .unwrap_err();
    eprintln!("{}: {err}", err.code());
    assert_eq!(err.code(), "CA_UNREACHABLE", "{err}");
    assert!(started.elapsed() < timeout, "took {:?}", started.elapsed());
    assert!(err.to_string().contains(&url), "{err}");

    // A CA that accepts the connection and never answers: the configured timeout applies.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let config = rebuild(config_with(|_| None).unwrap(), |b| {
        b.url(url.clone())
            .connect_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(1))
    });
    let started = Instant::now();
    let err = StepCaClient::new(config)
        .unwrap()
        .issue(&IssueRequest::new(uuid(), uuid(), "peer"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("{}: {err} (after {elapsed:?})", err.code());
    assert_eq!(err.code(), "CA_UNREACHABLE", "{err}");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "took {elapsed:?}"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the federated stack: run infra/test"]
async fn fifty_concurrent_issuances_all_succeed() {
    let issuer: Arc<dyn Issuer> = Arc::new(client());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let issuer = Arc::clone(&issuer);
        tasks.push(tokio::spawn(async move {
            let request = IssueRequest::new(uuid(), uuid(), format!("peer-{i}.mosaic.test"));
            let cert = issuer.issue(&request).await?;
            assert_eq!(cert.identity.grant_id.to_string(), request.grant_id());
            Ok::<_, CaError>(cert.serial)
        }));
    }
    let mut serials = HashSet::new();
    for task in tasks {
        serials.insert(task.await.unwrap().unwrap());
    }
    assert_eq!(serials.len(), 50, "every certificate has its own serial");
}
