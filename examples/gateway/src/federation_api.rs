//! The federation HTTP API a gateway serves:
//!
//! - `POST /api/federation/v1/enrollment`: no client certificate; a CSR and an enrollment token in, a
//!   verified federation certificate out;
//! - `GET /api/federation/v1/whoami`: a client certificate chaining to the federation CA root is
//!   required, and every request is authorized from the certificate's two OIDs and its serial;
//! - `GET /healthz`: liveness and the gateway's name, no authentication.
//!
//! Status codes: enrollment with an unknown token 401, a used one 409, an expired one 410; a bad body
//! or CSR 400; a CA failure 502. Federation routes: no certificate 401, malformed federation OIDs 401,
//! an authorization refusal (grant revoked, expired, unknown, another subject, peer not active, serial
//! not the peer's current certificate) 403, the store unavailable 503 (never an allow).

use std::sync::Arc;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequestParts, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use der::Decode;
use mosaic_ca_client::{CaError, IssueRequest, Issuer};
use mosaic_oid::{FederationIdentity, OidRegistry};
use mosaic_store::{
    AuditOutcome, AuthorizationDecision, AuthorizedGrant, CertSerial, DecisionSource,
    EnrollmentToken, NewAuditEntry, PeerCertificate, PeerState, Store, StoreError,
};
use serde_json::json;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    enrollment::{ENROLLMENT_PATH, EnrollmentRequest, EnrollmentResponse, ErrorBody, WHOAMI_PATH},
    server::ClientCertificate,
};

/// The largest request body accepted (a CSR is about 500 bytes).
const MAX_BODY: usize = 64 * 1024;

/// The state every handler shares.
#[derive(Clone)]
pub(crate) struct FederationApi {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    store: Store,
    issuer: Arc<dyn Issuer>,
    gateway_name: String,
    client_ca_root_pem: String,
}

impl FederationApi {
    /// The API of a gateway named `gateway_name`, issuing through `issuer`, whose root is also the one
    /// client certificates are verified against.
    pub(crate) fn new(
        store: Store,
        issuer: Arc<dyn Issuer>,
        gateway_name: String,
    ) -> Result<Self, String> {
        let client_ca_root_pem =
            der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, issuer.root_der())
                .map_err(|e| format!("encoding the CA root as PEM: {e}"))?;
        Ok(Self {
            inner: Arc::new(ApiInner {
                store,
                issuer,
                gateway_name,
                client_ca_root_pem,
            }),
        })
    }

    /// The routes.
    pub(crate) fn router(self) -> Router {
        Router::new()
            .route(ENROLLMENT_PATH, post(enroll))
            .route(WHOAMI_PATH, get(whoami))
            .route("/healthz", get(healthz))
            .fallback(|| async {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                    .remediation("the federation API is under /api/federation/v1/")
            })
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }
}

