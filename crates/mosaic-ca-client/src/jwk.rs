//! The provisioner's P-256 JSON Web Key and its RFC 7638 thumbprint.

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::SigningKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{CaError, json_error};

/// The JWK members this crate reads. Unknown members (`use`, `alg`, ...) are ignored, as RFC 7517 asks.
#[derive(Deserialize)]
struct JwkMembers {
    kty: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    // Moved straight into a `Zeroizing` after parsing; the heap buffer is never copied.
    d: Option<String>,
    kid: Option<String>,
    // RSA, OKP and symmetric members, only for the thumbprint of non-EC keys.
    n: Option<String>,
    e: Option<String>,
    k: Option<String>,
}

/// The provisioner's private key, decoded once, with the `kid` step-ca knows it by.
///
/// `Debug` shows only the key id; the private scalar is zeroized on drop (`SigningKey` is
/// `ZeroizeOnDrop`).
pub(crate) struct ProvisionerKey {
    pub(crate) signing_key: SigningKey,
    /// The `kid` header value: the JWK's own `kid` when it has one, else its RFC 7638 thumbprint.
    pub(crate) kid: String,
    /// The RFC 7638 thumbprint of the public key.
    pub(crate) thumbprint: String,
}

impl fmt::Debug for ProvisionerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionerKey")
            .field("kid", &self.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ProvisionerKey {
    /// Parses a private P-256 JWK (`kty` EC, `crv` P-256, `x`, `y`, `d`) from its JSON text.
    ///
    /// The public coordinates must be those of `d`: a JWK whose halves disagree is refused, because
    /// step-ca would verify the token with `x`/`y` while we sign with `d`.
    pub(crate) fn from_jwk_json(json: &[u8]) -> Result<Self, CaError> {
        let members: JwkMembers = serde_json::from_slice(json).map_err(|e| {
            CaError::KeyDecrypt(format!(
                "the key is not a JSON Web Key ({})",
                json_error(&e)
            ))
        })?;
        let d = members.d.map(Zeroizing::new);
        match members.kty.as_deref() {
            Some("EC") => {}
            Some(other) => {
                return Err(CaError::KeyDecrypt(format!(
                    "the JWK has kty {other:?}; a step-ca JWK provisioner key for this client must be EC P-256"
                )));
            }
            None => return Err(CaError::KeyDecrypt("the JWK has no kty member".into())),
        }
        if members.crv.as_deref() != Some("P-256") {
            return Err(CaError::KeyDecrypt(format!(
                "the JWK's curve is {:?}; only P-256 (ES256) is supported",
                members.crv.as_deref().unwrap_or("missing")
            )));
        }
        let (Some(x), Some(y)) = (members.x.as_deref(), members.y.as_deref()) else {
            return Err(CaError::KeyDecrypt(
                "the JWK lacks its public coordinates x and y".into(),
            ));
        };
        let Some(d) = d else {
            return Err(CaError::KeyDecrypt(
                "the JWK has no private part (d): this is the provisioner's public key; pass the private \
                 key file (secrets/mosaic-fed.json)"
                    .into(),
            ));
        };
        let d_bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(d.as_bytes())
                .map_err(|_| CaError::KeyDecrypt("the JWK's d is not base64url".into()))?,
        );
        if d_bytes.len() != 32 {
            return Err(CaError::KeyDecrypt(format!(
                "the JWK's d is {} bytes; a P-256 private key is 32",
                d_bytes.len()
            )));
        }
        let signing_key = SigningKey::from_slice(&d_bytes).map_err(|_| {
            CaError::KeyDecrypt("the JWK's d is not a valid P-256 private key".into())
        })?;
        let point = signing_key.verifying_key().to_sec1_point(false);
        let (Some(px), Some(py)) = (point.x(), point.y()) else {
            return Err(CaError::Internal("could not encode the public key".into()));
        };
        let (ex, ey) = (URL_SAFE_NO_PAD.encode(px), URL_SAFE_NO_PAD.encode(py));
        if ex != x || ey != y {
            return Err(CaError::KeyDecrypt(
                "the JWK's public coordinates x/y do not belong to its private key d".into(),
            ));
        }
        let thumbprint =
            thumbprint_of_members(&[("crv", "P-256"), ("kty", "EC"), ("x", &ex), ("y", &ey)]);
        let kid = members
            .kid
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| thumbprint.clone());
        Ok(Self {
            signing_key,
            kid,
            thumbprint,
        })
    }

    /// The public half as a JWK JSON object (what step-ca's ca.json holds under the provisioner's `key`).
    pub(crate) fn public_jwk(&self) -> serde_json::Value {
        let point = self.signing_key.verifying_key().to_sec1_point(false);
        let enc =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        serde_json::json!({
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": enc(point.x()),
            "y": enc(point.y()),
        })
    }
}

