//! [`StepCaClient`]: HTTPS to step-ca, pinned to the configured root.

use std::{fmt, sync::Arc, time::SystemTime};

use serde::Deserialize;

use crate::{
    IssuedCertificate,
    config::StepCaConfig,
    error::CaError,
    request::{self, CheckedRequest, IssueRequest},
    token::{self, TokenInput, TokenOptions},
    verify::{self, Expected},
};

/// The most bytes read from a CA response (a sign response is a few KiB).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The most characters of a CA error message kept in an error.
const MAX_MESSAGE_CHARS: usize = 500;

/// A client for one step-ca JWK provisioner.
///
/// Cheap to clone (shared connection pool and key). Safe to use from many tasks at once: every
/// issuance makes its own key, CSR and one-time token.
#[derive(Clone)]
pub struct StepCaClient {
    config: Arc<StepCaConfig>,
    http: reqwest::Client,
    sign_url: url::Url,
    health_url: url::Url,
    audience: String,
}

impl fmt::Debug for StepCaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCaClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A request that has been checked and tokenised but not sent: the test hook behind
/// [`StepCaClient::prepare`] and [`StepCaClient::submit`]. `Debug` hides the token and the key.
#[doc(hidden)]
pub struct PreparedIssuance {
    checked: CheckedRequest,
    token: String,
}

impl fmt::Debug for PreparedIssuance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedIssuance")
            .field("identity", &self.checked.identity)
            .field("common_name", &self.checked.names.common_name)
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl PreparedIssuance {
    /// The one-time token (a bearer credential for five minutes).
    #[doc(hidden)]
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CSR, PEM.
    #[doc(hidden)]
    #[must_use]
    pub fn csr_pem(&self) -> &str {
        &self.checked.csr.pem
    }
}

#[derive(Deserialize)]
struct SignResponse {
    crt: String,
    #[serde(default)]
    ca: Option<String>,
    #[serde(default, rename = "certChain")]
    cert_chain: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    message: Option<String>,
}

