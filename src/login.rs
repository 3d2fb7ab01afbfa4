//! Who may log in and how the login is protected, from the command line: VNC passwords, user
//! accounts, the TLS certificate and whether encryption is required.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::accounts::Accounts;
use rfb::security::rsa_aes::ServerKey;

use crate::server::tls::{CertificateSource, TlsIdentity};
use crate::server::{Security, rsa_key, state};

#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// File whose first line is the VNC password (VNC Authentication uses only its first 8
    /// bytes; `kvnc passwd --vnc PATH` writes it).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// File whose first line is a password that gives view-only access.
    #[arg(long, value_name = "PATH")]
    pub view_only_password_file: Option<PathBuf>,
    /// User accounts (`kvnc passwd --users PATH NAME` writes it): logins with a user name over
    /// VeNCrypt (TLS) and RSA-AES.
    #[arg(long, value_name = "PATH")]
    pub users_file: Option<PathBuf>,
    /// Allow serving without any login on a non-loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// TLS certificate chain (PEM) for VeNCrypt and wss://; without it a self-signed one is
    /// made on first start and kept in the state directory.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Offer no TLS at all (no VeNCrypt, no wss://).
    #[arg(long, conflicts_with_all = ["tls_cert", "require_tls"])]
    pub no_tls: bool,
    /// Refuse every connection whose session would cross the network unencrypted: plain VNC
    /// Authentication, None, RSA-AES without encryption, and ws://.
    #[arg(long)]
    pub require_tls: bool,
    /// Offer no RSA-AES logins (otherwise offered whenever a login is required, with a key made
    /// on first start and kept in the state directory).
    #[arg(long)]
    pub no_rsa_aes: bool,
    /// Where kvnc keeps what it makes (the self-signed certificate). Default:
    /// $STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/kvnc, else ~/.local/state/kvnc.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Everything about logins, loaded and checked.
pub struct Logins {
    pub credentials: rfb::security::Credentials,
    pub rsa_key: Option<ServerKey>,
    pub require_encryption: bool,
    /// What the server needs to check them.
    pub security: Security,
}

impl Logins {
    /// The login half of `rfb`'s configuration.
    pub fn server_config(&self, name: String, max_cut_text: u32) -> rfb::ServerConfig {
        rfb::ServerConfig {
            name,
            credentials: self.credentials.clone(),
            tls: self.security.tls.is_some(),
            require_encryption: self.require_encryption,
            rsa_key: self.rsa_key.clone(),
            max_cut_text,
        }
    }
}

impl LoginArgs {
    /// Reads the password and account files and loads (or makes) the certificate and key.
    pub fn load(&self, listen: SocketAddr) -> anyhow::Result<Logins> {
        let password = self.password_file.as_deref().map(read_password_file).transpose()?;
        let view_only_password = self.view_only_password_file.as_deref().map(read_password_file).transpose()?;
        if view_only_password.is_some() && password.is_none() && self.users_file.is_none() {
            tracing::warn!("only a view-only password is set: nobody can type or point");
        }
        let accounts = match &self.users_file {
            Some(path) => {
                let accounts = Accounts::load(path)?;
                if accounts.is_empty() {
                    bail!(
                        "{} has no accounts: add one with `kvnc passwd --users {} NAME`",
                        path.display(),
                        path.display()
                    );
                }
                Some(Arc::new(accounts))
            }
            None => None,
        };
        let credentials = rfb::security::Credentials { password, view_only_password, accounts: accounts.is_some() };
        if !credentials.required() && !listen.ip().is_loopback() && !self.no_auth {
            bail!(
                "refusing to serve {listen} without a login: give --password-file PATH or --users-file PATH, or \
                 --no-auth to let anyone who can reach this address control the target"
            );
        }
        let tls = if self.no_tls { None } else { Some(self.tls_identity()?) };
        if let Some(identity) = &tls {
            tracing::info!("TLS certificate {}: SHA-256 fingerprint {}", identity.origin, identity.fingerprint);
        }
        // RSA-AES carries a login; with none required there is nothing for it to protect.
        let rsa_key = if self.no_rsa_aes || !credentials.required() {
            None
        } else {
            let key = rsa_key::load_or_make(self.state_dir().as_deref())?;
            tracing::info!("RSA-AES key fingerprint {}", key.fingerprint());
            Some(key)
        };
        Ok(Logins { credentials, rsa_key, require_encryption: self.require_tls, security: Security { tls, accounts } })
    }

    fn state_dir(&self) -> Option<PathBuf> {
        self.state_dir.clone().or_else(state::default_dir)
    }

    fn tls_identity(&self) -> anyhow::Result<TlsIdentity> {
        let source = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => CertificateSource::Files { cert: cert.clone(), key: key.clone() },
            _ => CertificateSource::Generated { state_dir: self.state_dir() },
        };
        TlsIdentity::load(&source).context("TLS certificate (turn TLS off with --no-tls)")
    }
}

/// The password is the file's first line, without its line ending.
pub fn read_password_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let contents = std::fs::read(path).with_context(|| format!("cannot read password file {}", path.display()))?;
    let line = contents.split(|&b| b == b'\n').next().unwrap_or_default();
    let password = line.strip_suffix(b"\r").unwrap_or(line);
    if password.is_empty() {
        bail!("password file {} has an empty first line", path.display());
    }
    if password.len() > 8 {
        tracing::warn!("{}: VNC Authentication uses only the first 8 bytes of the password", path.display());
    }
    Ok(password.to_vec())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        login: LoginArgs,
    }

    fn args(extra: &[&str]) -> LoginArgs {
        let dir = std::env::temp_dir().join(format!("kvnc-login-test-{}", std::process::id()));
        let mut argv = vec!["kvnc", "--state-dir", dir.to_str().unwrap()];
        argv.extend_from_slice(extra);
        Wrapper::try_parse_from(argv).unwrap().login
    }

    #[test]
    fn no_login_on_a_public_address_needs_no_auth() {
        let public: SocketAddr = "0.0.0.0:5900".parse().unwrap();
        let err = args(&[]).load(public).err().unwrap();
        assert!(err.to_string().contains("--no-auth"), "{err}");
        assert!(args(&["--no-auth", "--no-tls"]).load(public).is_ok());
        let logins = args(&[]).load("127.0.0.1:5900".parse().unwrap()).unwrap();
        assert!(!logins.credentials.required(), "loopback needs no password");
        assert!(logins.security.tls.is_some(), "TLS is on unless turned off");
        assert!(logins.rsa_key.is_none(), "no RSA-AES without a login to protect");
    }

    #[test]
    fn tls_flags_go_together() {
        let parse = |extra: &[&str]| Wrapper::try_parse_from([&["kvnc"][..], extra].concat()).map(|_| ());
        assert!(parse(&["--tls-cert", "c.pem"]).is_err(), "a certificate needs its key");
        assert!(parse(&["--no-tls", "--require-tls"]).is_err());
        assert!(parse(&["--tls-cert", "c.pem", "--tls-key", "k.pem", "--require-tls"]).is_ok());
    }

    #[test]
    fn password_file_first_line() {
        let dir = std::env::temp_dir().join(format!("kvnc-password-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "s3cret\r\nignored\n").unwrap();
        assert_eq!(read_password_file(&file).unwrap(), b"s3cret");
        std::fs::write(&file, "\n").unwrap();
        assert!(read_password_file(&file).is_err());
        assert!(read_password_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