/// The RFC 7638 thumbprint (base64url of SHA-256) of a JWK given as JSON text.
///
/// Uses the required members of its `kty`: EC (`crv`, `kty`, `x`, `y`), RSA (`e`, `kty`, `n`),
/// OKP (`crv`, `kty`, `x`) and oct (`k`, `kty`), in lexicographic order without whitespace.
///
/// # Errors
///
/// [`CaError::KeyDecrypt`] when the text is not a JWK or lacks a required member.
pub fn jwk_thumbprint(jwk_json: &str) -> Result<String, CaError> {
    let m: JwkMembers = serde_json::from_str(jwk_json)
        .map_err(|e| CaError::KeyDecrypt(format!("not a JSON Web Key ({})", json_error(&e))))?;
    drop(m.d.map(Zeroizing::new));
    let missing =
        |name: &str| CaError::KeyDecrypt(format!("the JWK lacks the required member {name}"));
    let kty = m.kty.as_deref().ok_or_else(|| missing("kty"))?;
    let thumbprint = match kty {
        "EC" => thumbprint_of_members(&[
            ("crv", m.crv.as_deref().ok_or_else(|| missing("crv"))?),
            ("kty", "EC"),
            ("x", m.x.as_deref().ok_or_else(|| missing("x"))?),
            ("y", m.y.as_deref().ok_or_else(|| missing("y"))?),
        ]),
        "RSA" => thumbprint_of_members(&[
            ("e", m.e.as_deref().ok_or_else(|| missing("e"))?),
            ("kty", "RSA"),
            ("n", m.n.as_deref().ok_or_else(|| missing("n"))?),
        ]),
        "OKP" => thumbprint_of_members(&[
            ("crv", m.crv.as_deref().ok_or_else(|| missing("crv"))?),
            ("kty", "OKP"),
            ("x", m.x.as_deref().ok_or_else(|| missing("x"))?),
        ]),
        "oct" => thumbprint_of_members(&[
            ("k", m.k.as_deref().ok_or_else(|| missing("k"))?),
            ("kty", "oct"),
        ]),
        other => return Err(CaError::KeyDecrypt(format!("unknown JWK kty {other:?}"))),
    };
    Ok(thumbprint)
}

/// Hashes the members (already in lexicographic order) as RFC 7638 §3.2 canonical JSON.
fn thumbprint_of_members(members: &[(&str, &str)]) -> String {
    let mut canonical = String::from("{");
    for (i, (name, value)) in members.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        // serde_json's string escaping is exactly JSON's, which RFC 7638 §3.3 requires.
        canonical.push_str(&serde_json::Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&serde_json::Value::from(*value).to_string());
    }
    canonical.push('}');
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    #[test]
    fn rfc7638_section_3_1_example() {
        let jwk = r#"{
          "kty": "RSA",
          "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e": "AQAB",
          "alg": "RS256",
          "kid": "2011-04-29"
        }"#;
        assert_eq!(
            jwk_thumbprint(jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn member_order_and_whitespace_do_not_matter() {
        let a = r#"{"kty":"EC","crv":"P-256","x":"AAA","y":"BBB","kid":"ignored"}"#;
        let b = r#"{ "y" : "BBB", "x":"AAA", "crv":"P-256", "kty":"EC" }"#;
        assert_eq!(jwk_thumbprint(a).unwrap(), jwk_thumbprint(b).unwrap());
        // A different coordinate gives a different thumbprint.
        let c = r#"{"kty":"EC","crv":"P-256","x":"AAB","y":"BBB"}"#;
        assert_ne!(jwk_thumbprint(a).unwrap(), jwk_thumbprint(c).unwrap());
    }

    #[test]
    fn missing_members_are_named() {
        let err = jwk_thumbprint(r#"{"kty":"EC","crv":"P-256","x":"AAA"}"#).unwrap_err();
        assert_eq!(err.code(), "KEY_DECRYPT");
        assert!(err.to_string().contains("member y"), "{err}");
    }

    fn sample_private_jwk() -> (String, SigningKey) {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            "d": URL_SAFE_NO_PAD.encode([7u8; 32]),
        });
        (jwk.to_string(), key)
    }

    #[test]
    fn private_jwk_parses_and_kid_defaults_to_thumbprint() {
        let (jwk, key) = sample_private_jwk();
        let parsed = ProvisionerKey::from_jwk_json(jwk.as_bytes()).unwrap();
        assert_eq!(parsed.signing_key.verifying_key(), key.verifying_key());
        assert_eq!(parsed.kid, jwk_thumbprint(&jwk).unwrap());
        assert_eq!(parsed.kid, parsed.thumbprint);
        let debug = format!("{parsed:?}");
        assert!(
            debug.contains("<redacted>") && !debug.contains(&URL_SAFE_NO_PAD.encode([7u8; 32]))
        );
        assert_eq!(parsed.public_jwk()["kid"], parsed.kid.as_str());
        assert!(parsed.public_jwk().get("d").is_none());
    }

    #[test]
    fn explicit_kid_is_kept() {
        let (jwk, _) = sample_private_jwk();
        let mut v: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        v["kid"] = "my-kid".into();
        let parsed = ProvisionerKey::from_jwk_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.kid, "my-kid");
        assert_ne!(parsed.thumbprint, "my-kid");
    }

    #[test]
    fn bad_keys_are_refused_with_key_decrypt() {
        let (jwk, _) = sample_private_jwk();
        let v: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        let mut public_only = v.clone();
        public_only.as_object_mut().unwrap().remove("d");
        let mut mismatched = v.clone();
        mismatched["d"] = URL_SAFE_NO_PAD.encode([8u8; 32]).into();
        let mut rsa = v.clone();
        rsa["kty"] = "RSA".into();
        let mut p384 = v.clone();
        p384["crv"] = "P-384".into();
        for (case, text) in [
            ("public only", public_only.to_string()),
            ("mismatched", mismatched.to_string()),
            ("rsa", rsa.to_string()),
            ("p384", p384.to_string()),
            ("not json", "nope".to_owned()),
        ] {
            let err = ProvisionerKey::from_jwk_json(text.as_bytes()).unwrap_err();
            assert_eq!(err.code(), "KEY_DECRYPT", "{case}: {err}");
            // Never echo the private scalar.
            assert!(
                !err.to_string().contains(&URL_SAFE_NO_PAD.encode([7u8; 32])),
                "{case}"
            );
        }
    }
}
