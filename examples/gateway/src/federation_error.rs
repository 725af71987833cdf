//! The one error type of the federation commands (`mosaic federation …`, `mosaic gateway serve`,
//! `mosaic demo`): what went wrong in the operator's terms, a stable `code()`, and a `remediation()`.

use crate::{server_identity::ServerIdentityError, tls::TlsError};

/// Everything the federation flow can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FederationError {
    /// The configuration cannot be used.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A setting or argument is missing or malformed.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        remediation: String,
    },
    /// `BETTER_AUTH_SECRET` (or the previous secrets) cannot be used.
    #[error("{message}")]
    Secret {
        /// What is wrong.
        message: String,
        /// How to fix it.
        remediation: String,
    },
    /// The store refused or failed.
    #[error("{0}")]
    Store(#[from] mosaic_store::StoreError),
    /// The CA refused or failed, or a certificate did not verify.
    #[error("{code}: {source}", code = .0.code(), source = .0)]
    Ca(#[from] mosaic_ca_client::CaError),
    /// The server identity (data directory CA) is unusable.
    #[error("{0}")]
    ServerIdentity(#[from] ServerIdentityError),
    /// TLS material or configuration is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// A file of the data directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
    /// The peer gateway could not be reached or spoke no sense.
    #[error("the peer gateway at {url} could not be reached: {reason}")]
    PeerUnreachable {
        /// Where.
        url: String,
        /// Why.
        reason: String,
    },
    /// The peer gateway answered with an error.
    #[error("the peer gateway refused (HTTP {status} {code}): {message}")]
    PeerRefused {
        /// The HTTP status.
        status: u16,
        /// Its error code.
        code: String,
        /// Its message.
        message: String,
        /// Its remediation, if it sent one.
        remediation: Option<String>,
    },
    /// A certificate received at enrollment did not verify.
    #[error("the certificate returned by the peer gateway is not acceptable: {0}")]
    EnrolledCertificate(String),
    /// Something that should not happen.
    #[error("internal error: {0}")]
    Internal(String),
}

impl FederationError {
    /// A usage error with its remediation.
    pub(crate) fn usage(message: impl Into<String>, remediation: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            remediation: remediation.into(),
        }
    }

    /// A stable machine-readable name.
    pub(crate) fn code(&self) -> String {
        match self {
            Self::Config(_) => "CONFIG".to_owned(),
            Self::Usage { .. } => "USAGE".to_owned(),
            Self::Secret { .. } => "SECRET".to_owned(),
            Self::Store(e) => format!("STORE_{}", e.code().to_ascii_uppercase()),
            Self::Ca(e) => e.code().to_owned(),
            Self::ServerIdentity(_) => "SERVER_IDENTITY".to_owned(),
            Self::Tls(_) => "TLS".to_owned(),
            Self::Io { .. } => "IO".to_owned(),
            Self::PeerUnreachable { .. } => "PEER_UNREACHABLE".to_owned(),
            Self::PeerRefused { code, .. } => format!("PEER_REFUSED_{}", code.to_ascii_uppercase()),
            Self::EnrolledCertificate(_) => "ENROLLED_CERTIFICATE_INVALID".to_owned(),
            Self::Internal(_) => "INTERNAL".to_owned(),
        }
    }

    /// How the operator can fix it.
    pub(crate) fn remediation(&self) -> String {
        match self {
            Self::Config(e) => e.remediation(),
            Self::Usage { remediation, .. } | Self::Secret { remediation, .. } => remediation.clone(),
            Self::Store(e) => e
                .remediation()
                .unwrap_or_else(|| "check the database settings with `mosaic gateway doctor`".to_owned()),
            Self::Ca(e) => e.remediation().to_owned(),
            Self::ServerIdentity(e) => e.remediation().to_owned(),
            Self::Tls(_) => "check the certificate and key files named above".to_owned(),
            Self::Io { .. } => "check that the data directory (--data-dir or MOSAIC_DATA_DIR) is writable".to_owned(),
            Self::PeerUnreachable { .. } => {
                "check the URL, that the peer gateway runs (`mosaic gateway serve`), and that nothing blocks the port; \
                 a TLS error naming the fingerprint means the server is not the one the enrollment URL names"
                    .to_owned()
            }
            Self::PeerRefused { remediation, .. } => remediation
                .clone()
                .unwrap_or_else(|| "ask the peer gateway's operator; its audit log has the details".to_owned()),
            Self::EnrolledCertificate(_) => {
                "do not use this peer gateway; ask its operator to check its CA configuration".to_owned()
            }
            Self::Internal(_) => "this is a bug; report it with the command that failed".to_owned(),
        }
    }

    /// Whether this is the operator's input or configuration (exit 2) rather than a failure (exit 1).
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Config(_) | Self::Usage { .. } | Self::Secret { .. }
        )
    }
}
