//! Round trips, tampering, associated data, error kinds and secret hygiene.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use mosaic_seal::{
    Format, KeyId, Keyring, KeyringOptions, SealError, SecretRole, V1_PREFIX, format_of, key_id_of,
};
use proptest::prelude::*;

const SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const OTHER_SECRET: &str = "another-secret-0123456789-abcdefghijklmnopqrstuvw";
const AAD: &[u8] = b"federation_peers/client_key_pem/7f1c2b6e-0d0a-4a57-9b8e-2b8f0f6d8e11";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

fn keyring() -> Keyring {
    Keyring::from_secrets(SECRET, [] as [&str; 0]).unwrap()
}

fn v1_bytes(sealed: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(sealed.strip_prefix(V1_PREFIX).unwrap())
        .unwrap()
}

fn v1_text(bytes: &[u8]) -> String {
    format!("{V1_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Every single-bit flip of `sealed` must fail to open. Flips that make the text invalid UTF-8 cannot
/// even be passed as `&str` and count as refused; they are counted separately to show the test is not
/// vacuous.
fn assert_every_bit_flip_fails(keyring: &Keyring, sealed: &str, aad: &[u8]) {
    let mut opened_checked = 0usize;
    for index in 0..sealed.len() {
        for bit in 0..8 {
            let mut bytes = sealed.as_bytes().to_vec();
            bytes[index] ^= 1 << bit;
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            opened_checked += 1;
            let result = keyring.open(text, aad);
            assert!(
                result.is_err(),
                "flip of bit {bit} in byte {index} opened: {text}"
            );
        }
    }
    // Bits 0..=6 of an ASCII byte keep it ASCII: at least 7 of 8 flips per byte were really opened.
    assert!(opened_checked >= sealed.len() * 7);
}

#[test]
fn v1_round_trip_with_and_without_aad() {
    let keyring = keyring();
    for aad in [&b""[..], AAD] {
        let sealed = keyring.seal(PEM.as_bytes(), aad).unwrap();
        assert!(sealed.starts_with(V1_PREFIX));
        assert!(!sealed.contains(PEM));
        let opened = keyring.open(&sealed, aad).unwrap();
        assert_eq!(opened.as_str().unwrap(), PEM);
        assert_eq!(format_of(&sealed).unwrap(), Format::V1);
        assert_eq!(key_id_of(&sealed).unwrap(), Some(keyring.current_key_id()));
    }
}

#[test]
fn legacy_round_trip_and_layout() {
    let keyring = keyring();
    let sealed = keyring.seal_legacy(PEM).unwrap();
    let raw = STANDARD.decode(&sealed).unwrap();
    assert_eq!(
        raw.len(),
        12 + 16 + PEM.len(),
        "iv(12) ‖ tag(16) ‖ ciphertext"
    );
    assert_eq!(keyring.open(&sealed, b"").unwrap().as_str().unwrap(), PEM);
    assert_eq!(format_of(&sealed).unwrap(), Format::Legacy);
    assert_eq!(key_id_of(&sealed).unwrap(), None);
}

#[test]
fn nonces_are_fresh() {
    let keyring = keyring();
    let a = keyring.seal(b"same", AAD).unwrap();
    let b = keyring.seal(b"same", AAD).unwrap();
    assert_ne!(a, b);
    assert_ne!(v1_bytes(&a)[13..25], v1_bytes(&b)[13..25]);
    assert_ne!(
        keyring.seal_legacy("same").unwrap(),
        keyring.seal_legacy("same").unwrap()
    );
}

#[test]
fn v1_header_layout_is_as_documented() {
    let keyring = keyring();
    let sealed = keyring.seal(b"abc", AAD).unwrap();
    let bytes = v1_bytes(&sealed);
    assert_eq!(bytes.len(), 1 + 8 + 4 + 12 + 3 + 16);
    assert_eq!(bytes[0], 1, "version");
    assert_eq!(&bytes[1..9], keyring.current_key_id().as_bytes(), "key id");
}

#[test]
fn every_single_bit_flip_of_a_v1_value_fails() {
    let keyring = keyring();
    let sealed = keyring.seal(PEM.as_bytes(), AAD).unwrap();
    assert_every_bit_flip_fails(&keyring, &sealed, AAD);
    let sealed = keyring.seal(b"", b"").unwrap();
    assert_every_bit_flip_fails(&keyring, &sealed, b"");
}

#[test]
fn every_single_bit_flip_of_a_legacy_value_fails() {
    let keyring = keyring();
    for plaintext in [PEM, "", "a", "ab"] {
        let sealed = keyring.seal_legacy(plaintext).unwrap();
        assert_every_bit_flip_fails(&keyring, &sealed, b"");
    }
}

#[test]
fn wrong_associated_data_is_reported_as_such() {
    let keyring = keyring();
    let sealed = keyring.seal(PEM.as_bytes(), AAD).unwrap();
    let id = keyring.current_key_id();
    for other in [
        &b""[..],
        b"federation_peers/client_key_pem/another-row",
        &[b'x'; 300][..],
    ] {
        let error = keyring.open(&sealed, other).unwrap_err();
        assert!(
            matches!(error, SealError::BadAssociatedData { key_id } if key_id == id),
            "{error:?}"
        );
        assert_eq!(error.code(), "seal.bad_associated_data");
    }
    // Sealed without AAD, opened with some.
    let sealed = keyring.seal(PEM.as_bytes(), b"").unwrap();
    assert!(matches!(
        keyring.open(&sealed, AAD),
        Err(SealError::BadAssociatedData { .. })
    ));
}

#[test]
fn long_associated_data_round_trips_and_binds() {
    // Past the 256-byte stack buffer for header ‖ AAD.
    let keyring = keyring();
    let long: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let sealed = keyring.seal(b"value", &long).unwrap();
    assert_eq!(keyring.open(&sealed, &long).unwrap().as_bytes(), b"value");
    let mut other = long.clone();
    other[999] ^= 1;
    assert!(matches!(
        keyring.open(&sealed, &other),
        Err(SealError::BadAssociatedData { .. })
    ));
}

#[test]
fn altered_ciphertext_nonce_or_tag_is_tampered() {
    let keyring = keyring();
    let sealed = keyring.seal(PEM.as_bytes(), AAD).unwrap();
    let bytes = v1_bytes(&sealed);
    // nonce, first ciphertext byte, last ciphertext byte, tag.
    for index in [13, 25, bytes.len() - 17, bytes.len() - 1] {
        let mut altered = bytes.clone();
        altered[index] ^= 0x80;
        let error = keyring.open(&v1_text(&altered), AAD).unwrap_err();
        assert!(matches!(error, SealError::Tampered { .. }), "{error:?}");
        assert_eq!(error.code(), "seal.tampered");
    }
    // The version byte is authenticated too; changing it to an unknown one is reported as such.
    let mut altered = bytes.clone();
    altered[0] = 2;
    assert!(matches!(
        keyring.open(&v1_text(&altered), AAD),
        Err(SealError::UnsupportedVersion { version: 2 })
    ));
    // An altered AAD check field cannot be told from a wrong AAD (documented).
    let mut altered = bytes;
    altered[9] ^= 1;
    assert!(matches!(
        keyring.open(&v1_text(&altered), AAD),
        Err(SealError::BadAssociatedData { .. })
    ));
}

#[test]
fn unknown_key_id_and_wrong_key() {
    let ours = keyring();
    let theirs = Keyring::from_secrets(OTHER_SECRET, [] as [&str; 0]).unwrap();
    let sealed = theirs.seal(b"x", b"").unwrap();
    let error = ours.open(&sealed, b"").unwrap_err();
    assert!(
        matches!(error, SealError::UnknownKeyId { key_id } if key_id == theirs.current_key_id()),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains(&theirs.current_key_id().to_string())
    );

    let legacy = theirs.seal_legacy("x").unwrap();
    assert!(matches!(ours.open(&legacy, b""), Err(SealError::WrongKey)));

    // A key id rewritten to ours: the tag fails under our key, AAD check differs → reported, not opened.
    let mut bytes = v1_bytes(&sealed);
    bytes[1..9].copy_from_slice(ours.current_key_id().as_bytes());
    assert!(ours.open(&v1_text(&bytes), b"").is_err());
}

#[test]
fn malformed_inputs_are_refused() {
    let keyring = keyring();
    let short_v1 = v1_text(&[1u8; 40]);
    let cases: [&str; 9] = [
        "",
        "$",
        "$mosaic-seal$",
        "$mosaic-seal$!!!!",
        "$other$AAAA",
        "not base64 at all",
        "AAAA",
        &short_v1,
        "QUFB\n",
    ];
    for case in cases {
        let error = keyring.open(case, b"").unwrap_err();
        assert!(
            matches!(error, SealError::Malformed { .. }),
            "{case:?}: {error:?}"
        );
        assert!(!error.remediation().is_empty());
        assert!(format_of(case).is_err());
    }
    // A trailing newline is not silently accepted (callers trim what they read).
    let sealed = keyring.seal(b"x", b"").unwrap();
    assert!(matches!(
        keyring.open(&format!("{sealed}\n"), b""),
        Err(SealError::Malformed { .. })
    ));
    // An unknown version is reported before the length check.
    assert!(matches!(
        keyring.open(&v1_text(&[9]), b""),
        Err(SealError::UnsupportedVersion { version: 9 })
    ));
}

#[test]
fn secrets_are_checked() {
    let error = Keyring::from_secrets("", [] as [&str; 0]).unwrap_err();
    assert!(matches!(
        error,
        SealError::EmptySecret {
            role: SecretRole::Current
        }
    ));
    let error = Keyring::from_secrets(SECRET, [OTHER_SECRET, ""]).unwrap_err();
    assert!(matches!(
        error,
        SealError::EmptySecret {
            role: SecretRole::Previous { index: 1 }
        }
    ));
    assert!(error.to_string().contains("previous #2"));

    let short = "0123456789abcdefghijklmnopqrstu"; // 31 bytes
    let error = Keyring::from_secrets(short, [] as [&str; 0]).unwrap_err();
    assert!(matches!(error, SealError::ShortSecret { .. }));
    assert!(error.to_string().contains("no password KDF"));
    assert!(!error.to_string().contains(short));
    assert!(Keyring::from_secrets(&format!("{short}v"), [] as [&str; 0]).is_ok());

    let allowed = Keyring::from_secrets_with(
        short,
        [] as [&str; 0],
        KeyringOptions::default().allow_short_secrets(),
    )
    .unwrap();
    let sealed = allowed.seal(b"x", b"").unwrap();
    assert_eq!(allowed.open(&sealed, b"").unwrap().as_bytes(), b"x");
    // Empty stays refused even when short secrets are allowed.
    assert!(
        Keyring::from_secrets_with(
            "",
            [] as [&str; 0],
            KeyringOptions::default().allow_short_secrets()
        )
        .is_err()
    );
}

#[test]
fn debug_shows_key_ids_only() {
    let keyring = Keyring::from_secrets(SECRET, [OTHER_SECRET]).unwrap();
    let debug = format!("{keyring:?}");
    let ids: Vec<KeyId> = keyring.key_ids().collect();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert!(debug.contains(&id.to_string()), "{debug}");
    }
    assert!(!debug.contains(SECRET) && !debug.contains(OTHER_SECRET));
    // Nor the legacy key (SHA-256 of the secret), in hex.
    let legacy_key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(SECRET));
    assert!(!debug.contains(&legacy_key[..16]));

    let plaintext = keyring
        .open(&keyring.seal(b"hunter2", b"").unwrap(), b"")
        .unwrap();
    let debug = format!("{plaintext:?}");
    assert!(!debug.contains("hunter2") && debug.contains('7'), "{debug}");
}

