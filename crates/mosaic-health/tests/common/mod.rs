//! Helpers shared by this crate's integration tests.
//!
//! mosaic-health depends on no other mosaic crate (not even in tests), so a throwaway root comes from
//! openssl here rather than from mosaic-ca-client's `ServerCa`.

use std::path::{Path, PathBuf};

use mosaic_health::CheckResult;

/// A fresh self-signed P-256 root named `CN=<common_name>`, written to `<dir>/root.crt` (its key to
/// `<dir>/root.key`): a root that is not the CA's, or any readable root when the probe must fail first.
pub fn throwaway_root(dir: &Path, common_name: &str) -> PathBuf {
    let path = dir.join("root.crt");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
        ])
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(dir.join("root.key"))
        .arg("-out")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is needed to make a throwaway root certificate");
    assert!(status.success(), "openssl req failed");
    path
}

/// The result failed with `code`, an error text and a remediation.
pub fn assert_failed(result: &CheckResult, code: &str) {
    assert!(!result.ok(), "{result:?}");
    assert_eq!(result.code(), Some(code), "{result:?}");
    assert!(result.error().is_some_and(|e| !e.is_empty()), "{result:?}");
    assert!(
        result.remediation().is_some_and(|r| !r.is_empty()),
        "{result:?}"
    );
}
