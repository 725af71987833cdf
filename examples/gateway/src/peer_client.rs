//! The requesting side: enrolling with a granting gateway, and calling it over mutual TLS.
//!
//! A peer enrolled here is stored with:
//! - `endpoint_url` = `https://host:port/#root-sha256=<hex>`: where the granting gateway is, and (in the
//!   fragment, which is never sent) the root its server certificate must chain to;
//! - `cert_pem` = our client certificate for it, then the intermediates to present with it;
//! - `client_key_pem` = our private key, sealed by mosaic-store under `BETTER_AUTH_SECRET`.

use std::{str::FromStr, sync::Arc, time::Duration};

use der::{Decode, Encode, EncodePem, asn1::Ia5String, pem::LineEnding};
use mosaic_oid::{FederationIdentity, OidRegistry};
use mosaic_store::{CertSerial, ClientKeyPem, NewPeer, Peer, PeerCertificate, Store};
use p256::{
    ecdsa::{DerSignature, SigningKey},
    elliptic_curve::Generate,
    pkcs8::EncodePrivateKey,
};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::UnixTime;
use serde::Serialize;
use time::OffsetDateTime;
use url::Url;
use x509_cert::{
    Certificate,
    builder::{Builder, RequestBuilder},
    ext::pkix::{SubjectAltName, name::GeneralName},
    name::Name,
};
use zeroize::Zeroizing;

use crate::{
    enrollment::{
        EnrollmentRequest, EnrollmentResponse, EnrollmentUrl, ErrorBody, check_peer_name,
    },
    federation_error::FederationError,
    tls::{self, RootFingerprint},
};

/// How long a request to a peer gateway may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A fresh P-256 key and a PKCS#10 request for `name` (CN and only DNS SAN, as the granting gateway's
/// CA expects).
///
/// Hand-written on `x509_cert::request::RequestBuilder` because mosaic-ca-client keeps its CSR
/// generator private; it belongs there (`mosaic_ca_client::generate_csr`) once it is public.
fn new_key_and_csr(name: &str) -> Result<(Zeroizing<String>, String, Vec<u8>), FederationError> {
    let internal =
        |what: &str, e: &dyn std::fmt::Display| FederationError::Internal(format!("{what}: {e}"));
    let key = SigningKey::try_generate_from_rng(&mut getrandom::SysRng)
        .map_err(|e| internal("generating a key", &e))?;
    let subject =
        Name::from_str(&format!("CN={name}")).map_err(|e| internal("the CSR subject", &e))?;
    let mut builder = RequestBuilder::new(subject).map_err(|e| internal("starting the CSR", &e))?;
    let san = SubjectAltName(vec![GeneralName::DnsName(
        Ia5String::new(name).map_err(|e| internal("the CSR's SAN", &e))?,
    )]);
    builder
        .add_extension(&san)
        .map_err(|e| internal("the CSR's SAN", &e))?;
    let csr = builder
        .build::<_, DerSignature>(&key)
        .map_err(|e| internal("signing the CSR", &e))?;
    let csr_pem = csr
        .to_pem(LineEnding::LF)
        .map_err(|e| internal("encoding the CSR", &e))?;
    let spki = csr
        .info
        .public_key
        .to_der()
        .map_err(|e| internal("encoding the public key", &e))?;
    let key_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| internal("encoding the key", &e))?;
    Ok((Zeroizing::new(key_pem.as_str().to_owned()), csr_pem, spki))
}

/// What `enroll` did.
#[derive(Debug, Serialize)]
pub(crate) struct Enrolled {
    /// The local name of the granting gateway.
    pub(crate) peer: String,
    /// Where it is.
    pub(crate) endpoint: String,
    /// The grant our certificate carries.
    pub(crate) grant_id: String,
    /// On whose behalf.
    pub(crate) subject_user_id: String,
    /// The grant's scope.
    pub(crate) scope: serde_json::Value,
    /// Our certificate's serial.
    pub(crate) serial: String,
    /// Its expiry.
    pub(crate) not_after: String,
}

fn http_client(
    pin: RootFingerprint,
    identity: Option<(
        Vec<rustls_pki_types::CertificateDer<'static>>,
        rustls_pki_types::PrivateKeyDer<'static>,
    )>,
) -> Result<reqwest::Client, FederationError> {
    let config = tls::client_config(pin, identity)?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| FederationError::Internal(format!("building the HTTPS client: {e}")))
}

/// A transport error, with the TLS cause spelled out (reqwest's own message is "error sending request").
fn unreachable(url: &Url, error: &reqwest::Error) -> FederationError {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    FederationError::PeerUnreachable {
        url: url.to_string(),
        reason,
    }
}

