//! Decryption of a password-encrypted provisioner key: a JWE with `alg` PBES2-HS256+A128KW and `enc`
//! A256GCM (or A128GCM), in compact or JSON serialization, as `step crypto jwk create` and
//! `step ca init` write it (RFC 7516, RFC 7518 §4.8 and §5.3).
//!
//! Hand-written over the RustCrypto primitives (pbkdf2, aes-kw, aes-gcm) rather than a JOSE crate:
//! the JOSE crates either use `ring`/OpenSSL or an older RustCrypto generation (a second `p256` and
//! `der` in the tree), and this is one fixed algorithm combination of about a hundred lines.

use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};
use aes_kw::KwAes128;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{CaError, json_error};

/// The only key-management algorithm accepted.
pub(crate) const PBES2_ALG: &str = "PBES2-HS256+A128KW";

/// The most PBKDF2 iterations accepted: 5× what current `step` writes (600 000). A larger `p2c` in a
/// tampered file could otherwise pin a CPU for minutes at start-up.
pub const MAX_PBES2_COUNT: u32 = 3_000_000;

/// The fewest PBKDF2 iterations accepted (RFC 7518 §4.8.1.2 recommends at least 1000).
pub const MIN_PBES2_COUNT: u32 = 1_000;

/// What the provisioner key variable holds.
pub(crate) enum KeyMaterial<'a> {
    /// A plain JWK JSON object.
    PlainJwk(&'a [u8]),
    /// A JWE in JSON serialization.
    JsonJwe(&'a str),
    /// A JWE in compact serialization (five base64url parts).
    CompactJwe(&'a str),
}

/// Tells a plain JWK from the two JWE serializations.
pub(crate) fn classify(text: &str) -> Result<KeyMaterial<'_>, CaError> {
    let trimmed = text.trim();
    if trimmed.starts_with('{') {
        // Decide by the members present, without keeping a parsed copy of a possible private key.
        #[derive(Deserialize)]
        struct Probe {
            kty: Option<serde::de::IgnoredAny>,
            ciphertext: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_str(trimmed).map_err(|e| {
            CaError::KeyDecrypt(format!(
                "the provisioner key is not valid JSON ({})",
                json_error(&e)
            ))
        })?;
        return match (probe.kty.is_some(), probe.ciphertext.is_some()) {
            (_, true) => Ok(KeyMaterial::JsonJwe(trimmed)),
            (true, false) => Ok(KeyMaterial::PlainJwk(trimmed.as_bytes())),
            (false, false) => Err(CaError::KeyDecrypt(
                "the provisioner key JSON is neither a JWK (no kty) nor a JWE (no ciphertext)"
                    .into(),
            )),
        };
    }
    if trimmed.split('.').count() == 5 {
        return Ok(KeyMaterial::CompactJwe(trimmed));
    }
    Err(CaError::KeyDecrypt(
        "the provisioner key is neither JSON (a JWK or a JWE) nor a compact JWE (five dot-separated parts)"
            .into(),
    ))
}

/// The parts of a JWE after either serialization has been taken apart.
struct JweParts {
    /// The protected header exactly as transmitted (base64url), because it is the AAD.
    protected_b64: String,
    /// Header members from the protected header, the shared unprotected header and the recipient's.
    header: Map<String, Value>,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
    /// The JSON serialization's optional `aad` member, as transmitted.
    aad_b64: Option<String>,
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, CaError> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| CaError::KeyDecrypt(format!("the JWE's {field} is not base64url")))
}

fn decode_protected(protected_b64: &str) -> Result<Map<String, Value>, CaError> {
    let bytes = b64("protected header", protected_b64)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(CaError::KeyDecrypt(
            "the JWE's protected header is not a JSON object".into(),
        )),
        Err(e) => Err(CaError::KeyDecrypt(format!(
            "the JWE's protected header is not JSON ({})",
            json_error(&e)
        ))),
    }
}