impl StepCaClient {
    /// A client for the configured CA. Makes no network call.
    ///
    /// # Errors
    /// [`CaError::Config`] if the TLS or HTTP client cannot be set up.
    pub fn new(config: StepCaConfig) -> Result<Self, CaError> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(
                config.root_der.as_slice().to_vec(),
            ))
            .map_err(|e| CaError::Config(format!("the root certificate cannot be trusted: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CaError::Config(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            // The CA is reached directly: a proxy would see the one-time tokens' traffic pattern and
            // is never needed for a CA on the operator's own network.
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CaError::Config(format!("HTTP client setup: {e}")))?;
        let base = config.url.as_str().trim_end_matches('/').to_owned();
        let join = |path: &str| {
            url::Url::parse(&format!("{base}{path}"))
                .map_err(|e| CaError::Config(format!("cannot form the CA URL {base}{path}: {e}")))
        };
        let sign_url = join("/1.0/sign")?;
        let health_url = join("/health")?;
        Ok(Self {
            audience: sign_url.to_string(),
            sign_url,
            health_url,
            config: Arc::new(config),
            http,
        })
    }

    /// [`StepCaConfig::from_env`] then [`StepCaClient::new`].
    ///
    /// # Errors
    /// As those two.
    pub fn from_env() -> Result<Self, CaError> {
        Self::new(StepCaConfig::from_env()?)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &StepCaConfig {
        &self.config
    }

    /// `GET /health` over the pinned root: `Ok` when the CA answers `{"status":"ok"}`.
    ///
    /// # Errors
    /// [`CaError::CaUnreachable`], [`CaError::CaTls`], [`CaError::CaRejected`] or
    /// [`CaError::CaBadResponse`].
    pub async fn health(&self) -> Result<(), CaError> {
        let response = self
            .http
            .get(self.health_url.clone())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let body = self.read_body(response).await?;
        if !status.is_success() {
            return Err(self.status_error(status.as_u16(), &body));
        }
        #[derive(Deserialize)]
        struct Health {
            status: String,
        }
        match serde_json::from_slice::<Health>(&body) {
            Ok(h) if h.status == "ok" => Ok(()),
            Ok(h) => Err(CaError::CaBadResponse(format!(
                "/health says status {:?}",
                sanitize(&h.status)
            ))),
            Err(_) => Err(CaError::CaBadResponse(
                "/health did not answer step-ca's JSON".into(),
            )),
        }
    }

    /// Issues a certificate: checks the request (before any network call), makes a key and CSR
    /// (unless the request carries one), signs a one-time token, `POST /1.0/sign`, and verifies the
    /// result. Returns only a certificate that passed every check.
    ///
    /// # Errors
    /// Any [`CaError`]; see its codes.
    pub async fn issue(&self, request: &IssueRequest) -> Result<IssuedCertificate, CaError> {
        let prepared = self.prepare(request, &TokenOptions::default())?;
        self.submit(&prepared).await
    }

    /// Test hook: checks the request and makes the CSR and token, without sending anything.
    ///
    /// # Errors
    /// The request's own errors (ids, names, validity, CSR).
    #[doc(hidden)]
    pub fn prepare(
        &self,
        request: &IssueRequest,
        options: &TokenOptions,
    ) -> Result<PreparedIssuance, CaError> {
        let checked = request::check(request, self.config.validity_bounds())?;
        let grant_id = checked.identity.grant_id.to_string();
        let subject_user_id = checked.identity.subject_user_id.to_string();
        let input = TokenInput {
            provisioner: &self.config.provisioner,
            audience: &self.audience,
            subject: &checked.names.common_name,
            sans: &checked.names.sans,
            root_fingerprint_hex: &self.config.root_fingerprint,
            csr_der: &checked.csr.der,
            grant_id: &grant_id,
            subject_user_id: &subject_user_id,
        };
        let claims = token::claims(&input, SystemTime::now(), options)?;
        let token = token::sign(&self.config.key, &claims)?;
        Ok(PreparedIssuance { checked, token })
    }

    /// Test hook: sends a prepared request and verifies the answer.
    ///
    /// # Errors
    /// Any [`CaError`] from the CA or from verification.
    #[doc(hidden)]
    pub async fn submit(&self, prepared: &PreparedIssuance) -> Result<IssuedCertificate, CaError> {
        let checked = &prepared.checked;
        let mut body = serde_json::json!({ "csr": checked.csr.pem, "ott": prepared.token });
        if let Some(validity) = checked.validity {
            // A duration relative to the CA's clock, which step-ca's TimeDuration accepts; the CA
            // backdates notBefore by its usual minute.
            body["notAfter"] = format!("{}s", validity.as_secs()).into();
        }
        let response = self
            .http
            .post(self.sign_url.clone())
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = self.read_body(response).await?;
        if status.as_u16() != 201 && status.as_u16() != 200 {
            return Err(self.status_error(status.as_u16(), &bytes));
        }
        let sign: SignResponse = serde_json::from_slice(&bytes).map_err(|_| {
            CaError::CaBadResponse(format!("HTTP {status} without a step-ca sign response"))
        })?;
        let leaf_der = verify::single_certificate_from_pem(&sign.crt, "crt")?;
        let mut chain_pems: Vec<&String> = sign.cert_chain.iter().skip(1).collect();
        if sign.cert_chain.is_empty() {
            chain_pems.extend(sign.ca.as_ref());
        }
        let chain = chain_pems
            .into_iter()
            .map(|pem| verify::single_certificate_from_pem(pem, "certChain"))
            .collect::<Result<Vec<_>, _>>()?;
        let intermediates = verify::intermediates_without_root(chain, self.config.root_der());
        let expected = Expected {
            identity: checked.identity,
            names: &checked.names,
            spki_der: &checked.csr.spki_der,
            registry: &self.config.registry,
        };
        let mut issued = verify::verify_issued(
            self.config.root_der(),
            &leaf_der,
            &intermediates,
            &expected,
            SystemTime::now(),
        )?;
        issued.key = checked.csr.key_pem.clone();
        tracing::info!(
            serial = %issued.serial,
            grant_id = %issued.identity.grant_id,
            subject_user_id = %issued.identity.subject_user_id,
            "step-ca issued and verified a federation certificate"
        );
        Ok(issued)
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, CaError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(CaError::CaBadResponse(format!(
                    "the response is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn status_error(&self, status: u16, body: &[u8]) -> CaError {
        let message = serde_json::from_slice::<ErrorResponse>(body)
            .ok()
            .and_then(|e| e.message)
            .map(|m| sanitize(&m))
            .unwrap_or_else(|| format!("no step-ca error message ({} bytes of body)", body.len()));
        match status {
            401 => CaError::CaUnauthorized { status, message },
            _ => CaError::CaRejected { status, message },
        }
    }

    fn transport_error(&self, e: &reqwest::Error) -> CaError {
        let url = self.config.url.as_str().trim_end_matches('/').to_owned();
        if let Some(tls) = find_tls_error(e) {
            return CaError::CaTls {
                url,
                reason: tls.to_string(),
            };
        }
        let reason = if e.is_timeout() {
            format!(
                "no answer within the timeout (connect {:?}, request {:?})",
                self.config.connect_timeout, self.config.request_timeout
            )
        } else {
            error_chain(e)
        };
        CaError::CaUnreachable { url, reason }
    }
}

/// Finds a rustls error anywhere in the chain. `io::Error::source` skips the error it wraps, so each
/// `io::Error` is opened with `get_ref` as well.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(found) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| find_tls_error(inner))
        {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// The messages of an error chain, without repetition.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let (None, Some(inner)) = (current, wrapped) {
            let text = inner.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
    }
    parts.join(": ")
}

/// Keeps a CA message printable and short.
fn sanitize(message: &str) -> String {
    let mut out: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}