#[test]
fn errors_never_contain_plaintext_or_secret() {
    let keyring = keyring();
    let plaintext = "PLAINTEXT-MARKER-should-never-leak";
    let sealed = keyring.seal(plaintext.as_bytes(), AAD).unwrap();
    let legacy = keyring.seal_legacy(plaintext).unwrap();
    let other = Keyring::from_secrets(OTHER_SECRET, [] as [&str; 0]).unwrap();
    let mut errors = vec![
        keyring.open(&sealed, b"other").unwrap_err(),
        other.open(&sealed, AAD).unwrap_err(),
        other.open(&legacy, b"").unwrap_err(),
        keyring.open(plaintext, b"").unwrap_err(),
        keyring.open(&format!("${plaintext}"), b"").unwrap_err(),
    ];
    let mut bytes = v1_bytes(&sealed);
    bytes[30] ^= 1;
    errors.push(keyring.open(&v1_text(&bytes), AAD).unwrap_err());
    for error in errors {
        let text = format!("{error} {error:?} {}", error.remediation());
        assert!(!text.contains("PLAINTEXT-MARKER"), "{text}");
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn key_id_text_round_trips() {
    let id = keyring().current_key_id();
    let text = id.to_string();
    assert_eq!(text.len(), 16);
    assert_eq!(text.parse::<KeyId>().unwrap(), id);
    assert_eq!(format!("{id:?}"), format!("KeyId({text})"));
    assert!(matches!(
        "xyz".parse::<KeyId>(),
        Err(SealError::InvalidKeyId)
    ));
    assert!("0011223344556677ff".parse::<KeyId>().is_err());
}

#[test]
fn key_derivation_is_deterministic_and_distinct() {
    let a = keyring().current_key_id();
    assert_eq!(a, keyring().current_key_id());
    let b = Keyring::from_secrets(OTHER_SECRET, [] as [&str; 0])
        .unwrap()
        .current_key_id();
    assert_ne!(a, b);
}

#[test]
fn legacy_values_ignore_aad_unless_refused() {
    let keyring = keyring();
    let legacy = keyring.seal_legacy("x").unwrap();
    // Legacy values carry no AAD: the argument cannot be checked (documented), so they open.
    assert_eq!(keyring.open(&legacy, AAD).unwrap().as_bytes(), b"x");
    let strict = Keyring::from_secrets_with(
        SECRET,
        [] as [&str; 0],
        KeyringOptions::default().refuse_legacy_values(),
    )
    .unwrap();
    assert!(matches!(
        strict.open(&legacy, b""),
        Err(SealError::LegacyRefused)
    ));
    let v1 = strict.seal(b"x", AAD).unwrap();
    assert_eq!(strict.open(&v1, AAD).unwrap().as_bytes(), b"x");
}

fn arbitrary_aad() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v1_round_trips_arbitrary_bytes(plaintext in prop::collection::vec(any::<u8>(), 0..3000), aad in arbitrary_aad()) {
        let keyring = keyring();
        let sealed = keyring.seal(&plaintext, &aad).unwrap();
        let opened = keyring.open(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_bytes(), &plaintext[..]);
        prop_assert!(!keyring.needs_reseal(&sealed).unwrap());
    }

    #[test]
    fn legacy_round_trips_arbitrary_text(plaintext in ".{0,600}") {
        let keyring = keyring();
        let sealed = keyring.seal_legacy(&plaintext).unwrap();
        let opened = keyring.open(&sealed, b"").unwrap();
        prop_assert_eq!(opened.as_str().unwrap(), plaintext.as_str());
    }

    #[test]
    fn other_aad_fails(plaintext in prop::collection::vec(any::<u8>(), 0..300), aad in arbitrary_aad(), other in arbitrary_aad()) {
        prop_assume!(aad != other);
        let keyring = keyring();
        let sealed = keyring.seal(&plaintext, &aad).unwrap();
        let error = keyring.open(&sealed, &other).unwrap_err();
        // 2^-32 chance of equal AAD checks, then reported as Tampered: still a failure.
        let reported = matches!(error, SealError::BadAssociatedData { .. } | SealError::Tampered { .. });
        prop_assert!(reported, "{:?}", error);
    }

    #[test]
    fn random_byte_edits_fail(plaintext in prop::collection::vec(any::<u8>(), 0..300), index in any::<prop::sample::Index>(), byte in any::<u8>(), legacy in any::<bool>()) {
        let keyring = keyring();
        let text = String::from_utf8_lossy(&plaintext).into_owned();
        let sealed = if legacy { keyring.seal_legacy(&text).unwrap() } else { keyring.seal(&plaintext, AAD).unwrap() };
        let mut bytes = sealed.into_bytes();
        let at = index.index(bytes.len());
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;
        if let Ok(edited) = std::str::from_utf8(&bytes) {
            prop_assert!(keyring.open(edited, AAD).is_err());
        }
    }

    #[test]
    fn open_never_panics_on_arbitrary_text(text in ".{0,200}", aad in arbitrary_aad()) {
        let keyring = keyring();
        let _ = keyring.open(&text, &aad);
        let _ = keyring.open(&format!("{V1_PREFIX}{text}"), &aad);
        let _ = format_of(&text);
    }

    #[test]
    fn open_never_panics_on_arbitrary_v1_bytes(bytes in prop::collection::vec(any::<u8>(), 0..120), aad in arbitrary_aad()) {
        let keyring = keyring();
        let mut bytes = bytes;
        if let Some(first) = bytes.first_mut() { *first = 1; }
        if bytes.len() > 9 { bytes[1..9].copy_from_slice(keyring.current_key_id().as_bytes()); }
        prop_assert!(keyring.open(&v1_text(&bytes), &aad).is_err());
        prop_assert!(keyring.open(&STANDARD.encode(&bytes), &aad).is_err());
    }
}
