//! The gateway's data directory: the local tier's SQLite file, its `LocalCa`, and the server identity.
//!
//! ```text
//! <data dir>/mosaic.sqlite3                 local tier: the store (grants, peers, tokens, audit)
//! <data dir>/local-ca/root.pem              local tier: the federation CA (LocalCa), root certificate
//! <data dir>/local-ca/intermediate.pem      ... its intermediate certificate
//! <data dir>/local-ca/intermediate-key.sealed   ... the intermediate's key, sealed with BETTER_AUTH_SECRET
//! <data dir>/server-ca/root.pem             every tier: the root of the HTTPS server certificate
//! <data dir>/server-ca/root-key.sealed      ... its key, sealed with BETTER_AUTH_SECRET
//! ```
//!
//! Chosen with `--data-dir`, else `MOSAIC_DATA_DIR`, else `$XDG_DATA_HOME/mosaic`, else
//! `~/.local/share/mosaic`. Directories are created `0700` and files `0600`.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
};

/// The variable naming the data directory.
pub(crate) const DATA_DIR_VAR: &str = "MOSAIC_DATA_DIR";

/// The data directory to use: `explicit` (from `--data-dir`) or the environment's default.
pub(crate) fn resolve(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os(DATA_DIR_VAR).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = std::env::var_os("XDG_DATA_HOME").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path).join("mosaic"));
    }
    match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/mosaic")),
        None => Err(format!(
            "no data directory: pass --data-dir or set {DATA_DIR_VAR}"
        )),
    }
}

/// Creates `dir` (and its parents) readable by this user only.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `bytes` to `path` (creating its directory) through a temporary file renamed into place, with
/// mode `0600`: a crash leaves the old file or the new one, never half of one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    create_private_dir(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn private_files_are_private_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = std::fs::metadata(dir.path().join("a/b"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o700);
        }
        assert_eq!(resolve(Some(Path::new("/x"))).unwrap(), PathBuf::from("/x"));
    }
}