/// Reads an error answer.
async fn refusal(response: reqwest::Response) -> FederationError {
    let status = response.status().as_u16();
    match response.json::<ErrorBody>().await {
        Ok(body) => FederationError::PeerRefused {
            status,
            code: body.error,
            message: body.message,
            remediation: body.remediation,
        },
        Err(_) => FederationError::PeerRefused {
            status,
            code: "unexpected".to_owned(),
            message: "the answer is not a Mosaic gateway error".to_owned(),
            remediation: None,
        },
    }
}

/// Enrolls with the gateway of `url`, verifies what it returns, and stores it as peer `local_name`
/// (default: the name the granting gateway gives itself).
pub(crate) async fn enroll(
    store: &Store,
    url: &EnrollmentUrl,
    local_name: Option<&str>,
) -> Result<Enrolled, FederationError> {
    check_peer_name(&url.peer_name)?;
    let client = http_client(url.server_root, None)?;

    // First, over the pinned TLS, learn the gateway's name and make sure the local name is free: the
    // token is single use, so nothing that can be checked before spending it is checked after.
    let name = match local_name {
        Some(name) => name.to_owned(),
        None => gateway_name(&client, url).await?,
    };
    check_peer_name(&name).map_err(|_| {
        FederationError::usage(
            format!("{name:?} is not a usable local name for the granting gateway"),
            "pass --name NAME (1 to 64 characters of a-z, 0-9, '-' and '.')",
        )
    })?;
    if store.get_peer_by_name(&name).await?.is_some() {
        return Err(FederationError::usage(
            format!("a peer named {name:?} already exists here"),
            "pass --name NAME to store the granting gateway under another name; the enrollment URL is still unused",
        ));
    }

    let (key_pem, csr_pem, csr_spki) = new_key_and_csr(&url.peer_name)?;
    let endpoint = url.endpoint();
    let response = client
        .post(endpoint.clone())
        .json(&EnrollmentRequest {
            token: url.token.expose().to_owned(),
            csr: csr_pem,
        })
        .send()
        .await
        .map_err(|e| unreachable(&endpoint, &e))?;
    if response.status() != reqwest::StatusCode::CREATED {
        return Err(refusal(response).await);
    }
    let answer: EnrollmentResponse = response.json().await.map_err(|e| {
        FederationError::EnrolledCertificate(format!(
            "the answer is not an enrollment response: {e}"
        ))
    })?;
    let verified = verify_enrolled(&answer, &csr_spki, &url.peer_name)?;

    let mut endpoint_url = url.base.clone();
    endpoint_url.set_fragment(Some(&format!("root-sha256={}", url.server_root)));
    let certificate = PeerCertificate::new(
        format!("{}{}", answer.certificate, answer.chain),
        verified.serial.clone(),
        verified.not_after,
    );
    let peer = NewPeer::new(name.clone(), name.clone(), endpoint_url.to_string())
        .certificate(certificate)
        .client_key(ClientKeyPem::new(key_pem.as_str()));
    store.insert_peer(&peer).await?;
    Ok(Enrolled {
        peer: name,
        endpoint: url.base.to_string(),
        grant_id: answer.grant_id,
        subject_user_id: answer.subject_user_id,
        scope: answer.scope,
        serial: verified.serial.to_string(),
        not_after: answer.not_after,
    })
}

struct VerifiedCertificate {
    serial: CertSerial,
    not_after: OffsetDateTime,
}

