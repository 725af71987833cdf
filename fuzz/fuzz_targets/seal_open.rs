//! Arbitrary input through `mosaic-seal`'s decoders: `open`, `format_of`, `key_id_of`, `needs_reseal`.
//! None may panic; a value forged without the key must never open; whatever opens re-seals and re-opens
//! to the same plaintext; sealing then opening round-trips.
//!
//! Input: `mode(1) ‖ aad_len(1) ‖ aad(aad_len) ‖ rest`. Modes: 0 = `rest` as the sealed text itself;
//! 1 = a v1 value built around `rest` with a valid version and a known key id (reaches the AEAD check);
//! 2 = a legacy value, standard base64 of `rest`; 3 = seal `rest` (v1 with aad, and legacy), then open.
#![no_main]

use std::sync::OnceLock;

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use libfuzzer_sys::fuzz_target;
use mosaic_seal::{Keyring, V1_PREFIX, format_of, key_id_of};

fn keyring() -> &'static Keyring {
    static KEYRING: OnceLock<Keyring> = OnceLock::new();
    KEYRING.get_or_init(|| {
        Keyring::from_secrets(
            "fuzz-current-secret-0123456789-abcdefghijklmnop",
            ["fuzz-previous-secret-0123456789-abcdefghijklmn"],
        )
        .expect("the fuzz secrets are long enough")
    })
}

/// Marks input in mode 0: it cannot occur in an error message (errors are static text plus public key
/// ids), so finding it there means an error echoed its input. Raw input itself is no good probe: the
/// fuzzer learns the static messages and feeds them back as input.
const CANARY: &str = "\u{2603}echo-canary\u{2603}";

/// `echo_probe`: a part of `text` that no error message may contain.
fn check_open(keyring: &Keyring, text: &str, aad: &[u8], forged: bool, echo_probe: Option<&str>) {
    let _ = format_of(text);
    let _ = key_id_of(text);
    let _ = keyring.needs_reseal(text);
    match keyring.open(text, aad) {
        Ok(plaintext) => {
            assert!(!forged, "a value made without the key opened");
            let resealed = keyring.reseal(text, aad).expect("an opened value re-seals");
            let reopened = keyring
                .open(&resealed, aad)
                .expect("a re-sealed value opens");
            assert_eq!(reopened.as_bytes(), plaintext.as_bytes());
        }
        Err(error) => {
            // Errors never echo the input.
            if let Some(probe) = echo_probe {
                assert!(
                    !error.to_string().contains(probe),
                    "an error echoed its input"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let keyring = keyring();
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let Some((&aad_len, data)) = data.split_first() else {
        return;
    };
    let (aad, rest) = data.split_at(usize::from(aad_len).min(data.len()));

    match mode % 4 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                check_open(keyring, text, aad, false, None);
                let marked = format!("{CANARY}{text}{CANARY}");
                check_open(keyring, &marked, aad, false, Some(CANARY));
            }
        }
        1 => {
            let mut bytes = vec![1u8];
            let key_ids: Vec<_> = keyring.key_ids().collect();
            let key_id = key_ids[usize::from(mode / 4) % key_ids.len()];
            bytes.extend_from_slice(key_id.as_bytes());
            bytes.extend_from_slice(rest);
            let text = format!("{V1_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
            // Base64 text: no run of 24 base64 characters occurs in the (worded) static messages.
            let probe = (text.len() >= V1_PREFIX.len() + 24).then_some(&text[V1_PREFIX.len()..]);
            check_open(keyring, &text, aad, true, probe);
        }
        2 => {
            let text = STANDARD.encode(rest);
            let probe = (text.len() >= 24).then_some(text.as_str());
            check_open(keyring, &text, aad, true, probe);
        }
        _ => {
            let sealed = keyring.seal(rest, aad).expect("sealing never fails here");
            assert_eq!(keyring.open(&sealed, aad).expect("opens").as_bytes(), rest);
            if let Ok(text) = std::str::from_utf8(rest) {
                let sealed = keyring.seal_legacy(text).expect("sealing never fails here");
                assert_eq!(keyring.open(&sealed, b"").expect("opens").as_bytes(), rest);
            }
        }
    }
});
