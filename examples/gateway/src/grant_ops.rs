//! The granting side's operations, shared by the CLI (`mosaic federation grant …`) and the demo:
//! creating a grant (and its peer), issuing an enrollment URL, revoking.

use std::{path::Path, str::FromStr, time::Duration};

use mosaic_oid::{GrantId, SubjectUserId};
use mosaic_store::{Grant, NewGrant, NewPeer, Peer, Store};
use time::OffsetDateTime;
use url::Url;

use crate::{
    data_dir,
    enrollment::{EnrollmentUrl, check_peer_name},
    federation_error::FederationError,
    tls::RootFingerprint,
};

/// The largest scope file accepted.
pub(crate) const MAX_SCOPE_BYTES: usize = 64 * 1024;
/// The variable naming the gateway's public URL, for enrollment URLs.
pub(crate) const PUBLIC_URL_VAR: &str = "MOSAIC_PUBLIC_URL";
/// The file in the data directory where `mosaic gateway serve` writes the URL it serves at.
pub(crate) const SERVER_URL_FILE: &str = "server-url";

/// Parses an id given by the user ([`GrantId`], [`SubjectUserId`]): mosaic-oid's canonical text, as
/// certificates carry ids. `what` names the argument in the message.
pub(crate) fn parse_id<T>(text: &str, what: &str) -> Result<T, FederationError>
where
    T: FromStr<Err = mosaic_oid::Error>,
{
    text.parse().map_err(|e: mosaic_oid::Error| {
        FederationError::usage(format!("{what}: {e}"), e.remediation())
    })
}

