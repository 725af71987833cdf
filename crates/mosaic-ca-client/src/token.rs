//! The one-time token (OTT) step-ca's JWK provisioner accepts on `POST /1.0/sign`.
//!
//! A compact JWS, ES256, written by hand: header and claims are serialised with serde_json, encoded
//! with base64url and signed with `p256`'s ECDSA signer, whose fixed-size signature is exactly JWS's
//! raw `r ‖ s` (RFC 7518 §3.4). No JOSE crate of the RustCrypto generation this workspace uses
//! (p256 0.14) exists; the ones that do would pull a second `p256`/`der` or `ring`/OpenSSL for twenty
//! lines of well-specified encoding.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::ecdsa::{Signature, signature::Signer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{error::CaError, jwk::ProvisionerKey};

/// How long a token is valid (`exp - nbf`). step-ca allows one minute of clock leeway on either side.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The claim carrying the grant id, read by the federation template as `.Token.mosaic_grant_id`.
pub const GRANT_ID_CLAIM: &str = "mosaic_grant_id";
/// The claim carrying the subject user id, read as `.Token.mosaic_subject_user_id`.
pub const SUBJECT_USER_ID_CLAIM: &str = "mosaic_subject_user_id";

/// Test hook: changes how a token is made, so tests can show the real CA refusing a bad one.
///
/// Not part of the supported API; production code never needs it.
#[doc(hidden)]
#[derive(Clone, Debug, Default)]
pub struct TokenOptions {
    /// Claims to leave out of the token (e.g. `"mosaic_grant_id"`).
    pub omit_claims: Vec<String>,
    /// Overrides for claims (set after the normal ones), e.g. a different `aud`.
    pub override_claims: Vec<(String, Value)>,
}

/// Everything the token states.
pub(crate) struct TokenInput<'a> {
    pub(crate) provisioner: &'a str,
    pub(crate) audience: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) sans: &'a [String],
    pub(crate) root_fingerprint_hex: &'a str,
    pub(crate) csr_der: &'a [u8],
    pub(crate) grant_id: &'a str,
    pub(crate) subject_user_id: &'a str,
}

fn unix_seconds(t: SystemTime) -> Result<u64, CaError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CaError::Internal("the system clock is before 1970".into()))
}

/// The claims, as a JSON object.
pub(crate) fn claims(
    input: &TokenInput<'_>,
    now: SystemTime,
    opts: &TokenOptions,
) -> Result<Map<String, Value>, CaError> {
    let iat = unix_seconds(now)?;
    let exp = iat + TOKEN_LIFETIME.as_secs();
    let mut jti = [0u8; 32];
    getrandom::fill(&mut jti)
        .map_err(|e| CaError::Internal(format!("random number generator: {e}")))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), input.provisioner.into());
    claims.insert("aud".into(), input.audience.into());
    claims.insert("sub".into(), input.subject.into());
    claims.insert("sans".into(), input.sans.to_vec().into());
    claims.insert("iat".into(), iat.into());
    claims.insert("nbf".into(), iat.into());
    claims.insert("exp".into(), exp.into());
    claims.insert("jti".into(), hex::encode(jti).into());
    claims.insert("sha".into(), input.root_fingerprint_hex.into());
    claims.insert(
        "cnf".into(),
        serde_json::json!({ "x5rt#S256": URL_SAFE_NO_PAD.encode(Sha256::digest(input.csr_der)) }),
    );
    claims.insert(GRANT_ID_CLAIM.into(), input.grant_id.into());
    claims.insert(SUBJECT_USER_ID_CLAIM.into(), input.subject_user_id.into());
    for name in &opts.omit_claims {
        claims.remove(name);
    }
    for (name, value) in &opts.override_claims {
        claims.insert(name.clone(), value.clone());
    }
    Ok(claims)
}

