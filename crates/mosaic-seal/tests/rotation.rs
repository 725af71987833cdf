//! The keyring and the rotation procedure of the README, step by step, with the guarantee checked at
//! every step: no stored value is unreadable by any running instance.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mosaic_seal::{Format, Keyring, SealError, key_id_of};

const OLD: &str = "old-secret-old-secret-old-secret-old-secret";
const NEW: &str = "new-secret-new-secret-new-secret-new-secret";
const OLDER: &str = "older-secret-older-secret-older-secret-older";
const NONE: [&str; 0] = [];

/// A stored row: the sealed value and the associated data that names its place.
struct Row {
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    sealed: String,
}

fn rows(keyring: &Keyring) -> Vec<Row> {
    (0..6)
        .map(|id| {
            let aad = format!("federation_peers/client_key_pem/{id}").into_bytes();
            let plaintext = format!("-----BEGIN PRIVATE KEY-----\nkey {id}\n").into_bytes();
            // Half the rows are legacy values (written by TypeScript gateways), half v1.
            let sealed = if id % 2 == 0 {
                keyring
                    .seal_legacy(std::str::from_utf8(&plaintext).unwrap())
                    .unwrap()
            } else {
                keyring.seal(&plaintext, &aad).unwrap()
            };
            Row {
                aad,
                plaintext,
                sealed,
            }
        })
        .collect()
}

fn assert_all_readable(instance: &Keyring, rows: &[Row]) {
    for row in rows {
        let opened = instance
            .open(&row.sealed, &row.aad)
            .unwrap_or_else(|error| panic!("{instance:?} cannot open a stored value: {error}"));
        assert_eq!(opened.as_bytes(), row.plaintext);
    }
}

#[test]
fn previous_keys_open_old_values() {
    let old = Keyring::from_secrets(OLD, NONE).unwrap();
    let older = Keyring::from_secrets(OLDER, NONE).unwrap();
    let old_v1 = old.seal(b"from old", b"a").unwrap();
    let old_legacy = old.seal_legacy("from old").unwrap();
    let older_v1 = older.seal(b"from older", b"b").unwrap();
    let older_legacy = older.seal_legacy("from older").unwrap();

    let ring = Keyring::from_secrets(NEW, [OLD, OLDER]).unwrap();
    assert_eq!(ring.key_ids().count(), 3);
    assert_eq!(ring.open(&old_v1, b"a").unwrap().as_bytes(), b"from old");
    assert_eq!(
        ring.open(&older_v1, b"b").unwrap().as_bytes(),
        b"from older"
    );

    let opened = ring.open_with_details(&old_legacy, b"").unwrap();
    assert_eq!(opened.plaintext().as_bytes(), b"from old");
    assert_eq!(opened.format(), Format::Legacy);
    assert_eq!(opened.key_id(), old.current_key_id());
    assert!(opened.needs_reseal());

    let opened = ring.open_with_details(&older_legacy, b"").unwrap();
    assert_eq!(opened.key_id(), older.current_key_id());

    // A legacy value under the current key is found first and still needs re-sealing (format).
    let current_legacy = ring.seal_legacy("now").unwrap();
    let opened = ring.open_with_details(&current_legacy, b"").unwrap();
    assert_eq!(opened.key_id(), ring.current_key_id());
    assert!(opened.needs_reseal());

    // Previous keys never seal.
    let sealed = ring.seal(b"x", b"").unwrap();
    assert_eq!(key_id_of(&sealed).unwrap(), Some(ring.current_key_id()));
}