/// Checks the certificate the granting gateway returned before storing anything: it chains to the
/// client CA root the gateway named (for client authentication, valid now), its key is ours, its CN is
/// the name we asked for, and it carries both federation OIDs with the grant and subject announced.
fn verify_enrolled(
    answer: &EnrollmentResponse,
    csr_spki: &[u8],
    name: &str,
) -> Result<VerifiedCertificate, FederationError> {
    let bad = |reason: String| FederationError::EnrolledCertificate(reason);
    let leaf =
        tls::certificates_from_pem(answer.certificate.as_bytes(), "the returned certificate")?
            .into_iter()
            .next()
            .ok_or_else(|| bad("no certificate".to_owned()))?;
    let intermediates = if answer.chain.trim().is_empty() {
        Vec::new()
    } else {
        tls::certificates_from_pem(answer.chain.as_bytes(), "the returned chain")?
    };
    let roots =
        tls::certificates_from_pem(answer.client_ca_root.as_bytes(), "the returned CA root")?;
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(root)
            .map_err(|e| bad(format!("the CA root is unusable: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), tls::provider())
        .build()
        .map_err(|e| bad(format!("the CA root is unusable: {e}")))?;
    verifier
        .verify_client_cert(&leaf, &intermediates, UnixTime::now())
        .map_err(|e| {
            bad(format!(
                "it does not verify as a client certificate under the CA root: {e}"
            ))
        })?;

    let cert =
        Certificate::from_der(leaf.as_ref()).map_err(|e| bad(format!("it does not parse: {e}")))?;
    let tbs = cert.tbs_certificate();
    let spki = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| bad(format!("its key does not encode: {e}")))?;
    if spki != csr_spki {
        return Err(bad(
            "it is for another key than the one we generated".to_owned()
        ));
    }
    if tbs.subject().to_string() != format!("CN={name}") {
        return Err(bad(format!(
            "it names {} instead of CN={name}",
            tbs.subject()
        )));
    }
    let identity = FederationIdentity::from_der(leaf.as_ref(), &OidRegistry::DEVELOPMENT)
        .map_err(|e| bad(format!("its federation OIDs are unusable: {e}")))?;
    if identity.grant_id.to_string() != answer.grant_id
        || identity.subject_user_id.to_string() != answer.subject_user_id
    {
        return Err(bad(format!(
            "it carries grant {} and subject {}, but the gateway announced grant {} and subject {}",
            identity.grant_id, identity.subject_user_id, answer.grant_id, answer.subject_user_id
        )));
    }
    let serial = CertSerial::from_be_bytes(tbs.serial_number().as_bytes())
        .map_err(|e| bad(e.to_string()))?;
    if CertSerial::parse_hex(&answer.serial).ok().as_ref() != Some(&serial) {
        return Err(bad(format!(
            "its serial is {serial}, but the gateway announced {}",
            answer.serial
        )));
    }
    let not_after = OffsetDateTime::from(tbs.validity().not_after.to_system_time());
    Ok(VerifiedCertificate { serial, not_after })
}

/// The granting gateway's name, from its `/healthz` (over the TLS pinned by the enrollment URL).
async fn gateway_name(
    client: &reqwest::Client,
    url: &EnrollmentUrl,
) -> Result<String, FederationError> {
    let mut health = url.base.clone();
    health.set_path("/healthz");
    let response = client
        .get(health.clone())
        .send()
        .await
        .map_err(|e| unreachable(&health, &e))?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body.get("gateway")
        .and_then(|g| g.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            FederationError::usage(
                "the granting gateway does not say its name",
                "pass --name NAME to choose the local name of the granting gateway",
            )
        })
}

/// Where a stored peer is, and the root its server certificate must chain to.
fn peer_endpoint(peer: &Peer) -> Result<(Url, RootFingerprint), FederationError> {
    let broken = |what: &str| {
        FederationError::usage(
            format!(
                "peer {} has no usable endpoint ({what}): {}",
                peer.common_name, peer.endpoint_url
            ),
            "enroll again with a new enrollment URL (`mosaic federation peer enroll`)",
        )
    };
    let url = Url::parse(&peer.endpoint_url).map_err(|_| broken("not a URL"))?;
    let pin = url
        .fragment()
        .and_then(|f| f.strip_prefix("root-sha256="))
        .ok_or_else(|| broken("no #root-sha256= pin"))?
        .parse::<RootFingerprint>()
        .map_err(|_| broken("a malformed #root-sha256= pin"))?;
    let mut base = url.clone();
    base.set_fragment(None);
    Ok((base, pin))
}

/// The answer of a call to a peer gateway.
#[derive(Debug)]
pub(crate) struct PeerAnswer {
    /// The HTTP status.
    pub(crate) status: u16,
    /// The JSON body (or `null`).
    pub(crate) body: serde_json::Value,
}

/// `GET <path>` on the peer gateway `name`, over mutual TLS with our stored certificate and key.
pub(crate) async fn call(
    store: &Store,
    name: &str,
    path: &str,
) -> Result<PeerAnswer, FederationError> {
    let Some(peer) = store.get_peer_by_name(name).await? else {
        return Err(FederationError::usage(
            format!("no peer named {name:?}"),
            "list peers with `mosaic federation peer list`; enroll with `mosaic federation peer enroll <enrollment-url>`",
        ));
    };
    let (Some(certificate), Some(key)) = (&peer.certificate, &peer.client_key) else {
        return Err(FederationError::usage(
            format!(
                "peer {name:?} has no client certificate and key here (it enrolled with us, not we with it)"
            ),
            "call peers this gateway enrolled with; `mosaic federation peer list` shows which",
        ));
    };
    let (base, pin) = peer_endpoint(&peer)?;
    let chain = tls::certificates_from_pem(
        certificate.cert_pem.as_bytes(),
        "the stored client certificate",
    )?;
    let key = tls::private_key_from_pem(key.expose().as_bytes(), "the stored client key")?;
    let client = http_client(pin, Some((chain, key)))?;
    let url = base.join(path).map_err(|e| {
        FederationError::usage(
            format!("{path:?} is not a path: {e}"),
            "pass a path like /api/federation/v1/whoami",
        )
    })?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    let status = response.status().as_u16();
    let body = response
        .json::<serde_json::Value>()
        .await
        .unwrap_or(serde_json::Value::Null);
    Ok(PeerAnswer { status, body })
}