/// An error answer: a status and a JSON [`ErrorBody`].
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                remediation: None,
            },
        }
    }

    fn remediation(mut self, text: impl Into<String>) -> Self {
        self.body.remediation = Some(text.into());
        self
    }

    fn store(what: &str, error: &StoreError) -> Self {
        tracing::error!("{what}: {error}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!("{what} failed"),
        )
        .remediation("retry later; the gateway's operator can see the cause in its log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Appends an audit entry; a failure is logged, never hidden from the operator, and never turns a
/// refusal into an allow.
async fn audit(store: &Store, entry: NewAuditEntry) {
    if let Err(error) = store.append_audit(&entry).await {
        tracing::error!(action = %entry.action, "writing the audit entry failed: {error}");
    }
}

async fn enroll(
    State(api): State<FederationApi>,
    body: Bytes,
) -> Result<(StatusCode, Json<EnrollmentResponse>), ApiError> {
    let store = &api.inner.store;
    let request: EnrollmentRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("the body is not an enrollment request: {e}"),
        )
        .remediation(
            "send {\"token\": \"<token from the enrollment URL>\", \"csr\": \"<PEM CSR>\"}",
        )
    })?;

    // 1. Claim the token: once, atomically, whoever races for it.
    let token = EnrollmentToken::from_text(request.token);
    let claimed = match store.claim_enrollment_token(&token).await {
        Ok(claimed) => claimed,
        Err(error) => {
            let (status, code) = match &error {
                StoreError::TokenUnknown => (StatusCode::UNAUTHORIZED, "enrollment_token_unknown"),
                StoreError::TokenUsed => (StatusCode::CONFLICT, "enrollment_token_used"),
                StoreError::TokenExpired => (StatusCode::GONE, "enrollment_token_expired"),
                other => return Err(ApiError::store("claiming the enrollment token", other)),
            };
            audit(
                store,
                NewAuditEntry::new("enrollment.claim", AuditOutcome::Denied)
                    .detail(json!({"reason": code})),
            )
            .await;
            let mut refusal = ApiError::new(status, code, error.to_string());
            if let Some(remediation) = error.remediation() {
                refusal = refusal.remediation(remediation);
            }
            return Err(refusal);
        }
    };
    let grant = match store.get_grant(claimed.grant_id).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the token's grant vanished",
            ));
        }
        Err(error) => return Err(ApiError::store("reading the grant", &error)),
    };
    let peer = match store.get_peer(claimed.peer_id).await {
        Ok(Some(peer)) => peer,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the token's peer vanished",
            ));
        }
        Err(error) => return Err(ApiError::store("reading the peer", &error)),
    };
    let failed = |detail: serde_json::Value| {
        NewAuditEntry::new("enrollment.issue", AuditOutcome::Failed)
            .peer(peer.id)
            .grant(grant.id)
            .subject(grant.subject_user_id)
            .detail(detail)
    };

    // 2. Issue through the tier's CA; it verifies chain, key, names and both OIDs before returning.
    let issue = IssueRequest::new(
        grant.id.to_string(),
        grant.subject_user_id.to_string(),
        peer.common_name.clone(),
    )
    .with_csr(request.csr.into_bytes());
    let issued = match api.inner.issuer.issue(&issue).await {
        Ok(issued) => issued,
        Err(error) => {
            audit(
                store,
                failed(json!({"ca_error": error.code(), "message": error.to_string()})),
            )
            .await;
            return Err(ca_refusal(&error, &peer.common_name));
        }
    };

    // 3. The OIDs once more, here, against the grant the token was for: this gateway activates nothing
    //    on a certificate that does not name exactly this grant and subject.
    let carried = FederationIdentity::from_der(&issued.cert_der, &OidRegistry::DEVELOPMENT);
    if carried.as_ref().ok()
        != Some(&FederationIdentity {
            grant_id: grant.id,
            subject_user_id: grant.subject_user_id,
        })
    {
        audit(
            store,
            failed(json!({"reason": "issued certificate does not carry the grant's OIDs"})),
        )
        .await;
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "ca_oid_mismatch",
            "the CA returned a certificate that does not carry this grant's OIDs",
        ));
    }
    let serial = CertSerial::parse_hex(&issued.serial)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "ca_bad_serial", e.to_string()))?;
    let not_after = OffsetDateTime::from(issued.not_after);
    let certificate = PeerCertificate::new(
        format!("{}{}", issued.cert_pem, issued.chain_pem),
        serial.clone(),
        not_after,
    );

    // 4. Activate the peer (or replace its certificate when it enrolls for another grant), then the grant.
    let previous_serial = peer.certificate.as_ref().map(|c| c.serial.to_string());
    let activated = match peer.state {
        PeerState::Pending => store.activate_peer(peer.id, &certificate).await,
        PeerState::Active => {
            store
                .renew_peer_certificate(peer.id, &certificate, None)
                .await
        }
        other => {
            audit(
                store,
                failed(json!({"reason": "peer not enrollable", "peer_state": other.as_str()})),
            )
            .await;
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "peer_not_enrollable",
                format!("peer {} is {other} and cannot enroll", peer.common_name),
            )
            .remediation(
                "the granting gateway's operator must create a grant for a new peer name",
            ));
        }
    };
    if let Err(error) = activated {
        audit(store, failed(json!({"reason": error.to_string()}))).await;
        return Err(ApiError::store("activating the peer", &error));
    }
    let grant = match store.activate_grant(grant.id).await {
        Ok(grant) => grant,
        Err(error @ (StoreError::InvalidTransition { .. } | StoreError::GrantExpired(_))) => {
            audit(store, failed(json!({"reason": error.to_string()}))).await;
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "grant_not_pending",
                error.to_string(),
            )
            .remediation("the grant was revoked or expired meanwhile; ask for a new grant"));
        }
        Err(error) => return Err(ApiError::store("activating the grant", &error)),
    };

    // 5. The audit trail.
    audit(
        store,
        NewAuditEntry::new("enrollment.complete", AuditOutcome::Succeeded)
            .peer(peer.id)
            .grant(grant.id)
            .subject(grant.subject_user_id)
            .detail(json!({
                "peer": peer.common_name,
                "certificate_serial": serial.as_str(),
                "not_after": rfc3339(not_after),
                "replaced_serial": previous_serial,
            })),
    )
    .await;
    tracing::info!(peer = %peer.common_name, grant = %grant.id, serial = %serial, "peer enrolled");
    Ok((
        StatusCode::CREATED,
        Json(EnrollmentResponse {
            gateway: api.inner.gateway_name.clone(),
            peer: peer.common_name,
            grant_id: grant.id.to_string(),
            subject_user_id: grant.subject_user_id.to_string(),
            scope: grant.scope,
            certificate: issued.cert_pem,
            chain: issued.chain_pem,
            client_ca_root: api.inner.client_ca_root_pem.clone(),
            serial: serial.to_string(),
            not_after: rfc3339(not_after),
        }),
    ))
}