/// Signs `claims` as a compact ES256 JWS with the provisioner key.
pub(crate) fn sign(key: &ProvisionerKey, claims: &Map<String, Value>) -> Result<String, CaError> {
    let header = serde_json::json!({ "alg": "ES256", "kid": key.kid, "typ": "JWT" });
    let encode = |v: &Value| -> Result<String, CaError> {
        serde_json::to_vec(v)
            .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
            .map_err(|e| CaError::Internal(format!("encoding the token: {e}")))
    };
    let mut token = encode(&header)?;
    token.push('.');
    token.push_str(&encode(&Value::Object(claims.clone()))?);
    // ES256: ECDSA P-256 over SHA-256 of the signing input; JWS wants the 64-byte r ‖ s, not DER.
    let signature: Signature = key.signing_key.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    Ok(token)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use p256::ecdsa::{SigningKey, VerifyingKey, signature::Verifier};

    fn key() -> ProvisionerKey {
        let sk = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let point = sk.verifying_key().to_sec1_point(false);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            "d": URL_SAFE_NO_PAD.encode([9u8; 32]),
        });
        ProvisionerKey::from_jwk_json(jwk.to_string().as_bytes()).unwrap()
    }

    fn input<'a>(sans: &'a [String]) -> TokenInput<'a> {
        TokenInput {
            provisioner: "mosaic-fed",
            audience: "https://localhost:9000/1.0/sign",
            subject: "peer-1.example",
            sans,
            root_fingerprint_hex: "ab".repeat(32).leak(),
            csr_der: b"not really a csr",
            grant_id: "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            subject_user_id: "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11",
        }
    }

    fn split(token: &str) -> (Value, Value, Vec<u8>, String) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        (header, claims, sig, format!("{}.{}", parts[0], parts[1]))
    }

    #[test]
    fn token_has_the_shape_step_ca_expects() {
        let key = key();
        let sans = vec!["peer-1.example".to_owned()];
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let token = sign(
            &key,
            &claims(&input(&sans), now, &TokenOptions::default()).unwrap(),
        )
        .unwrap();
        let (header, claims, sig, signing_input) = split(&token);

        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "kid": key.thumbprint, "typ": "JWT"})
        );
        assert_eq!(claims["iss"], "mosaic-fed");
        assert_eq!(claims["aud"], "https://localhost:9000/1.0/sign");
        assert_eq!(claims["sub"], "peer-1.example");
        assert_eq!(claims["sans"], serde_json::json!(["peer-1.example"]));
        assert_eq!(claims["iat"], 1_800_000_000u64);
        assert_eq!(claims["nbf"], 1_800_000_000u64);
        assert_eq!(claims["exp"], 1_800_000_300u64);
        assert_eq!(claims["sha"], "ab".repeat(32));
        assert_eq!(
            claims["cnf"]["x5rt#S256"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"not really a csr"))
        );
        assert_eq!(
            claims[GRANT_ID_CLAIM],
            "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
        );
        assert_eq!(
            claims[SUBJECT_USER_ID_CLAIM],
            "9b2b6f8e-2a43-4d7e-bb53-5a3c7c1f0e11"
        );
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 64);

        // Raw r || s, verifiable with the public key.
        assert_eq!(sig.len(), 64);
        let signature = Signature::from_slice(&sig).unwrap();
        let vk: VerifyingKey = *key.signing_key.verifying_key();
        vk.verify(signing_input.as_bytes(), &signature).unwrap();
        // And not over anything else.
        assert!(vk.verify(b"other", &signature).is_err());
    }

    #[test]
    fn every_token_has_a_fresh_jti() {
        let key = key();
        let sans = vec!["a".to_owned()];
        let now = SystemTime::now();
        let a = claims(&input(&sans), now, &TokenOptions::default()).unwrap();
        let b = claims(&input(&sans), now, &TokenOptions::default()).unwrap();
        assert_ne!(a["jti"], b["jti"]);
        assert_ne!(sign(&key, &a).unwrap(), sign(&key, &b).unwrap());
    }

    #[test]
    fn token_options_omit_and_override() {
        let sans = vec!["a".to_owned()];
        let opts = TokenOptions {
            omit_claims: vec![GRANT_ID_CLAIM.to_owned()],
            override_claims: vec![("aud".to_owned(), "https://elsewhere/1.0/sign".into())],
        };
        let c = claims(&input(&sans), SystemTime::now(), &opts).unwrap();
        assert!(!c.contains_key(GRANT_ID_CLAIM));
        assert!(c.contains_key(SUBJECT_USER_ID_CLAIM));
        assert_eq!(c["aud"], "https://elsewhere/1.0/sign");
    }
}
