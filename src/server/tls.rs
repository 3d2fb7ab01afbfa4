//! The server's TLS identity: a configured certificate, or a self-signed one made on first start
//! and kept, so that viewers can pin its fingerprint (trust on first use).
//!
//! One identity serves VeNCrypt's X509 logins and `https://`/`wss://` on the same port.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use super::state;

/// The file, in the state directory, that holds the generated key and certificate together (one
/// file, so two processes starting at once can never pair one's key with the other's cert).
const GENERATED_FILE: &str = "tls.pem";

pub struct TlsIdentity {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the certificate, as viewers show it: `AB:CD:…`.
    pub fingerprint: String,
    /// Where the certificate came from, for the log.
    pub origin: String,
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// PEM files given by the user (certificate chain, private key).
    Files { cert: PathBuf, key: PathBuf },
    /// Made on first start and kept in this directory (`None`: nowhere to keep it; a new one is
    /// made at every start).
    Generated { state_dir: Option<PathBuf> },
}

impl TlsIdentity {
    pub fn load(source: &CertificateSource) -> anyhow::Result<Self> {
        match source {
            CertificateSource::Files { cert, key } => {
                let chain = read_chain(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| anyhow!("cannot read a private key from {}: {e}", key.display()))?;
                Self::new(chain, key, cert.display().to_string())
            }
            CertificateSource::Generated { state_dir: Some(dir) } => {
                let pem = state::load_or_make(dir, GENERATED_FILE, generate)?;
                Self::from_pem(&pem, dir.join(GENERATED_FILE).display().to_string())
            }
            CertificateSource::Generated { state_dir: None } => {
                tracing::warn!("no state directory: the self-signed certificate changes at every start");
                Self::from_pem(&generate()?, "made for this run only".into())
            }
        }
    }

    /// A key and certificate chain in one PEM text.
    fn from_pem(pem: &str, origin: String) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("{origin}: bad certificate: {e}"))?;
        let key =
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| anyhow!("{origin}: bad private key: {e}"))?;
        Self::new(chain, key, origin)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>, origin: String) -> anyhow::Result<Self> {
        let leaf = chain.first().ok_or_else(|| anyhow!("{origin}: no certificate in it"))?;
        let fingerprint = fingerprint(leaf);
        // ring lacks only the post-quantum key exchange, which no VNC viewer offers; it builds
        // for the board with a plain C cross-compiler, unlike aws-lc.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .with_context(|| format!("{origin}: the key does not fit the certificate"))?;
        // No session tickets: VNC viewers do not resume sessions, and TigerVNC 1.12 (GnuTLS)
        // stalls now and then when tickets arrive right behind the first bytes of RFB.
        config.send_tls13_tickets = 0;
        Ok(Self { acceptor: TlsAcceptor::from(Arc::new(config)), fingerprint, origin })
    }
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read certificates from {}: {e}", path.display()))?;
    if chain.is_empty() {
        bail!("{}: no certificate in it", path.display());
    }
    Ok(chain)
}

/// SHA-256 of a certificate as colon-separated hex, the form viewers and `openssl x509
/// -fingerprint -sha256` show.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = Sha256::digest(cert.as_ref());
    digest.iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":")
}

/// A self-signed certificate for this board's names, key first, as one PEM text.
fn generate() -> anyhow::Result<String> {
    // Loopback too: a viewer reaching kvnc through an SSH tunnel checks the name it dialled.
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    if !host.is_empty() && host != "localhost" {
        names.insert(0, format!("{host}.local"));
        names.insert(0, host);
    }
    let certified = rcgen::generate_simple_self_signed(names).context("cannot make a certificate")?;
    Ok(format!("{}{}", certified.signing_key.serialize_pem(), certified.cert.pem()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvnc-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generated_certificate_is_kept_private_and_reused() {
        let dir = temp_dir("keep");
        let source = CertificateSource::Generated { state_dir: Some(dir.clone()) };
        let first = TlsIdentity::load(&source).unwrap();
        let second = TlsIdentity::load(&source).unwrap();
        assert_eq!(first.fingerprint, second.fingerprint, "the same certificate on the next start");
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(GENERATED_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn configured_files_are_used_and_bad_ones_named() {
        let dir = temp_dir("files");
        std::fs::create_dir_all(&dir).unwrap();
        let pem = generate().unwrap();
        let (key, cert) = pem.split_at(pem.find("-----BEGIN CERTIFICATE").unwrap());
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        let files = |cert: &str, key: &str| CertificateSource::Files { cert: dir.join(cert), key: dir.join(key) };
        let identity = TlsIdentity::load(&files("cert.pem", "key.pem")).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert_eq!(identity.fingerprint, fingerprint(&der));
        let error = TlsIdentity::load(&files("key.pem", "key.pem")).err().unwrap().to_string();
        assert!(error.contains("key.pem: no certificate"), "{error}");
        let error = TlsIdentity::load(&files("cert.pem", "missing.pem")).err().unwrap().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
