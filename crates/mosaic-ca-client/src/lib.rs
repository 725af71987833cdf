#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certificate_request;
mod client;
mod config;
mod csr;
mod error;
mod jwe;
mod jwk;
mod local;
mod request;
mod server_ca;
mod token;
mod verify;

use std::{future::Future, pin::Pin};

pub use mosaic_oid::{FederationIdentity, GrantId, OidRegistry, SubjectUserId};

#[doc(hidden)]
pub use crate::client::PreparedIssuance;
#[doc(hidden)]
pub use crate::token::TokenOptions;
pub use crate::{
    certificate_request::CertificateRequest,
    client::StepCaClient,
    config::{
        DEFAULT_PROVISIONER, DEFAULT_TIMEOUT, ENV_PROVISIONER_KEY_JSON, ENV_PROVISIONER_NAME,
        ENV_PROVISIONER_PASSWORD, ENV_ROOT_CERT_PATH, ENV_ROOT_FINGERPRINT, ENV_URL, StepCaConfig,
        StepCaConfigBuilder,
    },
    error::CaError,
    jwe::{MAX_PBES2_COUNT, MIN_PBES2_COUNT},
    jwk::jwk_thumbprint,
    local::LocalCa,
    request::{DEFAULT_MAX_VALIDITY, DEFAULT_MIN_VALIDITY, IssueRequest, IssuedCertificate},
    server_ca::{ServerCa, ServerCertificate},
    token::{GRANT_ID_CLAIM, SUBJECT_USER_ID_CLAIM, TOKEN_LIFETIME},
};

/// The future an [`Issuer`] returns.
pub type IssueFuture<'a> =
    Pin<Box<dyn Future<Output = Result<IssuedCertificate, CaError>> + Send + 'a>>;

/// Something that issues verified federation certificates: [`StepCaClient`] in production,
/// [`LocalCa`] for development and tests.
///
/// Object-safe, so a service can hold a `Box<dyn Issuer>` or `Arc<dyn Issuer>` chosen at start-up.
/// Every implementation checks the request before doing anything else and returns a certificate only
/// after it has verified the chain to [`root_der`](Issuer::root_der), the key, the names and both
/// federation extensions.
pub trait Issuer: Send + Sync {
    /// Issues and verifies a certificate for `request`.
    fn issue<'a>(&'a self, request: &'a IssueRequest) -> IssueFuture<'a>;

    /// The root certificate (DER) the issued certificates chain to.
    fn root_der(&self) -> &[u8];
}

impl Issuer for StepCaClient {
    fn issue<'a>(&'a self, request: &'a IssueRequest) -> IssueFuture<'a> {
        Box::pin(StepCaClient::issue(self, request))
    }

    fn root_der(&self) -> &[u8] {
        self.config().root_der()
    }
}

impl Issuer for LocalCa {
    fn issue<'a>(&'a self, request: &'a IssueRequest) -> IssueFuture<'a> {
        Box::pin(std::future::ready(self.issue_now(request)))
    }

    fn root_der(&self) -> &[u8] {
        LocalCa::root_der(self)
    }
}
