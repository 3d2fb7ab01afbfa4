//! The server's RSA key for RSA-AES logins: made on first start and kept in the state directory
//! like the self-signed certificate, so the fingerprint a viewer remembered stays the same.

use std::path::Path;

use anyhow::{Context, anyhow};
use rfb::security::rsa_aes::{RECOMMENDED_SERVER_KEY_BITS, ServerKey};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};

use super::state;

const FILE: &str = "rsa-aes.pem";

/// The kept key, or a new one (a few seconds on a Pi, once). Without a state directory a new
/// key is made at every start.
pub fn load_or_make(state_dir: Option<&Path>) -> anyhow::Result<ServerKey> {
    let key = match state_dir {
        Some(dir) => {
            let pem = state::load_or_make(dir, FILE, make_pem)?;
            RsaPrivateKey::from_pkcs8_pem(&pem)
                .map_err(|e| anyhow!("{}: not an RSA private key: {e}", dir.join(FILE).display()))?
        }
        None => {
            tracing::warn!("no state directory: the RSA-AES key changes at every start");
            make()?
        }
    };
    ServerKey::new(key).context("the RSA-AES key")
}

fn make() -> anyhow::Result<RsaPrivateKey> {
    RsaPrivateKey::new(&mut rand_core::OsRng, RECOMMENDED_SERVER_KEY_BITS).context("cannot make an RSA key")
}

fn make_pem() -> anyhow::Result<String> {
    let pem = make()?.to_pkcs8_pem(LineEnding::LF).context("cannot encode the RSA key")?;
    Ok(pem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("kvnc-rsa-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = load_or_make(Some(&dir)).unwrap();
        let again = load_or_make(Some(&dir)).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert!(!format!("{first:?}").contains("d:"), "Debug shows no private part");
        std::fs::write(dir.join(FILE), "not a key").unwrap();
        let error = load_or_make(Some(&dir)).unwrap_err().to_string();
        assert!(error.contains("rsa-aes.pem"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
