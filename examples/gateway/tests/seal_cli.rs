//! `mosaic seal seal|open|keys`, run as the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::Write as _,
    process::{Command, Output, Stdio},
};

use mosaic_seal::Keyring;

const SECRET: &str = "cli-test-secret-0123456789-abcdefghijklmnopqrstuv";
const OLD_SECRET: &str = "cli-old-secret-0123456789-abcdefghijklmnopqrstuvw";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n";

/// Runs `mosaic seal <args>` with `secret` as `BETTER_AUTH_SECRET` (or none), optional previous secrets
/// file contents, and `stdin`.
fn mosaic_seal(
    args: &[&str],
    secret: Option<&str>,
    previous: Option<&str>,
    stdin: &[u8],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    command
        .arg("seal")
        .args(args)
        .env_remove("BETTER_AUTH_SECRET")
        .env_remove("MOSAIC_SEAL_PREVIOUS_SECRETS_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = secret {
        command.env("BETTER_AUTH_SECRET", secret);
    }
    let file = previous.map(|contents| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    });
    if let Some(file) = &file {
        command.env("MOSAIC_SEAL_PREVIOUS_SECRETS_FILE", file.path());
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// A failure: exit 1, a message on stderr containing `needle`, nothing on stdout, no secret leaked.
fn assert_failed(output: &Output, needle: &str) {
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(output));
    assert!(output.stdout.is_empty(), "stdout: {:?}", stdout(output));
    let message = stderr(output);
    assert!(message.contains(needle), "{message}");
    assert!(
        !message.contains(SECRET) && !message.contains(OLD_SECRET),
        "{message}"
    );
    assert!(!message.contains("MIGHAgEAMBMG"), "{message}");
}

#[test]
fn v1_round_trip_with_aad() {
    let aad = "federation_peers/client_key_pem/42";
    let sealed = mosaic_seal(&["seal", "--aad", aad], Some(SECRET), None, PEM.as_bytes());
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let text = stdout(&sealed);
    assert!(text.starts_with("$mosaic-seal$") && text.ends_with('\n'));
    assert!(sealed.stderr.is_empty());

    // The library opens what the CLI sealed.
    let keyring = Keyring::from_secrets(SECRET, [] as [&str; 0]).unwrap();
    assert_eq!(
        keyring
            .open(text.trim_end(), aad.as_bytes())
            .unwrap()
            .as_str()
            .unwrap(),
        PEM
    );

    // The CLI opens it back (the trailing newline is ignored) and prints exactly the plaintext.
    let opened = mosaic_seal(&["open", "--aad", aad], Some(SECRET), None, text.as_bytes());
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(stdout(&opened), PEM);

    // Another place: refused, with the reason.
    let moved = mosaic_seal(
        &["open", "--aad", "federation_peers/client_key_pem/43"],
        Some(SECRET),
        None,
        text.as_bytes(),
    );
    assert_failed(&moved, "associated data");
    let no_aad = mosaic_seal(&["open"], Some(SECRET), None, text.as_bytes());
    assert_failed(&no_aad, "associated data");
}

#[test]
fn v1_round_trip_of_binary_data() {
    let data: Vec<u8> = (0..=255u8).rev().cycle().take(3000).collect();
    let sealed = mosaic_seal(&["seal"], Some(SECRET), None, &data);
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let opened = mosaic_seal(&["open"], Some(SECRET), None, &sealed.stdout);
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(opened.stdout, data);
}