/// Validates a scope document: JSON (errors say line and column), an object, with non-empty keys, at
/// most 64 KiB. What the keys mean is up to the services that read the scope; the gateway returns it
/// from `whoami` exactly as stored.
pub(crate) fn parse_scope(text: &str, origin: &str) -> Result<serde_json::Value, FederationError> {
    let remediation = "a scope file holds one JSON object, e.g. {\"resources\": [\"calendar\"], \"actions\": [\"read\"]}";
    if text.len() > MAX_SCOPE_BYTES {
        return Err(FederationError::usage(
            format!(
                "the scope {origin} has {} bytes; at most {MAX_SCOPE_BYTES} are accepted",
                text.len()
            ),
            remediation,
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        FederationError::usage(
            format!(
                "the scope {origin} is not JSON: line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
            remediation,
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(FederationError::usage(
            format!("the scope {origin} is JSON, but not an object"),
            remediation,
        ));
    };
    if object.keys().any(|key| key.trim().is_empty()) {
        return Err(FederationError::usage(
            format!("the scope {origin} has an empty key"),
            remediation,
        ));
    }
    Ok(value)
}

/// Reads and validates a scope file.
pub(crate) fn read_scope_file(path: &Path) -> Result<serde_json::Value, FederationError> {
    let text = std::fs::read_to_string(path).map_err(|source| FederationError::Io {
        action: "reading the scope file",
        path: path.to_owned(),
        source,
    })?;
    parse_scope(&text, &format!("file {}", path.display()))
}

/// Creates a pending grant for `subject` and the peer `peer_name`, creating the peer (pending) if this
/// gateway does not know it yet.
pub(crate) async fn create_grant(
    store: &Store,
    subject: SubjectUserId,
    peer_name: &str,
    peer_url: Option<&str>,
    scope: serde_json::Value,
    expires_at: Option<OffsetDateTime>,
) -> Result<(Grant, Peer), FederationError> {
    check_peer_name(peer_name)?;
    let peer = match store.get_peer_by_name(peer_name).await? {
        Some(peer) => peer,
        None => {
            // This gateway never calls the peer; the URL is for the operator's records. Default: the name.
            let url = match peer_url {
                Some(url) => url.to_owned(),
                None => format!("https://{peer_name}/"),
            };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(FederationError::usage(
                    format!("the peer URL {url:?} is not an http(s) URL"),
                    "pass --peer-url https://HOST[:PORT]/",
                ));
            }
            store
                .insert_peer(&NewPeer::new(peer_name, peer_name, url))
                .await?
        }
    };
    let mut new = NewGrant::new(subject, peer.id, scope);
    if let Some(at) = expires_at {
        new = new.expires_at(at);
    }
    let grant = store.create_grant(&new).await?;
    Ok((grant, peer))
}

/// A grant by id, or a usage error naming it.
pub(crate) async fn grant_by_id(store: &Store, id: GrantId) -> Result<Grant, FederationError> {
    store.get_grant(id).await?.ok_or_else(|| {
        FederationError::usage(
            format!("no grant {id}"),
            "list grants with `mosaic federation grant list`",
        )
    })
}

/// The gateway's public URL for enrollment URLs: `explicit`, else `MOSAIC_PUBLIC_URL`, else the URL the
/// server of this data directory announced when it started.
pub(crate) fn public_url(explicit: Option<&str>, data_dir: &Path) -> Result<Url, FederationError> {
    let remediation = "pass --public-url https://HOST:PORT (the address peers reach `mosaic gateway serve` at), set \
                       MOSAIC_PUBLIC_URL, or start `mosaic gateway serve` with this data directory first";
    let text = match explicit
        .map(str::to_owned)
        .or_else(|| std::env::var(PUBLIC_URL_VAR).ok().filter(|v| !v.is_empty()))
    {
        Some(text) => text,
        None => match std::fs::read_to_string(data_dir.join(SERVER_URL_FILE)) {
            Ok(text) => text.trim().to_owned(),
            Err(_) => {
                return Err(FederationError::usage(
                    "this gateway's public URL is unknown",
                    remediation,
                ));
            }
        },
    };
    let url = Url::parse(&text).map_err(|e| {
        FederationError::usage(
            format!("the public URL {text:?} is not a URL: {e}"),
            remediation,
        )
    })?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(FederationError::usage(
            format!("the public URL {text:?} must be https://HOST[:PORT]"),
            remediation,
        ));
    }
    Ok(url)
}

/// Issues a single-use enrollment token for a pending grant and wraps it in an enrollment URL.
pub(crate) async fn enrollment_url(
    store: &Store,
    grant_id: GrantId,
    ttl: Duration,
    base: &Url,
    server_root: RootFingerprint,
) -> Result<(EnrollmentUrl, OffsetDateTime), FederationError> {
    let grant = grant_by_id(store, grant_id).await?;
    let Some(peer) = store.get_peer(grant.peer_id).await? else {
        return Err(FederationError::Internal(format!(
            "grant {grant_id} names a peer that does not exist"
        )));
    };
    let issued = store.create_enrollment_token(grant_id, ttl).await?;
    let mut base = base.clone();
    base.set_path("/");
    Ok((
        EnrollmentUrl {
            base,
            token: issued.token,
            peer_name: peer.common_name,
            server_root,
        },
        issued.expires_at,
    ))
}

/// Where `mosaic gateway serve` announces its URL.
pub(crate) fn server_url_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join(SERVER_URL_FILE)
}

/// Records the URL a server of this data directory serves at.
pub(crate) fn announce_server_url(data_dir: &Path, url: &Url) -> Result<(), FederationError> {
    let path = server_url_file(data_dir);
    data_dir::write_private(&path, format!("{url}\n").as_bytes()).map_err(|source| {
        FederationError::Io {
            action: "writing",
            path,
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_are_validated_with_positions() {
        assert!(parse_scope(r#"{"resources": ["calendar"]}"#, "x").is_ok());
        let err = parse_scope("{\n  \"a\": [1,\n}", "file s.json").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.is_usage());
        assert!(
            parse_scope("[1, 2]", "x")
                .unwrap_err()
                .to_string()
                .contains("not an object")
        );
        assert!(
            parse_scope(r#"{"": 1}"#, "x")
                .unwrap_err()
                .to_string()
                .contains("empty key")
        );
        let big = format!("{{\"k\": \"{}\"}}", "a".repeat(MAX_SCOPE_BYTES));
        assert!(
            parse_scope(&big, "x")
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn uuids_must_be_canonical() {
        assert!(parse_id::<SubjectUserId>("9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11", "user").is_ok());
        assert!(parse_id::<SubjectUserId>("9B2B6F8E-2A43-4D7E-BB53-5A3C7C1F0E11", "user").is_err());
        let err = parse_id::<GrantId>("nope", "grant id").unwrap_err();
        assert!(err.to_string().contains("grant id"), "{err}");
        assert!(err.to_string().contains("not a canonical UUID"), "{err}");
    }
}
