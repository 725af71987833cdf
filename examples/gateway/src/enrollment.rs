//! The enrollment URL and the enrollment endpoint's request and response.
//!
//! An enrollment URL is everything the enrolling gateway needs, in one line an operator can pass on:
//!
//! ```text
//! https://gw-a.example.org:8443/api/federation/v1/enrollment#token=<secret>&peer=<name>&root-sha256=<hex>
//! ```
//!
//! - the part before `#` is the endpoint to `POST` to;
//! - `token`: the single-use enrollment token (43 characters, at most 15 minutes old);
//! - `peer`: the name the granting gateway knows the enrolling one by (the certificate's CN and SAN);
//! - `root-sha256`: the SHA-256 fingerprint of the root that signed the granting gateway's HTTPS server
//!   certificate. The enrolling side trusts that server through this root only: no leap of faith.
//!
//! The token travels in the fragment, which HTTP clients never send: pasted into a browser or a proxy
//! log by mistake, the URL does not leak it to the server's access logs. It reaches the server only in
//! the enrollment request's body.

use std::fmt;

use mosaic_store::EnrollmentToken;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{federation_error::FederationError, tls::RootFingerprint};

/// The enrollment endpoint's path.
pub(crate) const ENROLLMENT_PATH: &str = "/api/federation/v1/enrollment";
/// The "who am I" endpoint's path.
pub(crate) const WHOAMI_PATH: &str = "/api/federation/v1/whoami";

/// A parsed enrollment URL.
#[derive(Clone)]
pub(crate) struct EnrollmentUrl {
    /// The granting gateway's base URL (scheme, host, port).
    pub(crate) base: Url,
    /// The single-use token.
    pub(crate) token: EnrollmentToken,
    /// The name the certificate is issued to.
    pub(crate) peer_name: String,
    /// The root of the granting gateway's server certificate.
    pub(crate) server_root: RootFingerprint,
}

impl fmt::Debug for EnrollmentUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentUrl")
            .field("base", &self.base.as_str())
            .field("token", &"***")
            .field("peer_name", &self.peer_name)
            .field("server_root", &self.server_root)
            .finish()
    }
}

impl EnrollmentUrl {
    /// The URL as text (it contains the secret token: print it only to the operator who asked for it).
    pub(crate) fn to_url_string(&self) -> String {
        let mut url = self.base.clone();
        url.set_path(ENROLLMENT_PATH);
        url.set_query(None);
        let fragment = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", self.token.expose())
            .append_pair("peer", &self.peer_name)
            .append_pair("root-sha256", &self.server_root.to_string())
            .finish();
        url.set_fragment(Some(&fragment));
        url.to_string()
    }

    /// The enrollment endpoint.
    pub(crate) fn endpoint(&self) -> Url {
        let mut url = self.base.clone();
        url.set_path(ENROLLMENT_PATH);
        url
    }

    /// Parses an enrollment URL; every error says which part is wrong.
    pub(crate) fn parse(text: &str) -> Result<Self, FederationError> {
        let remediation = "pass the whole URL printed by `mosaic federation grant token` on the granting gateway, \
                           quoted, e.g. 'https://gw:8443/api/federation/v1/enrollment#token=…&peer=…&root-sha256=…'";
        let bad = |what: String| {
            FederationError::usage(format!("the enrollment URL {what}"), remediation)
        };
        let url = Url::parse(text.trim()).map_err(|e| bad(format!("is not a URL: {e}")))?;
        if url.scheme() != "https" {
            return Err(bad(format!(
                "must start with https://, not {}://",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("has no host".to_owned()));
        }
        if url.path() != ENROLLMENT_PATH {
            return Err(bad(format!(
                "has the path {:?}; expected {ENROLLMENT_PATH}",
                url.path()
            )));
        }
        let Some(fragment) = url.fragment() else {
            return Err(bad("has no #token=…&peer=…&root-sha256=… part".to_owned()));
        };
        let (mut token, mut peer, mut root) = (None, None, None);
        for (key, value) in url::form_urlencoded::parse(fragment.as_bytes()) {
            let slot = match key.as_ref() {
                "token" => &mut token,
                "peer" => &mut peer,
                "root-sha256" => &mut root,
                other => return Err(bad(format!("has an unknown part {other:?} after #"))),
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(bad(format!("has {key} twice")));
            }
        }
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("has no token".to_owned()))?;
        let peer_name = peer
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("has no peer name".to_owned()))?;
        let root = root.ok_or_else(|| bad("has no root-sha256 fingerprint".to_owned()))?;
        let server_root = root
            .parse::<RootFingerprint>()
            .map_err(|_| bad("has a root-sha256 that is not 64 hexadecimal digits".to_owned()))?;
        let mut base = url.clone();
        base.set_path("/");
        base.set_fragment(None);
        base.set_query(None);
        Ok(Self {
            base,
            token: EnrollmentToken::from_text(token),
            peer_name,
            server_root,
        })
    }
}

