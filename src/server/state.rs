//! What kvnc makes once and keeps: the self-signed certificate and the RSA-AES key, in the state
//! directory, so that the fingerprints viewers pinned stay the same across restarts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The state directory when none is given: `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the
/// first if it lists several), else `$XDG_STATE_HOME/kvnc`, else `~/.local/state/kvnc`.
pub fn default_dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|value| !value.is_empty()).map(PathBuf::from);
    if let Some(dirs) = std::env::var_os("STATE_DIRECTORY") {
        return dirs.to_str().and_then(|dirs| dirs.split(':').next()).map(PathBuf::from);
    }
    env("XDG_STATE_HOME").map(|dir| dir.join("kvnc")).or_else(|| env("HOME").map(|home| home.join(".local/state/kvnc")))
}

/// The contents of `dir/name`, made by `make` and stored first if the file does not exist yet.
/// The file is private (0600, in a 0700 directory) and written atomically: two processes starting
/// at once each keep a whole file, the last one renamed in place wins, and both read that one.
pub fn load_or_make(dir: &Path, name: &str, make: impl FnOnce() -> anyhow::Result<String>) -> anyhow::Result<String> {
    let path = dir.join(name);
    if !path.exists() {
        let contents = make()?;
        store(dir, &path, &contents).with_context(|| format!("cannot store {}", path.display()))?;
        tracing::info!("made {}", path.display());
    }
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

fn store(dir: &Path, path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    crate::private_file::replace(path, contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_private() {
        let dir = std::env::temp_dir().join(format!("kvnc-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(load_or_make(&dir, "thing", || Ok("first".into())).unwrap(), "first");
        let again = load_or_make(&dir, "thing", || panic!("made twice")).unwrap();
        assert_eq!(again, "first");
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir.join("thing")), mode(&dir)), (0o600, 0o700));
        assert!(load_or_make(&dir, "broken", || anyhow::bail!("cannot")).is_err());
        assert!(!dir.join("broken").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