/// Adds `extra` header members to `header`; RFC 7516 §7.2.1 forbids a name in more than one of them.
fn merge_header(header: &mut Map<String, Value>, extra: Option<&Value>) -> Result<(), CaError> {
    match extra {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(members)) => {
            for (name, value) in members {
                if header.insert(name.clone(), value.clone()).is_some() {
                    return Err(CaError::KeyDecrypt(format!(
                        "the JWE header member {name:?} appears in more than one header"
                    )));
                }
            }
            Ok(())
        }
        Some(_) => Err(CaError::KeyDecrypt(
            "a JWE unprotected header is not a JSON object".into(),
        )),
    }
}

fn parse_compact(text: &str) -> Result<JweParts, CaError> {
    let parts: Vec<&str> = text.split('.').collect();
    let [protected, encrypted_key, iv, ciphertext, tag] = parts.as_slice() else {
        return Err(CaError::KeyDecrypt(
            "a compact JWE has exactly five parts".into(),
        ));
    };
    Ok(JweParts {
        protected_b64: (*protected).to_owned(),
        header: decode_protected(protected)?,
        encrypted_key: b64("encrypted_key", encrypted_key)?,
        iv: b64("iv", iv)?,
        ciphertext: b64("ciphertext", ciphertext)?,
        tag: b64("tag", tag)?,
        aad_b64: None,
    })
}

fn parse_json(text: &str) -> Result<JweParts, CaError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        CaError::KeyDecrypt(format!("the JWE is not valid JSON ({})", json_error(&e)))
    })?;
    let get_str = |obj: &Value, name: &str| -> Result<Option<String>, CaError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(CaError::KeyDecrypt(format!(
                "the JWE's {name} is not a string"
            ))),
        }
    };
    let required = |obj: &Value, name: &str| -> Result<String, CaError> {
        get_str(obj, name)?.ok_or_else(|| CaError::KeyDecrypt(format!("the JWE has no {name}")))
    };
    let protected_b64 = required(&value, "protected")?;
    let mut header = decode_protected(&protected_b64)?;
    merge_header(&mut header, value.get("unprotected"))?;
    // Flattened syntax (`header`, `encrypted_key` at the top) or general syntax (one recipient).
    let (recipient_header, encrypted_key) = match value.get("recipients") {
        None | Some(Value::Null) => (
            value.get("header").cloned(),
            get_str(&value, "encrypted_key")?,
        ),
        Some(Value::Array(recipients)) => match recipients.as_slice() {
            [only] => (only.get("header").cloned(), get_str(only, "encrypted_key")?),
            _ => {
                return Err(CaError::KeyDecrypt(format!(
                    "the JWE has {} recipients; a provisioner key has exactly one",
                    recipients.len()
                )));
            }
        },
        Some(_) => {
            return Err(CaError::KeyDecrypt(
                "the JWE's recipients is not an array".into(),
            ));
        }
    };
    merge_header(&mut header, recipient_header.as_ref())?;
    Ok(JweParts {
        protected_b64,
        header,
        encrypted_key: b64("encrypted_key", &encrypted_key.unwrap_or_default())?,
        iv: b64("iv", &required(&value, "iv")?)?,
        ciphertext: b64("ciphertext", &required(&value, "ciphertext")?)?,
        tag: b64("tag", &required(&value, "tag")?)?,
        aad_b64: get_str(&value, "aad")?,
    })
}