/// Liveness, and the gateway's name (which an enrolling peer stores it under by default).
async fn healthz(State(api): State<FederationApi>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "gateway": api.inner.gateway_name}))
}

fn ca_refusal(error: &CaError, peer: &str) -> ApiError {
    let code = error.code();
    if matches!(code, "INVALID_CSR" | "INVALID_NAME") {
        ApiError::new(StatusCode::BAD_REQUEST, "csr_rejected", error.to_string()).remediation(format!(
            "send a P-256 CSR signed with ecdsa-with-SHA256 whose CN and only DNS SAN are {peer:?}; the token \
             is used up, so ask for a new enrollment URL"
        ))
    } else {
        tracing::error!("the CA failed to issue for {peer}: {code}: {error}");
        ApiError::new(StatusCode::BAD_GATEWAY, "ca_failed", format!("the certificate authority failed ({code})"))
            .remediation("ask the granting gateway's operator to check its CA (`mosaic gateway doctor`), then for a new enrollment URL")
    }
}

/// A request whose client certificate has been authorized, per request, by its OIDs and serial.
pub(crate) struct AuthorizedRequest {
    grant: AuthorizedGrant,
    serial: CertSerial,
    source: DecisionSource,
}

impl FromRequestParts<FederationApi> for AuthorizedRequest {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &FederationApi,
    ) -> Result<Self, Self::Rejection> {
        let store = &api.inner.store;
        let path = parts.uri.path().to_owned();
        let Some(cert) = parts
            .extensions
            .get::<ClientCertificate>()
            .and_then(|c| c.0.clone())
        else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "client_certificate_required",
                "this endpoint needs a federation client certificate",
            )
            .remediation("enroll with `mosaic federation peer enroll <enrollment-url>`, then call with `mosaic federation peer call`"));
        };
        let serial = x509_cert::Certificate::from_der(cert.as_ref())
            .ok()
            .and_then(|c| {
                CertSerial::from_be_bytes(c.tbs_certificate().serial_number().as_bytes()).ok()
            });
        let identity = match FederationIdentity::from_der(cert.as_ref(), &OidRegistry::DEVELOPMENT)
        {
            Ok(identity) => identity,
            Err(error) => {
                audit(
                    store,
                    NewAuditEntry::new("request.authorize", AuditOutcome::Denied).detail(json!({
                        "reason": "malformed_identity",
                        "oid_error": error.code(),
                        "certificate_serial": serial.as_ref().map(CertSerial::as_str),
                        "path": path,
                    })),
                )
                .await;
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "certificate_identity_malformed",
                    format!("the client certificate's federation OIDs are unusable: {error}"),
                )
                .remediation(error.remediation()));
            }
        };
        let Some(serial) = serial else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "certificate_malformed",
                "the client certificate has no usable serial",
            ));
        };
        let authorization = match store.authorize(&identity, &serial).await {
            Ok(authorization) => authorization,
            Err(error) => return Err(ApiError::store("authorizing the request", &error)),
        };
        let entry = NewAuditEntry::new("request.authorize", AuditOutcome::Allowed)
            .grant(identity.grant_id)
            .subject(identity.subject_user_id);
        match authorization.decision {
            AuthorizationDecision::Allow(grant) => {
                audit(
                    store,
                    entry
                        .peer(grant.peer_id)
                        .detail(json!({"certificate_serial": serial.as_str(), "path": path})),
                )
                .await;
                Ok(Self {
                    grant,
                    serial,
                    source: authorization.source,
                })
            }
            AuthorizationDecision::Deny(reason) => {
                let presenting_peer = store
                    .get_peer_by_serial(&serial)
                    .await
                    .ok()
                    .flatten()
                    .map(|p| p.id);
                let mut entry = entry;
                entry.outcome = AuditOutcome::Denied;
                if let Some(peer) = presenting_peer {
                    entry = entry.peer(peer);
                }
                audit(
                    store,
                    entry.detail(json!({"reason": reason.code(), "certificate_serial": serial.as_str(), "path": path})),
                )
                .await;
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    reason.code(),
                    format!(
                        "the certificate's grant does not allow this request ({})",
                        reason.code()
                    ),
                )
                .remediation(
                    "ask the granting gateway's operator for a new grant and enrollment URL",
                ))
            }
            _ => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "denied",
                "the request is not authorized",
            )),
        }
    }
}

