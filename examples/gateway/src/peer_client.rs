//! The requesting side: enrolling with a granting gateway, and calling it over mutual TLS.
//!
//! A peer enrolled here is stored with:
//! - `endpoint_url` = `https://host:port/#root-sha256=<hex>`: where the granting gateway is, and (in the
//!   fragment, which is never sent) the root its server certificate must chain to;
//! - `cert_pem` = our client certificate for it, then the intermediates to present with it;
//! - `client_key_pem` = our private key, sealed by mosaic-store under `BETTER_AUTH_SECRET`.

use std::time::Duration;

use mosaic_ca_client::{CaError, CertificateRequest, IssuedCertificate};
use mosaic_oid::{FederationIdentity, GrantId, OidRegistry, SubjectUserId};
use mosaic_store::{CertSerial, ClientKeyPem, NewPeer, Peer, PeerCertificate, Store};
use serde::Serialize;
use time::OffsetDateTime;
use url::Url;

use crate::{
    enrollment::{
        EnrollmentRequest, EnrollmentResponse, EnrollmentUrl, ErrorBody, check_peer_name,
    },
    federation_error::FederationError,
    tls::{self, RootFingerprint},
};

/// How long a request to a peer gateway may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A fresh P-256 key and a PKCS#10 request for `name`: its CN, and its only SAN (classified as the
/// granting gateway's CA classifies it, so a name like `10.0.0.1` is an IP address SAN on both sides).
fn new_certificate_request(name: &str) -> Result<CertificateRequest, FederationError> {
    CertificateRequest::generate(name, [name]).map_err(|e| {
        FederationError::Internal(format!(
            "making our key and certificate request for {name:?}: {e} ({})",
            e.code()
        ))
    })
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

    let request = new_certificate_request(&url.peer_name)?;
    let endpoint = url.endpoint();
    let response = client
        .post(endpoint.clone())
        .json(&EnrollmentRequest {
            token: url.token.expose().to_owned(),
            csr: request.csr_pem().to_owned(),
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
    let verified = verify_enrolled(&answer, &request)?;

    let mut endpoint_url = url.base.clone();
    endpoint_url.set_fragment(Some(&format!("root-sha256={}", url.server_root)));
    // What is stored is what was verified: the leaf and the intermediates (without the root), as
    // re-encoded by the verifier.
    let certificate = PeerCertificate::new(
        format!("{}{}", verified.issued.cert_pem, verified.issued.chain_pem),
        verified.serial.clone(),
        OffsetDateTime::from(verified.issued.not_after),
    );
    let peer = NewPeer::new(name.clone(), name.clone(), endpoint_url.to_string())
        .certificate(certificate)
        .client_key(ClientKeyPem::new(request.private_key_pem().as_str()));
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
    issued: IssuedCertificate,
    serial: CertSerial,
}

/// A certificate check of mosaic-ca-client, as the gateway reports it: the check's own message and
/// its stable code (the remediation stays the gateway's: do not use this peer).
fn enrolled_certificate_error(error: &CaError) -> FederationError {
    FederationError::EnrolledCertificate(format!("{error} ({})", error.code()))
}

/// Checks the certificate the granting gateway returned before storing anything, with the same
/// verification mosaic-ca-client runs on its own issuances ([`CertificateRequest::verify_issued`]):
/// it chains to the client CA root the gateway named (for client authentication, valid now), its key
/// is ours, its CN and SAN are the name we asked for, and it carries both federation OIDs with the
/// grant and subject the gateway announced. Then, what only the gateway's answer says: the serial it
/// announced is the certificate's.
fn verify_enrolled(
    answer: &EnrollmentResponse,
    request: &CertificateRequest,
) -> Result<VerifiedCertificate, FederationError> {
    let bad = FederationError::EnrolledCertificate;
    let grant_id = answer
        .grant_id
        .parse::<GrantId>()
        .map_err(|e| bad(format!("the gateway announced an unusable grant: {e}")))?;
    let subject_user_id = answer
        .subject_user_id
        .parse::<SubjectUserId>()
        .map_err(|e| bad(format!("the gateway announced an unusable subject: {e}")))?;
    let expected = FederationIdentity {
        grant_id,
        subject_user_id,
    };
    let roots =
        tls::certificates_from_pem(answer.client_ca_root.as_bytes(), "the returned CA root")?;
    let [root] = roots.as_slice() else {
        return Err(bad(format!(
            "the answer's client_ca_root holds {} certificates; it must be exactly the one root the \
             gateway verifies client certificates against",
            roots.len()
        )));
    };
    let issued = request
        .verify_issued(
            &answer.certificate,
            &answer.chain,
            root.as_ref(),
            &expected,
            &OidRegistry::DEVELOPMENT,
        )
        .map_err(|e| enrolled_certificate_error(&e))?;
    let serial = CertSerial::parse_hex(&issued.serial).map_err(|e| bad(e.to_string()))?;
    if CertSerial::parse_hex(&answer.serial).ok().as_ref() != Some(&serial) {
        return Err(bad(format!(
            "its serial is {serial}, but the gateway announced {}",
            answer.serial
        )));
    }
    Ok(VerifiedCertificate { issued, serial })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use mosaic_ca_client::LocalCa;

    use super::*;

    const GRANT: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
    const USER: &str = "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11";

    /// What a granting gateway on the local tier answers: LocalCa issues from our CSR alone.
    fn answer_for(ca: &LocalCa, request: &CertificateRequest) -> EnrollmentResponse {
        let identity = FederationIdentity {
            grant_id: GRANT.parse().unwrap(),
            subject_user_id: USER.parse().unwrap(),
        };
        let issued = ca.issue_now(&request.issue_request(identity)).unwrap();
        EnrollmentResponse {
            gateway: "gw-a".to_owned(),
            peer: request.common_name().to_owned(),
            grant_id: GRANT.to_owned(),
            subject_user_id: USER.to_owned(),
            scope: serde_json::json!({}),
            certificate: issued.cert_pem,
            chain: issued.chain_pem,
            client_ca_root: ca.root_pem(),
            serial: issued.serial,
            not_after: String::new(),
        }
    }

    fn refused(answer: &EnrollmentResponse, request: &CertificateRequest) -> String {
        let Err(err) = verify_enrolled(answer, request) else {
            panic!("accepted");
        };
        assert_eq!(err.code(), "ENROLLED_CERTIFICATE_INVALID", "{err}");
        err.to_string()
    }

    #[test]
    fn a_well_issued_certificate_is_accepted_with_its_serial() {
        let ca = LocalCa::generate("gw-a").unwrap();
        // An IP-like peer name: CN and an IP address SAN on both sides.
        for name in ["gw-b", "10.0.0.1"] {
            let request = new_certificate_request(name).unwrap();
            let answer = answer_for(&ca, &request);
            let verified = verify_enrolled(&answer, &request).unwrap();
            assert_eq!(
                verified.serial,
                CertSerial::parse_hex(&answer.serial).unwrap()
            );
            assert_eq!(verified.issued.identity.grant_id.to_string(), GRANT);
        }
    }

    #[test]
    fn what_the_gateway_announced_must_hold() {
        let ca = LocalCa::generate("gw-a").unwrap();
        let request = new_certificate_request("gw-b").unwrap();
        let good = answer_for(&ca, &request);

        let mut other_grant = answer_for(&ca, &request);
        other_grant.grant_id = "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70".to_owned();
        let message = refused(&other_grant, &request);
        assert!(message.contains("OID_MISMATCH"), "{message}");

        let mut upper = answer_for(&ca, &request);
        upper.subject_user_id = USER.to_uppercase();
        let message = refused(&upper, &request);
        assert!(message.contains("unusable subject"), "{message}");
        assert!(message.contains("uppercase"), "{message}");

        let mut serial = answer_for(&ca, &request);
        serial.serial = "01".to_owned();
        let message = refused(&serial, &request);
        assert!(message.contains("announced 01"), "{message}");

        let mut two_roots = answer_for(&ca, &request);
        two_roots.client_ca_root = format!("{}{}", good.client_ca_root, good.client_ca_root);
        let message = refused(&two_roots, &request);
        assert!(message.contains("holds 2 certificates"), "{message}");

        let stranger = LocalCa::generate("stranger").unwrap();
        let mut other_root = answer_for(&ca, &request);
        other_root.client_ca_root = stranger.root_pem();
        let message = refused(&other_root, &request);
        assert!(message.contains("CHAIN_INVALID"), "{message}");

        // A certificate the granting gateway issued for someone else's key.
        let someone_else = new_certificate_request("gw-b").unwrap();
        let message = refused(&answer_for(&ca, &someone_else), &request);
        assert!(message.contains("KEY_MISMATCH"), "{message}");

        let mut garbage = answer_for(&ca, &request);
        garbage.certificate = "not a certificate".to_owned();
        let message = refused(&garbage, &request);
        assert!(message.contains("CERT_PARSE"), "{message}");
    }
}