/// Decrypts a PBES2 JWE (compact or JSON serialization) with `password` and returns the plaintext,
/// the JWK JSON, in a zeroizing buffer.
///
/// # Errors
///
/// [`CaError::KeyDecrypt`] for a wrong password (the AES key wrap's integrity check fails), an
/// unsupported algorithm, an out-of-range `p2c`, or a malformed JWE. The message never contains the
/// password or any key material.
pub(crate) fn decrypt(text: &str, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
    let parts = match classify(text)? {
        KeyMaterial::JsonJwe(json) => parse_json(json)?,
        KeyMaterial::CompactJwe(compact) => parse_compact(compact)?,
        KeyMaterial::PlainJwk(_) => {
            return Err(CaError::KeyDecrypt(
                "the provisioner key is a plain JWK, not a JWE".into(),
            ));
        }
    };
    let header_str = |name: &str| parts.header.get(name).and_then(Value::as_str);
    let alg =
        header_str("alg").ok_or_else(|| CaError::KeyDecrypt("the JWE header has no alg".into()))?;
    if alg != PBES2_ALG {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE's alg is {alg:?}; only {PBES2_ALG} (a password-encrypted step key) is supported"
        )));
    }
    let enc =
        header_str("enc").ok_or_else(|| CaError::KeyDecrypt("the JWE header has no enc".into()))?;
    let cek_len = match enc {
        "A256GCM" => 32,
        "A128GCM" => 16,
        other => {
            return Err(CaError::KeyDecrypt(format!(
                "the JWE's enc is {other:?}; only A256GCM and A128GCM are supported"
            )));
        }
    };
    if parts.header.contains_key("zip") {
        return Err(CaError::KeyDecrypt(
            "compressed JWEs (zip) are not supported".into(),
        ));
    }
    if let Some(crit) = parts.header.get("crit") {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE marks header members as critical ({crit}), which this client does not understand"
        )));
    }
    let p2s = b64(
        "p2s",
        header_str("p2s")
            .ok_or_else(|| CaError::KeyDecrypt("the JWE header has no p2s (salt)".into()))?,
    )?;
    if p2s.len() < 8 {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE's p2s salt is {} bytes; at least 8 are required",
            p2s.len()
        )));
    }
    let p2c = parts
        .header
        .get("p2c")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            CaError::KeyDecrypt("the JWE header has no integer p2c (iteration count)".into())
        })?;
    let p2c = u32::try_from(p2c)
        .ok()
        .filter(|c| (MIN_PBES2_COUNT..=MAX_PBES2_COUNT).contains(c))
        .ok_or_else(|| {
            CaError::KeyDecrypt(format!(
                "the JWE's p2c is {p2c}; this client accepts {MIN_PBES2_COUNT} to {MAX_PBES2_COUNT} iterations"
            ))
        })?;
    if parts.iv.len() != 12 {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE's iv is {} bytes; AES-GCM needs 12",
            parts.iv.len()
        )));
    }
    if parts.tag.len() != 16 {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE's tag is {} bytes; AES-GCM's is 16",
            parts.tag.len()
        )));
    }
    if parts.encrypted_key.len() != cek_len + 8 {
        return Err(CaError::KeyDecrypt(format!(
            "the JWE's encrypted_key is {} bytes; a wrapped {enc} key is {}",
            parts.encrypted_key.len(),
            cek_len + 8
        )));
    }

    // RFC 7518 §4.8.1.1: salt = UTF8(alg) || 0x00 || p2s.
    let mut salt = Vec::with_capacity(alg.len() + 1 + p2s.len());
    salt.extend_from_slice(alg.as_bytes());
    salt.push(0);
    salt.extend_from_slice(&p2s);
    let mut kek = Zeroizing::new([0u8; 16]);
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, p2c, kek.as_mut());

    let kw = KwAes128::new_from_slice(kek.as_ref())
        .map_err(|_| CaError::Internal("AES key wrap key of the wrong length".into()))?;
    let mut cek = Zeroizing::new(vec![0u8; cek_len]);
    kw.unwrap_key(&parts.encrypted_key, &mut cek).map_err(|_| {
        CaError::KeyDecrypt(
            "wrong password: the key wrap's integrity check failed (STEP_CA_PROVISIONER_PASSWORD does not \
             match the password the key was encrypted with)"
                .into(),
        )
    })?;

    // RFC 7516 §5.2 step 14: AAD = ASCII(protected) [|| '.' || ASCII(aad)].
    let mut aad = parts.protected_b64.clone().into_bytes();
    if let Some(extra) = &parts.aad_b64 {
        aad.push(b'.');
        aad.extend_from_slice(extra.as_bytes());
    }
    let nonce = Nonce::try_from(parts.iv.as_slice())
        .map_err(|_| CaError::KeyDecrypt("the JWE's iv has the wrong length".into()))?;
    let tag = Tag::try_from(parts.tag.as_slice())
        .map_err(|_| CaError::KeyDecrypt("the JWE's tag has the wrong length".into()))?;
    let mut plaintext = Zeroizing::new(parts.ciphertext.clone());
    let opened = if cek_len == 32 {
        Aes256Gcm::new_from_slice(&cek)
            .map_err(|_| CaError::Internal("content key of the wrong length".into()))?
            .decrypt_inout_detached(&nonce, &aad, plaintext.as_mut_slice().into(), &tag)
    } else {
        Aes128Gcm::new_from_slice(&cek)
            .map_err(|_| CaError::Internal("content key of the wrong length".into()))?
            .decrypt_inout_detached(&nonce, &aad, plaintext.as_mut_slice().into(), &tag)
    };
    opened.map_err(|_| {
        CaError::KeyDecrypt(
            "the JWE's content failed authentication (the file was modified after encryption)"
                .into(),
        )
    })?;
    Ok(plaintext)
}