async fn whoami(
    State(api): State<FederationApi>,
    authorized: AuthorizedRequest,
) -> Json<serde_json::Value> {
    let peer = api
        .inner
        .store
        .get_peer(authorized.grant.peer_id)
        .await
        .ok()
        .flatten();
    Json(json!({
        "gateway": api.inner.gateway_name,
        "grant_id": authorized.grant.grant_id.to_string(),
        "subject_user_id": authorized.grant.subject_user_id.to_string(),
        "peer": {
            "id": authorized.grant.peer_id.to_string(),
            "name": peer.map(|p| p.common_name),
        },
        "scope": authorized.grant.scope,
        "expires_at": authorized.grant.expires_at.map(rfc3339),
        "certificate_serial": authorized.serial.as_str(),
        "authorized_by": "client certificate: mosaic.federation.grantId (1.3.6.1.4.1.99999.1) and \
                          mosaic.federation.subjectUserId (1.3.6.1.4.1.99999.2), serial checked against the peer's current certificate",
        "decision_source": authorized.source,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use mosaic_ca_client::LocalCa;
    use mosaic_seal::Keyring;
    use tower::ServiceExt as _;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        ca: Arc<LocalCa>,
        router: Router,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::from_secrets(
            "a-long-random-secret-of-at-least-32-bytes!",
            std::iter::empty::<&str>(),
        )
        .unwrap();
        let store = Store::open_local(&dir.path().join("store.sqlite3"), keyring)
            .await
            .unwrap();
        let ca = Arc::new(LocalCa::generate("Test").unwrap());
        let router = FederationApi::new(store.clone(), ca.clone(), "gw-test".to_owned())
            .unwrap()
            .router();
        Fixture {
            _dir: dir,
            store,
            ca,
            router,
        }
    }

    async fn send(
        router: &Router,
        request: axum::http::Request<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    fn whoami(cert: Option<Vec<u8>>) -> axum::http::Request<Body> {
        let mut request = axum::http::Request::get(WHOAMI_PATH)
            .body(Body::empty())
            .unwrap();
        request.extensions_mut().insert(ClientCertificate(
            cert.map(|der| Arc::new(rustls_pki_types::CertificateDer::from(der))),
        ));
        request
    }

    fn enrollment(body: &str) -> axum::http::Request<Body> {
        axum::http::Request::post(ENROLLMENT_PATH)
            .body(Body::from(body.to_owned()))
            .unwrap()
    }

    #[tokio::test]
    async fn federation_routes_need_a_certificate_with_well_formed_oids() {
        let f = fixture().await;
        let (status, body) = send(&f.router, whoami(None)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (
                StatusCode::UNAUTHORIZED,
                Some("client_certificate_required")
            )
        );

        // A certificate without the federation extensions (the gateway's own server certificate).
        let keyring = Keyring::from_secrets(
            "a-long-random-secret-of-at-least-32-bytes!",
            std::iter::empty::<&str>(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let server = crate::server_identity::ServerCa::load_or_create(dir.path(), &keyring)
            .unwrap()
            .issue_server_certificate(&["localhost".to_owned()])
            .unwrap();
        let (status, body) = send(&f.router, whoami(Some(server.chain[0].to_vec()))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "certificate_identity_malformed");
        assert!(body["remediation"].as_str().is_some_and(|r| !r.is_empty()));

        // Well-formed OIDs naming a grant this gateway never made: 403, and audited.
        let issued =
            f.ca.issue_now(&IssueRequest::new(
                mosaic_oid::Uuid::new_v4().to_string(),
                mosaic_oid::Uuid::new_v4().to_string(),
                "stranger",
            ))
            .unwrap();
        let (status, body) = send(&f.router, whoami(Some(issued.cert_der.clone()))).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("unknown_grant"))
        );
        let audit = f
            .store
            .list_audit(mosaic_store::AuditQuery::newest(10))
            .await
            .unwrap();
        assert!(audit.iter().any(|e| e.outcome == AuditOutcome::Denied && e.detail["reason"] == "unknown_grant"));
        assert!(
            audit
                .iter()
                .any(|e| e.detail["reason"] == "malformed_identity")
        );
    }

    #[tokio::test]
    async fn enrollment_refuses_bad_bodies_and_unknown_tokens_distinctly() {
        let f = fixture().await;
        let (status, body) = send(&f.router, enrollment("not json")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request"))
        );
        let (status, body) = send(&f.router, enrollment(r#"{"token": "nope", "csr": "x"}"#)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("enrollment_token_unknown"))
        );
        let (status, _) = send(
            &f.router,
            axum::http::Request::get("/nowhere")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_claimed_token_with_a_bad_csr_is_used_up_and_refused_with_400() {
        let f = fixture().await;
        let peer = f
            .store
            .insert_peer(&mosaic_store::NewPeer::new("gw-b", "gw-b", "https://gw-b/"))
            .await
            .unwrap();
        let grant = f
            .store
            .create_grant(&mosaic_store::NewGrant::new(
                mosaic_oid::SubjectUserId::from(mosaic_oid::Uuid::new_v4()),
                peer.id,
                json!({"read": true}),
            ))
            .await
            .unwrap();
        let token = f
            .store
            .create_enrollment_token(grant.id, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let body = json!({"token": token.token.expose(), "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"});
        let (status, answer) = send(&f.router, enrollment(&body.to_string())).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("csr_rejected")),
            "{answer}"
        );
        let (status, answer) = send(&f.router, enrollment(&body.to_string())).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (StatusCode::CONFLICT, Some("enrollment_token_used"))
        );
        // Nothing was activated.
        assert_eq!(
            f.store.get_grant(grant.id).await.unwrap().unwrap().status,
            mosaic_store::GrantStatus::Pending
        );
    }
}