/// `POST /api/federation/v1/enrollment` body.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrollmentRequest {
    /// The enrollment token from the URL.
    pub(crate) token: String,
    /// A PKCS#10 request, PEM, for the peer name of the URL.
    pub(crate) csr: String,
}

/// `201 Created` answer of the enrollment endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EnrollmentResponse {
    /// The granting gateway's name.
    pub(crate) gateway: String,
    /// The name the certificate was issued to.
    pub(crate) peer: String,
    /// The grant the certificate carries.
    pub(crate) grant_id: String,
    /// The subject user the certificate carries.
    pub(crate) subject_user_id: String,
    /// The grant's scope.
    pub(crate) scope: serde_json::Value,
    /// The client certificate, PEM.
    pub(crate) certificate: String,
    /// Intermediate certificates between it and the root, PEM (may be empty).
    pub(crate) chain: String,
    /// The root the granting gateway verifies client certificates against, PEM.
    pub(crate) client_ca_root: String,
    /// The certificate's serial, hex.
    pub(crate) serial: String,
    /// The end of its validity, RFC 3339.
    pub(crate) not_after: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ErrorBody {
    /// A stable code, e.g. `enrollment_token_used`.
    pub(crate) error: String,
    /// What was wrong.
    pub(crate) message: String,
    /// How to fix it, when the caller can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) remediation: Option<String>,
}

/// Peer names: what a certificate's CN and DNS SAN can hold, and what an operator can type.
pub(crate) fn check_peer_name(name: &str) -> Result<(), FederationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(FederationError::usage(
            format!("{name:?} is not a usable peer name"),
            "use 1 to 64 characters of a-z, 0-9, '-' and '.', like a host name (e.g. gateway-b or gw-b.example.org); \
             it becomes the CN and SAN of the peer's certificate",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample() -> EnrollmentUrl {
        EnrollmentUrl {
            base: Url::parse("https://127.0.0.1:8443/").unwrap(),
            token: EnrollmentToken::from_text("abc-DEF_123"),
            peer_name: "gateway-b".to_owned(),
            server_root: RootFingerprint::of(b"root"),
        }
    }

    #[test]
    fn urls_round_trip() {
        let url = sample();
        let text = url.to_url_string();
        assert!(text.starts_with("https://127.0.0.1:8443/api/federation/v1/enrollment#token=abc-DEF_123&peer=gateway-b&root-sha256="));
        let back = EnrollmentUrl::parse(&text).unwrap();
        assert_eq!(back.token.expose(), "abc-DEF_123");
        assert_eq!(back.peer_name, "gateway-b");
        assert_eq!(back.server_root, url.server_root);
        assert_eq!(
            back.endpoint().as_str(),
            "https://127.0.0.1:8443/api/federation/v1/enrollment"
        );
        assert!(
            !format!("{back:?}").contains("abc-DEF_123"),
            "Debug hides the token"
        );
    }

    #[test]
    fn every_missing_part_is_named() {
        let good = sample().to_url_string();
        let cases = [
            (good.replace("https://", "http://"), "https://"),
            (good.replace("/api/federation/v1/enrollment", "/x"), "path"),
            (good.split('#').next().unwrap().to_owned(), "#token"),
            (good.replace("token=abc-DEF_123&", ""), "no token"),
            (good.replace("&peer=gateway-b", ""), "no peer"),
            (
                good.split("&root-sha256").next().unwrap().to_owned(),
                "root-sha256",
            ),
            (format!("{good}00"), "64 hexadecimal"),
            (format!("{good}&x=1"), "unknown part"),
            (format!("{good}&peer=again"), "twice"),
            ("not a url".to_owned(), "not a URL"),
        ];
        for (text, expected) in cases {
            let err = EnrollmentUrl::parse(&text).map(|_| ()).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
            assert!(!err.remediation().is_empty());
        }
    }

    #[test]
    fn peer_names_are_host_like() {
        for good in ["gateway-b", "gw-b.example.org", "a", "b2"] {
            check_peer_name(good).unwrap();
        }
        for bad in [
            "",
            "Gateway",
            "has space",
            "-x",
            "x-",
            "a..b",
            "under_score",
            &"a".repeat(65),
        ] {
            assert!(check_peer_name(bad).is_err(), "{bad:?}");
        }
    }
}