/// Encrypts `plaintext` as step does (JSON serialization), for tests and fixtures only.
#[cfg(test)]
pub(crate) fn encrypt_for_tests(plaintext: &[u8], password: &[u8], p2c: u32) -> String {
    #![allow(clippy::unwrap_used)]
    let mut p2s = [0u8; 16];
    getrandom::fill(&mut p2s).unwrap();
    let mut cek = [0u8; 32];
    getrandom::fill(&mut cek).unwrap();
    let mut iv = [0u8; 12];
    getrandom::fill(&mut iv).unwrap();
    let protected = serde_json::json!({
        "alg": PBES2_ALG, "enc": "A256GCM", "cty": "jwk+json",
        "p2c": p2c, "p2s": URL_SAFE_NO_PAD.encode(p2s),
    });
    let protected_b64 = URL_SAFE_NO_PAD.encode(protected.to_string());
    let mut salt = PBES2_ALG.as_bytes().to_vec();
    salt.push(0);
    salt.extend_from_slice(&p2s);
    let mut kek = [0u8; 16];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, p2c, &mut kek);
    let mut wrapped = [0u8; 40];
    KwAes128::new_from_slice(&kek)
        .unwrap()
        .wrap_key(&cek, &mut wrapped)
        .unwrap();
    let mut buf = plaintext.to_vec();
    let tag = Aes256Gcm::new_from_slice(&cek)
        .unwrap()
        .encrypt_inout_detached(
            &Nonce::try_from(&iv[..]).unwrap(),
            protected_b64.as_bytes(),
            buf.as_mut_slice().into(),
        )
        .unwrap();
    serde_json::json!({
        "protected": protected_b64,
        "encrypted_key": URL_SAFE_NO_PAD.encode(wrapped),
        "iv": URL_SAFE_NO_PAD.encode(iv),
        "ciphertext": URL_SAFE_NO_PAD.encode(&buf),
        "tag": URL_SAFE_NO_PAD.encode(tag),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Made by `tests/vectors/make-jwe-vector.mjs` with Node's crypto (an independent implementation).
    const NODE_VECTOR: &str = include_str!("../tests/vectors/node-pbes2-jwe.json");

    fn vector() -> Value {
        serde_json::from_str(NODE_VECTOR).unwrap()
    }

    #[test]
    fn decrypts_node_json_serialization() {
        let v = vector();
        let plaintext = decrypt(
            &v["jwe_json"].to_string(),
            v["password"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        let jwk: Value = serde_json::from_slice(&plaintext).unwrap();
        assert_eq!(jwk, v["jwk"]);
    }

    #[test]
    fn decrypts_node_compact_serialization() {
        let v = vector();
        let plaintext = decrypt(
            v["jwe_compact"].as_str().unwrap(),
            v["password"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        let jwk: Value = serde_json::from_slice(&plaintext).unwrap();
        assert_eq!(jwk, v["jwk"]);
    }

    #[test]
    fn wrong_password_is_key_decrypt_and_says_so() {
        let v = vector();
        let err = decrypt(&v["jwe_json"].to_string(), b"not the password at all").unwrap_err();
        assert_eq!(err.code(), "KEY_DECRYPT");
        assert!(err.to_string().contains("wrong password"), "{err}");
        assert!(!err.to_string().contains(v["password"].as_str().unwrap()));
    }

    #[test]
    fn round_trip_with_own_encryption() {
        let secret = br#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}"#;
        let jwe = encrypt_for_tests(secret, b"correct horse battery staple", 1000);
        assert_eq!(
            decrypt(&jwe, b"correct horse battery staple")
                .unwrap()
                .as_slice(),
            secret
        );
        assert_eq!(
            decrypt(&jwe, b"Correct horse battery staple")
                .unwrap_err()
                .code(),
            "KEY_DECRYPT"
        );
    }

    #[test]
    fn tampering_is_detected() {
        let v = vector();
        let password = v["password"].as_str().unwrap().as_bytes();
        // A changed protected header (here: the content type) breaks the AAD.
        let mut jwe = v["jwe_json"].clone();
        let mut header = decode_protected(jwe["protected"].as_str().unwrap()).unwrap();
        header.insert("cty".into(), "text/plain".into());
        jwe["protected"] = URL_SAFE_NO_PAD
            .encode(Value::Object(header).to_string())
            .into();
        let err = decrypt(&jwe.to_string(), password).unwrap_err();
        assert_eq!(err.code(), "KEY_DECRYPT");
        assert!(err.to_string().contains("modified"), "{err}");
        // A flipped ciphertext bit.
        let mut jwe = v["jwe_json"].clone();
        let mut ct = URL_SAFE_NO_PAD
            .decode(jwe["ciphertext"].as_str().unwrap())
            .unwrap();
        ct[0] ^= 1;
        jwe["ciphertext"] = URL_SAFE_NO_PAD.encode(ct).into();
        assert_eq!(
            decrypt(&jwe.to_string(), password).unwrap_err().code(),
            "KEY_DECRYPT"
        );
    }

    #[test]
    fn iteration_count_is_bounded() {
        let v = vector();
        for p2c in [0u64, 999, u64::from(MAX_PBES2_COUNT) + 1, u64::MAX] {
            let mut jwe = v["jwe_json"].clone();
            let mut header = decode_protected(jwe["protected"].as_str().unwrap()).unwrap();
            header.insert("p2c".into(), p2c.into());
            jwe["protected"] = URL_SAFE_NO_PAD
                .encode(Value::Object(header).to_string())
                .into();
            let err = decrypt(&jwe.to_string(), b"x").unwrap_err();
            assert_eq!(err.code(), "KEY_DECRYPT");
            assert!(err.to_string().contains("p2c"), "{err}");
        }
    }

    #[test]
    fn unsupported_and_malformed_inputs_are_refused() {
        let v = vector();
        let mut other_alg = v["jwe_json"].clone();
        let mut header = decode_protected(other_alg["protected"].as_str().unwrap()).unwrap();
        header.insert("alg".into(), "dir".into());
        other_alg["protected"] = URL_SAFE_NO_PAD
            .encode(Value::Object(header).to_string())
            .into();
        let mut no_tag = v["jwe_json"].clone();
        no_tag.as_object_mut().unwrap().remove("tag");
        let mut dup = v["jwe_json"].clone();
        dup["header"] = serde_json::json!({"alg": PBES2_ALG});
        for (case, text) in [
            ("other alg", other_alg.to_string()),
            ("no tag", no_tag.to_string()),
            ("duplicate header member", dup.to_string()),
            ("four parts", "a.b.c.d".to_owned()),
            ("garbage", "%%%".to_owned()),
            ("empty object", "{}".to_owned()),
            ("bad base64", "!!.b.c.d.e".to_owned()),
        ] {
            let err = decrypt(&text, b"x").unwrap_err();
            assert_eq!(err.code(), "KEY_DECRYPT", "{case}: {err}");
        }
    }
}
