//! The control socket: a Unix socket only its owner (root, or the service user) can open, so a
//! local script needs no password. It speaks the same HTTP API as kvnc's port.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio::net::UnixListener;

use super::api::{self, Caller};
use crate::server::Shared;

/// Where the socket is when no path is given: systemd's `RuntimeDirectory=` (the first), else
/// /run/kvnc for root, else `$XDG_RUNTIME_DIR`.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dirs) = std::env::var_os("RUNTIME_DIRECTORY") {
        return dirs.to_str().and_then(|dirs| dirs.split(':').next()).map(|dir| Path::new(dir).join("control.sock"));
    }
    if rustix::process::geteuid().is_root() {
        return Some(PathBuf::from("/run/kvnc/control.sock"));
    }
    std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()).map(|dir| Path::new(&dir).join("kvnc.sock"))
}

/// Binds the socket, owner-only; a stale one from an earlier run is replaced, a live one is not.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // A socket someone answers on belongs to another kvnc: leave it to that one.
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        anyhow::bail!("another kvnc answers on {} (give this one --control-socket PATH)", path.display());
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot replace {}", path.display()));
        }
        _ => {}
    }
    let listener = UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    Ok(listener)
}

/// Answers control requests on `listener` until the server stops.
pub(crate) async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let head = crate::server::http::read_head(&mut stream);
            match tokio::time::timeout(std::time::Duration::from_secs(10), head).await {
                Ok(Ok(head)) => {
                    let outcome = api::serve(stream, head, Caller::Local, &shared).await;
                    tracing::debug!("control socket: {outcome}");
                }
                Ok(Err(e)) => tracing::debug!("control socket: {e:#}"),
                Err(_) => tracing::debug!("control socket: no request within 10 s"),
            }
        });
    }
}
