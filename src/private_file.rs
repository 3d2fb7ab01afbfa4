//! Writing the files kvnc keeps secrets in (passwords, account hashes, keys): replaced
//! atomically (a temporary file in the same directory, fsynced, renamed over the old one), so a
//! power cut leaves the old file or the new one, never half of one (the board is often switched
//! off at the wall), and never readable by others while being written.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `contents` atomically. A new file gets mode 0600; an existing one keeps
/// its mode and, where this process may give it, its owner, so that editing as root does not
/// take the file away from the service user that reads it.
pub fn replace(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    // Through a symbolic link, replace the file it points to, not the link.
    let path = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let existing = match std::fs::metadata(&path) {
        Ok(metadata) if !metadata.is_file() => {
            return Err(std::io::Error::new(ErrorKind::InvalidInput, "not a regular file"));
        }
        Ok(metadata) => Some(metadata),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let file_name = path.file_name().ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "not a file name"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Random, so neither a concurrent run nor one that died before its rename is in the way.
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    let mut temp_name = OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>()));
    let temp = dir.join(temp_name);

    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(contents)?;
        if let Some(existing) = &existing {
            keep_owner_and_mode(&file, existing, &path)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if let Err(e) = written {
        // Best effort: the error that matters is the one above.
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The rename is durable only once the directory is synced.
    File::open(dir)?.sync_all()
}

fn keep_owner_and_mode(file: &File, existing: &std::fs::Metadata, path: &Path) -> std::io::Result<()> {
    let new = file.metadata()?;
    if (new.uid(), new.gid()) != (existing.uid(), existing.gid())
        && let Err(e) = std::os::unix::fs::fchown(file, Some(existing.uid()), Some(existing.gid()))
    {
        tracing::warn!(
            "{} now belongs to uid {} gid {}, not uid {} gid {} as before: {e}",
            path.display(),
            new.uid(),
            new.gid(),
            existing.uid(),
            existing.gid()
        );
    }
    let mode = existing.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!("{} is open to other users (mode {mode:04o}): chmod 600 it", path.display());
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}
