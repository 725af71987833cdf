//! `mosaic cert inspect` on the openssl-made fixtures of mosaic-oid (no server needed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const GRANT: &str = "0b9a2f4e-7c1d-4e8a-9f3b-2d6c5a1e8f70";
const SUBJECT: &str = "5f0c6a3e-2b7d-4c19-8e4a-7d1f9b3c2a60";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/mosaic-oid/tests/fixtures")
        .join(name)
}

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["cert", "inspect"])
        .args(args)
        .env_remove("MOSAIC_OID_ARC")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The fixture's serial (hex), subject and validity (der's `DateTime` display, which is RFC 3339 in
/// UTC), read with x509-cert independently of the command's own formatting code.
fn expected_fields(der_path: &Path) -> (String, String, String, String) {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(&std::fs::read(der_path).unwrap()).unwrap();
    let tbs = cert.tbs_certificate();
    let serial = tbs.serial_number().as_bytes();
    let serial = serial
        .strip_prefix(&[0])
        .filter(|s| !s.is_empty())
        .unwrap_or(serial);
    let serial: String = serial.iter().map(|b| format!("{b:02x}")).collect();
    let validity = tbs.validity();
    (
        serial,
        tbs.subject().to_string(),
        validity.not_before.to_string(),
        validity.not_after.to_string(),
    )
}

#[test]
fn prints_the_identity_of_a_good_certificate_pem_and_der() {
    let (serial, subject, not_before, not_after) = expected_fields(&fixture("good.der"));
    assert!(
        subject.contains("CN=peer-gateway.federation.mosaic.example"),
        "{subject}"
    );
    for file in ["good.der", "good.pem", "good-chain.pem"] {
        let out = inspect(&[fixture(file).to_str().unwrap()]);
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{file}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        for (label, value) in [
            ("grant id:", GRANT),
            ("subject user id:", SUBJECT),
            ("serial:", serial.as_str()),
            ("subject:", subject.as_str()),
            ("not before:", not_before.as_str()),
            ("not after:", not_after.as_str()),
        ] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("{stdout}"));
            assert_eq!(line[label.len()..].trim(), value, "{file}: {stdout}");
        }
    }
}

#[test]
fn json_is_one_object_with_rfc3339_times() {
    let (serial, subject, not_before, not_after) = expected_fields(&fixture("good.der"));
    let out = inspect(&["--json", fixture("good.pem").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "grant_id",
            "not_after",
            "not_before",
            "serial",
            "subject",
            "subject_user_id"
        ]
    );
    assert_eq!(json["grant_id"], GRANT);
    assert_eq!(json["subject_user_id"], SUBJECT);
    assert_eq!(json["serial"], serial.as_str());
    assert_eq!(json["subject"], subject.as_str());
    // RFC 3339 in UTC: 2026-12-03T16:15:00Z.
    assert_eq!(json["not_before"], not_before.as_str());
    assert_eq!(json["not_after"], not_after.as_str());
    for time in [&not_before, &not_after] {
        let shape: String = time
            .chars()
            .map(|c| if c.is_ascii_digit() { 'd' } else { c })
            .collect();
        assert_eq!(shape, "dddd-dd-ddTdd:dd:ddZ", "{time}");
    }
}

#[test]
fn each_malformed_certificate_exits_1_with_one_clear_line() {
    for (file, phrase) in [
        (
            "malformed-missing.der",
            "has no extension 1.3.6.1.4.1.99999.1 (mosaic.federation.grantId)",
        ),
        (
            "malformed-duplicate.der",
            "1.3.6.1.4.1.99999.1 (mosaic.federation.grantId) 2 times",
        ),
        (
            "malformed-printable-string.der",
            "PrintableString (tag 0x13)",
        ),
        ("malformed-ia5-string.der", "IA5String (tag 0x16)"),
        ("malformed-zero-length.der", "length 0"),
        ("malformed-length-35.der", "length 35, expected 36"),
        ("malformed-ber-long-form.der", "not DER: long-form length"),
        ("malformed-truncated.der", "declares 36 bytes but 30 follow"),
        ("malformed-trailing-bytes.der", "1 trailing byte(s)"),
        ("malformed-not-uuid.der", "not a canonical UUID"),
        ("malformed-uppercase-uuid.der", "uppercase"),
    ] {
        let out = inspect(&[fixture(file).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(out.stdout.is_empty(), "{file}: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{file}: {stderr}");
        assert!(stderr.starts_with("mosaic cert inspect: "), "{stderr}");
        assert!(
            stderr.contains(phrase),
            "{file}: {stderr:?} lacks {phrase:?}"
        );
        assert!(stderr.contains("1.3.6.1.4.1.99999.1"), "{file}: {stderr}");
        assert!(stderr.contains("to fix:"), "{file}: {stderr}");
        // The --json form fails the same way: no half-written object on stdout.
        let out = inspect(&["--json", fixture(file).to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(out.stdout.is_empty());
        assert_eq!(text(&out.stderr), stderr);
    }
}

#[test]
fn not_a_certificate_exits_1_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0x30, 0x82, 0xFF, 0xFF, 0x01]).unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.pem");
    for (path, phrase) in [
        (&garbage, "not a DER-encoded X.509 certificate"),
        (&key, "labelled \"PRIVATE KEY\""),
        (&empty, "the input is empty"),
        (&missing, "cannot read the file"),
    ] {
        let out = inspect(&[path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(phrase), "{stderr:?} lacks {phrase:?}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn own_pen_arc_from_the_flag_or_the_environment() {
    let own = fixture("own-pen.der");
    let out = inspect(&["--oid-arc", "1.3.6.1.4.1.32473.7", own.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(GRANT));
    let out = Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(["cert", "inspect", "--json", own.to_str().unwrap()])
        .env("MOSAIC_OID_ARC", "1.3.6.1.4.1.32473.7")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Without it, the development arc is looked for and not found.
    let out = inspect(&[own.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("has no extension 1.3.6.1.4.1.99999.1"));
    // A malformed arc is a usage error.
    let out = inspect(&["--oid-arc", "1.3.6.1.4.1.", own.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid OID arc"),
        "{}",
        text(&out.stderr)
    );
}