#[test]
fn legacy_round_trip() {
    let sealed = mosaic_seal(
        &["seal", "--format", "legacy"],
        Some(SECRET),
        None,
        PEM.as_bytes(),
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let text = stdout(&sealed);
    assert!(!text.starts_with('$'));
    let keyring = Keyring::from_secrets(SECRET, [] as [&str; 0]).unwrap();
    let opened = keyring.open_with_details(text.trim_end(), b"").unwrap();
    assert_eq!(opened.format(), mosaic_seal::Format::Legacy);

    let opened = mosaic_seal(&["open"], Some(SECRET), None, text.as_bytes());
    assert!(opened.status.success(), "{}", stderr(&opened));
    assert_eq!(stdout(&opened), PEM);
}

#[test]
fn legacy_refuses_aad_and_binary() {
    let with_aad = mosaic_seal(
        &["seal", "--format", "legacy", "--aad", "x"],
        Some(SECRET),
        None,
        b"x",
    );
    assert_failed(&with_aad, "associated data");
    let binary = mosaic_seal(
        &["seal", "--format", "legacy"],
        Some(SECRET),
        None,
        &[0xff, 0xfe],
    );
    assert_failed(&binary, "UTF-8");
}

#[test]
fn previous_secrets_come_from_the_file() {
    let sealed = mosaic_seal(&["seal"], Some(OLD_SECRET), None, b"old value");
    let legacy = mosaic_seal(
        &["seal", "--format", "legacy"],
        Some(OLD_SECRET),
        None,
        b"old legacy",
    );
    assert!(sealed.status.success() && legacy.status.success());

    // Without the old secret: refused, and the configured key ids are shown to help.
    let refused = mosaic_seal(&["open"], Some(SECRET), None, &sealed.stdout);
    assert_failed(&refused, "not in the keyring");
    let current_id = Keyring::from_secrets(SECRET, [] as [&str; 0])
        .unwrap()
        .current_key_id();
    assert!(stderr(&refused).contains(&current_id.to_string()));
    let refused = mosaic_seal(&["open"], Some(SECRET), None, &legacy.stdout);
    assert_failed(&refused, "no key in the keyring opens this legacy value");

    // With it in the file (blank lines and CRLF line ends are fine).
    let file =
        format!("\r\nsome-other-secret-that-is-long-enough-0123456789\r\n\n{OLD_SECRET}\r\n");
    for value in [&sealed.stdout, &legacy.stdout] {
        let opened = mosaic_seal(&["open"], Some(SECRET), Some(&file), value);
        assert!(opened.status.success(), "{}", stderr(&opened));
        assert!(stdout(&opened).starts_with("old "));
    }

    // `keys` lists current then previous.
    let keys = mosaic_seal(&["keys"], Some(SECRET), Some(&file), b"");
    assert!(keys.status.success(), "{}", stderr(&keys));
    let old_id = Keyring::from_secrets(OLD_SECRET, [] as [&str; 0])
        .unwrap()
        .current_key_id();
    let listing = stdout(&keys);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], format!("current {current_id}"));
    assert_eq!(lines[2], format!("previous {old_id}"));
}

#[test]
fn missing_or_unreadable_secrets_fail_clearly() {
    let output = mosaic_seal(&["seal"], None, None, b"x");
    assert_failed(&output, "BETTER_AUTH_SECRET is not set");
    let output = mosaic_seal(&["open"], Some(""), None, b"x");
    assert_failed(&output, "secret is empty");

    let mut command = Command::new(env!("CARGO_BIN_EXE_mosaic"));
    let output = command
        .args(["seal", "open"])
        .env("BETTER_AUTH_SECRET", SECRET)
        .env(
            "MOSAIC_SEAL_PREVIOUS_SECRETS_FILE",
            "/nonexistent/mosaic-previous-secrets",
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_failed(&output, "/nonexistent/mosaic-previous-secrets");

    let output = mosaic_seal(&["open"], Some(SECRET), Some("short\n"), b"x");
    assert_failed(&output, "previous #1 secret is shorter than 32 bytes");
}

#[test]
fn short_secrets_need_the_flag() {
    let refused = mosaic_seal(&["seal"], Some("dev-secret"), None, b"x");
    assert_failed(&refused, "shorter than 32 bytes");
    assert!(stderr(&refused).contains("to fix:"));
    let sealed = mosaic_seal(
        &["seal", "--allow-short-secret"],
        Some("dev-secret"),
        None,
        b"x",
    );
    assert!(sealed.status.success(), "{}", stderr(&sealed));
    let opened = mosaic_seal(
        &["open", "--allow-short-secret"],
        Some("dev-secret"),
        None,
        &sealed.stdout,
    );
    assert_eq!(opened.stdout, b"x");
}

#[test]
fn bad_input_fails_with_nothing_on_stdout() {
    assert_failed(
        &mosaic_seal(&["open"], Some(SECRET), None, b"not a sealed value"),
        "malformed",
    );
    assert_failed(
        &mosaic_seal(&["open"], Some(SECRET), None, b""),
        "malformed",
    );
    assert_failed(
        &mosaic_seal(&["open"], Some(SECRET), None, &[0xff, 0x00]),
        "not text",
    );

    // A tampered value.
    let sealed = mosaic_seal(&["seal"], Some(SECRET), None, PEM.as_bytes());
    let mut text = stdout(&sealed).trim_end().to_owned();
    let last = text.pop().unwrap();
    text.push(if last == 'A' { 'B' } else { 'A' });
    let output = mosaic_seal(&["open"], Some(SECRET), None, text.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
}

#[test]
fn the_secret_is_never_taken_from_argv() {
    // There is no option for it: clap refuses one (usage error, exit 2).
    let output = mosaic_seal(&["seal", "--secret", SECRET], Some(SECRET), None, b"x");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}
