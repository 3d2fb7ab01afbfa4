//! The command line: `kvnc serve ...`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::demo::DemoTarget;
use crate::hid::InputSink;
use crate::hid::discard::DiscardSink;
use crate::input::InputRouter;
use crate::server::{Server, SharedPolicy};
use crate::source::FrameSource;
use crate::source::replay::ReplaySource;

#[derive(Debug, Parser)]
#[command(name = "kvnc", version, about = "A VNC server for a KVM over IP")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the target's screen and input to VNC viewers.
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one; the log says which).
    #[arg(long, default_value = "127.0.0.1:5900")]
    pub listen: SocketAddr,
    /// Where the screen comes from and where input goes: `demo` (the built-in simulated
    /// target) or `replay:PATH` (a PNG/JPEG file, or a directory of them played in name order,
    /// looping; input is discarded).
    #[arg(long, default_value = "demo", value_parser = parse_source)]
    pub source: SourceSpec,
    /// Frames per second for `replay:` directories.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: u32,
    /// File whose first line is the VNC password (only its first 8 bytes count).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// File whose first line is a password that gives view-only access.
    #[arg(long, value_name = "PATH")]
    pub view_only_password_file: Option<PathBuf>,
    /// Allow serving without a password on a non-loopback address.
    #[arg(long)]
    pub no_auth: bool,
    /// Desktop name shown by viewers.
    #[arg(long, default_value = "kvnc")]
    pub name: String,
    /// What a viewer asking for exclusive access gets.
    #[arg(long, value_enum, default_value_t = SharedPolicy::Always)]
    pub shared_policy: SharedPolicy,
    /// Longest clipboard text accepted from a viewer, in bytes; longer text is skipped.
    #[arg(long, default_value_t = rfb::messages::client::DEFAULT_MAX_CUT_TEXT)]
    pub max_cut_text: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The built-in simulated target machine (no hardware needed).
    Demo,
    /// Recorded or generated frames.
    Replay(PathBuf),
}

fn parse_source(value: &str) -> Result<SourceSpec, String> {
    match value.split_once(':') {
        None if value == "demo" => Ok(SourceSpec::Demo),
        Some(("replay", path)) if !path.is_empty() => Ok(SourceSpec::Replay(PathBuf::from(path))),
        _ => Err(format!("unknown source {value:?}: use `demo` or `replay:PATH`")),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = server_config(&args)?;
    let (source, sink): (Arc<dyn FrameSource>, Arc<dyn InputSink>) = match &args.source {
        SourceSpec::Demo => {
            let demo = DemoTarget::start();
            (demo.clone(), demo)
        }
        SourceSpec::Replay(path) => (ReplaySource::open(path, args.fps)?, Arc::new(DiscardSink)),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let server = Server::new(config, source, Arc::new(InputRouter::new(sink)), args.shared_policy);
    tokio::select! {
        result = server.run(listener) => result,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted, shutting down");
            Ok(())
        }
    }
}

fn server_config(args: &ServeArgs) -> anyhow::Result<rfb::ServerConfig> {
    let password = args.password_file.as_deref().map(read_password_file).transpose()?;
    let view_only_password = args.view_only_password_file.as_deref().map(read_password_file).transpose()?;
    if view_only_password.is_some() && password.is_none() {
        tracing::warn!("only a view-only password is set: nobody can type or point");
    }
    let has_password = password.is_some() || view_only_password.is_some();
    if !has_password && !args.listen.ip().is_loopback() && !args.no_auth {
        bail!(
            "refusing to serve {} without a password: give --password-file PATH, or --no-auth to \
             let anyone who can reach this address control the target",
            args.listen
        );
    }
    Ok(rfb::ServerConfig { name: args.name.clone(), password, view_only_password, max_cut_text: args.max_cut_text })
}

/// The password is the file's first line, without its line ending.
fn read_password_file(path: &Path) -> anyhow::Result<Vec<u8>> {
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
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["kvnc", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => args,
        }
    }

    #[test]
    fn no_password_on_a_public_address_needs_no_auth() {
        let err = server_config(&args(&["--listen", "0.0.0.0:5900"])).unwrap_err();
        assert!(err.to_string().contains("--no-auth"), "{err}");
        assert!(server_config(&args(&["--listen", "0.0.0.0:5900", "--no-auth"])).is_ok());
        assert!(server_config(&args(&[])).is_ok(), "loopback needs no password");
    }

    #[test]
    fn source_specs() {
        assert_eq!(args(&[]).source, SourceSpec::Demo);
        assert_eq!(args(&["--source", "replay:/tmp/x"]).source, SourceSpec::Replay("/tmp/x".into()));
        for bad in ["replay:", "v4l2:/dev/video0", "demox"] {
            assert!(Cli::try_parse_from(["kvnc", "serve", "--source", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_file_first_line() {
        let dir = std::env::temp_dir().join(format!("kvnc-cli-test-{}", std::process::id()));
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