#[test]
fn needs_reseal_and_reseal() {
    let old = Keyring::from_secrets(OLD, NONE).unwrap();
    let ring = Keyring::from_secrets(NEW, [OLD]).unwrap();
    let stranger = Keyring::from_secrets(OLDER, NONE).unwrap();

    let legacy = old.seal_legacy("v").unwrap();
    let old_v1 = old.seal(b"v", b"row").unwrap();
    let current_v1 = ring.seal(b"v", b"row").unwrap();
    let unknown = stranger.seal(b"v", b"row").unwrap();

    assert!(ring.needs_reseal(&legacy).unwrap());
    assert!(ring.needs_reseal(&old_v1).unwrap());
    assert!(!ring.needs_reseal(&current_v1).unwrap());
    assert!(matches!(
        ring.needs_reseal(&unknown),
        Err(SealError::UnknownKeyId { .. })
    ));
    assert!(matches!(
        ring.needs_reseal("garbage"),
        Err(SealError::Malformed { .. })
    ));

    for value in [&legacy, &old_v1, &current_v1] {
        let resealed = ring.reseal(value, b"row").unwrap();
        assert!(!ring.needs_reseal(&resealed).unwrap());
        assert_eq!(ring.open(&resealed, b"row").unwrap().as_bytes(), b"v");
    }
    // Re-sealing checks the AAD of v1 values before writing anything new.
    assert!(matches!(
        ring.reseal(&old_v1, b"another row"),
        Err(SealError::BadAssociatedData { .. })
    ));
    assert!(matches!(
        ring.reseal(&unknown, b"row"),
        Err(SealError::UnknownKeyId { .. })
    ));
}

/// The README's procedure with two instances rolled one after the other.
#[test]
fn rotation_procedure_never_leaves_a_value_unreadable() {
    // Before: every instance runs with OLD only.
    let before = Keyring::from_secrets(OLD, NONE).unwrap();
    let mut stored = rows(&before);

    // Step 0 (several instances): stage NEW as a previous key everywhere, OLD still current.
    let staged = Keyring::from_secrets(OLD, [NEW]).unwrap();
    assert_all_readable(&before, &stored);
    assert_all_readable(&staged, &stored);
    // Values written meanwhile are under OLD, readable by both kinds of instance.
    let aad = b"federation_peers/client_key_pem/staged".to_vec();
    stored.push(Row {
        sealed: staged.seal(b"written while staged", &aad).unwrap(),
        aad,
        plaintext: b"written while staged".to_vec(),
    });
    assert_all_readable(&before, &stored);

    // Step 1: NEW becomes current, OLD previous. During the roll some instances still run `staged`.
    let rotated = Keyring::from_secrets(NEW, [OLD]).unwrap();
    let aad = b"federation_peers/client_key_pem/rotated".to_vec();
    stored.push(Row {
        sealed: rotated.seal(b"written after step 1", &aad).unwrap(),
        aad,
        plaintext: b"written after step 1".to_vec(),
    });
    assert_all_readable(&staged, &stored);
    assert_all_readable(&rotated, &stored);

    // Step 2: re-seal every value that needs it (a resumable job would do this row by row).
    let pending = stored
        .iter()
        .filter(|row| rotated.needs_reseal(&row.sealed).unwrap())
        .count();
    assert_eq!(
        pending,
        stored.len() - 1,
        "all but the one sealed after step 1"
    );
    for index in 0..stored.len() {
        let row = &mut stored[index];
        if rotated.needs_reseal(&row.sealed).unwrap() {
            row.sealed = rotated.reseal(&row.sealed, &row.aad).unwrap();
        }
        // At every point of the job both instance kinds can read everything.
        assert_all_readable(&staged, &stored);
        assert_all_readable(&rotated, &stored);
    }
    // Counting by key id shows the job is complete.
    assert!(
        stored
            .iter()
            .all(|row| key_id_of(&row.sealed).unwrap() == Some(rotated.current_key_id()))
    );

    // Step 3: drop OLD.
    let after = Keyring::from_secrets(NEW, NONE).unwrap();
    assert_all_readable(&after, &stored);
    // And OLD alone can no longer read anything: the old secret is no longer needed, nor useful.
    for row in &stored {
        assert!(matches!(
            before.open(&row.sealed, &row.aad),
            Err(SealError::UnknownKeyId { .. })
        ));
    }
}

#[test]
fn duplicate_previous_secrets_are_skipped() {
    let ring = Keyring::from_secrets(NEW, [NEW, OLD, OLD]).unwrap();
    assert_eq!(ring.key_ids().count(), 2);
}
