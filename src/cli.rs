//! The command line: `kvnc serve ...`, `kvnc gadget up|down|status`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::demo::DemoTarget;
use crate::hid::discard::DiscardSink;
use crate::hid::gadget::{self, GadgetConfig};
use crate::hid::hidg::HidgSink;
use crate::hid::layout::Layout;
use crate::hid::paste::{PasteConfig, PasteMode};
use crate::hid::router::{InputRouter, MouseMode};
use crate::hid::{InputSink, Role};
use crate::login::LoginArgs;
use crate::server::{Limits, Options, Server, SharedPolicy};
use crate::source::FrameSource;
use crate::source::replay::ReplaySource;
use crate::source::v4l2::mode::ModeRequest;
use crate::source::v4l2::{CaptureConfig, V4l2Source};

#[derive(Debug, Parser)]
#[command(name = "kvnc", version, about = "A VNC server for a KVM over IP")]
pub struct Cli {
    /// The configuration file: `kvnc serve`'s long option names as keys (see
    /// packaging/kvnc.toml). Default: $KVNC_CONFIG, else /etc/kvnc/kvnc.toml if it exists.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
    /// Where the subcommand's settings came from (filled in by `config::parse`).
    #[arg(skip)]
    pub provenance: crate::config::Provenance,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the target's screen and input to VNC viewers.
    // Boxed: it is most of the command line, the other commands a few strings.
    #[command(after_help = crate::config::PRECEDENCE_HELP)]
    Serve(Box<ServeArgs>),
    /// Check the configuration `kvnc serve` would run with (the file, KVNC_* variables and these
    /// options): values, password, account and certificate files, media directory, layout.
    /// Prints each setting and where it comes from; exits non-zero on a problem.
    #[command(after_help = crate::config::PRECEDENCE_HELP)]
    Check(Box<ServeArgs>),
    /// Show what this machine offers a KVM: capture devices and the mode kvnc would pick, USB
    /// device controllers, gadgets, and what is missing. Exits 1 if kvnc cannot run as a KVM here.
    Probe {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set up, remove or show the USB gadget (keyboard, absolute pointer, boot mouse) that
    /// plugs into the target. Needs root and configfs.
    Gadget {
        #[command(subcommand)]
        action: GadgetAction,
    },
    /// Write a VNC password file, or add, replace or delete a user in an accounts file.
    Passwd(crate::passwd::PasswdArgs),
    /// Attach, eject or list the target's virtual media (disk and CD images from --media-dir),
    /// or show what is attached, without the server. Changing media needs root.
    Media(crate::media::command::MediaArgs),
    /// Control a running `kvnc serve` through its local socket: media, typing, key combos,
    /// mouse mode, layout, screenshot, status, viewers.
    Ctl(crate::control::client::CtlArgs),
}

#[derive(Debug, Subcommand)]
pub enum GadgetAction {
    /// Create the gadget (or keep the one already there) and bind it to a UDC.
    Up(GadgetArgs),
    /// Unbind and remove the gadget: the target sees the keyboard and mouse unplugged.
    Down {
        /// The gadget's configfs name.
        #[arg(long, default_value = "kvnc")]
        gadget_name: String,
    },
    /// Show the gadget's UDC, its state (configured, suspended, not attached) and device nodes.
    Status {
        /// The gadget's configfs name.
        #[arg(long, default_value = "kvnc")]
        gadget_name: String,
    },
}

/// Who the gadget says it is, and where it plugs in.
#[derive(Debug, Clone, clap::Args)]
pub struct GadgetArgs {
    /// The gadget's configfs name (under /sys/kernel/config/usb_gadget).
    #[arg(long, default_value = "kvnc")]
    pub gadget_name: String,
    /// The USB device controller to bind to (default: the first in /sys/class/udc).
    #[arg(long, value_name = "NAME")]
    pub udc: Option<String>,
    /// USB vendor ID, e.g. 0x1d6b.
    #[arg(long, value_parser = parse_u16, default_value = "0x1d6b")]
    pub usb_vendor_id: u16,
    /// USB product ID, e.g. 0x0104.
    #[arg(long, value_parser = parse_u16, default_value = "0x0104")]
    pub usb_product_id: u16,
    #[arg(long, default_value = "kvnc")]
    pub usb_manufacturer: String,
    #[arg(long, default_value = "kvnc Composite KVM Device")]
    pub usb_product: String,
    #[arg(long, default_value = "kvnc-0001")]
    pub usb_serial: String,
}

impl GadgetArgs {
    fn config(&self) -> GadgetConfig {
        GadgetConfig {
            name: self.gadget_name.clone(),
            vendor_id: self.usb_vendor_id,
            product_id: self.usb_product_id,
            manufacturer: self.usb_manufacturer.clone(),
            product: self.usb_product.clone(),
            serial: self.usb_serial.clone(),
            udc: self.udc.clone(),
        }
    }
}

/// Where keyboard and mouse reports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HidMode {
    /// The demo target (needs `--source demo`).
    Demo,
    /// The USB gadget: set it up (`kvnc gadget up`) and write to its /dev/hidgN, or write to
    /// the nodes given with `--hid-device`.
    Gadget,
    /// Nowhere: viewers can watch but their input is dropped.
    None,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one; the log says which).
    #[arg(long, default_value = "127.0.0.1:5900")]
    pub listen: SocketAddr,
    /// Where the screen comes from: `demo` (the built-in simulated target, which also takes
    /// the input), `v4l2:/dev/videoN` (a capture device), `auto` (the first capture device,
    /// else the demo) or `replay:PATH` (a PNG/JPEG file, or a directory of them played in name
    /// order, looping).
    #[arg(long, default_value = "demo", value_parser = parse_source)]
    pub source: SourceSpec,
    /// Capture pixel format (a V4L2 fourcc such as MJPG, YUYV, UYVY, NV12); default: see
    /// README "Capture devices".
    #[arg(long, value_name = "FOURCC", value_parser = parse_fourcc)]
    pub capture_format: Option<[u8; 4]>,
    /// Capture size, e.g. 1920x1080 (ignored for sources with DV timings, which set it).
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    pub capture_size: Option<(u32, u32)>,
    /// Capture frame rate.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub capture_fps: Option<u32>,
    /// Seconds without viewers after which capture stops streaming (frames are not converted
    /// as soon as the last viewer leaves).
    #[arg(long, default_value_t = 10)]
    pub capture_idle_secs: u64,
    /// Where keyboard and mouse go: `demo`, `gadget` or `none` (default: `demo` with the demo
    /// source, `gadget` with `--hid-device`, else `none`).
    #[arg(long, value_enum)]
    pub hid: Option<HidMode>,
    /// Write reports to existing nodes instead of setting up the gadget:
    /// `keyboard=PATH,pointer=PATH,mouse=PATH` (any subset; /dev/hidgN nodes, or FIFOs).
    #[arg(long, value_name = "ROLE=PATH,...", value_parser = parse_hid_devices)]
    pub hid_device: Option<HidDevices>,
    /// The target's keyboard layout, for viewers that send characters (keysyms) rather than
    /// scancodes: an XKB name such as `us`, `de`, `fr`, `gb`, `de(nodeadkeys)` (layouts other
    /// than `us` need libxkbcommon and xkb-data).
    #[arg(long, default_value = "us")]
    pub layout: String,
    /// Which device pointer events drive: the `absolute` pointer, or the `relative` boot mouse
    /// for firmware that binds only boot mice.
    #[arg(long, value_enum, default_value_t = MouseMode::Absolute)]
    pub mouse_mode: MouseMode,
    /// Type viewers' clipboard text on the target: `off`, `hotkey` (the last text, on
    /// Ctrl+Alt+Shift+V) or `immediate` (as soon as a viewer sends it; many send theirs on
    /// connect).
    #[arg(long, value_enum, default_value_t = PasteMode::Off)]
    pub paste: PasteMode,
    /// Longest clipboard text typed, in characters; longer text is not typed at all.
    #[arg(long, default_value_t = 4096)]
    pub paste_max_chars: usize,
    /// How long each pasted key is held, and the pause after it, in milliseconds (the default
    /// suits BIOS setup screens; an OS takes 5).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub paste_key_ms: u64,
    #[command(flatten)]
    pub gadget: GadgetArgs,
    /// Frames per second for `replay:` directories (0: one frame further at each SIGUSR1).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=240))]
    pub fps: u32,
    #[command(flatten)]
    pub login: LoginArgs,
    /// Desktop name shown by viewers.
    #[arg(long, default_value = "kvnc")]
    pub name: String,
    /// What a viewer asking for exclusive access gets.
    #[arg(long, value_enum, default_value_t = SharedPolicy::Always)]
    pub shared_policy: SharedPolicy,
    /// A web page origin (`https://host[:port]`) of another site allowed to open a WebSocket to
    /// kvnc (repeatable); pages served from kvnc's own host always may.
    #[arg(long, value_name = "ORIGIN")]
    pub ws_allowed_origin: Vec<String>,
    /// Seconds a connection may take to log in before it is closed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub handshake_timeout: u64,
    /// The control socket for `kvnc ctl` (owner-only). Default: $RUNTIME_DIRECTORY/control.sock
    /// (systemd), /run/kvnc/control.sock as root, else $XDG_RUNTIME_DIR/kvnc.sock.
    #[arg(long, value_name = "PATH", conflicts_with = "no_control_socket")]
    pub control_socket: Option<PathBuf>,
    /// No control socket.
    #[arg(long)]
    pub no_control_socket: bool,
    /// Disk and CD images the target may be given as virtual media (through the gadget's
    /// mass-storage function: `kvnc ctl media ...`, the HTTP API). Only regular files directly
    /// in it (or links resolving inside it) can be attached.
    #[arg(long, value_name = "DIR")]
    pub media_dir: Option<PathBuf>,
    /// Longest clipboard text accepted from a viewer, in bytes; longer text is skipped.
    #[arg(long, default_value_t = rfb::messages::client::DEFAULT_MAX_CUT_TEXT)]
    pub max_cut_text: u32,
    /// Milliseconds a screen must be still before the areas sent as JPEG are sent again
    /// losslessly (0: never).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub lossless_refresh_ms: u64,
    /// Threads that encode updates (0: one per core). Viewers' input is never held up by
    /// encoding; more threads make large updates of every viewer faster.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=64))]
    pub encode_workers: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// The built-in simulated target machine (no hardware needed).
    Demo,
    /// Recorded or generated frames.
    Replay(PathBuf),
    /// A V4L2 capture device.
    V4l2(PathBuf),
    /// The first capture device, else the demo target (resolved when serving starts).
    Auto,
}

fn parse_fourcc(value: &str) -> Result<[u8; 4], String> {
    let bytes: [u8; 4] = value.as_bytes().try_into().map_err(|_| format!("{value:?} is not a four-character code"))?;
    if !crate::source::v4l2::mode::is_usable(bytes) {
        return Err(format!("kvnc cannot capture {value:?}: use MJPG, YUYV, UYVY, NV12, NV16, RGB3, BGR3 or XR24"));
    }
    Ok(bytes)
}

fn parse_size(value: &str) -> Result<(u32, u32), String> {
    let (width, height) = value.split_once(['x', 'X']).ok_or_else(|| format!("{value:?} is not WIDTHxHEIGHT"))?;
    match (width.parse::<u16>(), height.parse::<u16>()) {
        (Ok(width), Ok(height)) if width > 0 && height > 0 => Ok((width.into(), height.into())),
        _ => Err(format!("{value:?} is not WIDTHxHEIGHT with sizes 1 to 65535")),
    }
}

fn parse_u16(value: &str) -> Result<u16, String> {
    let parsed = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => value.parse(),
    };
    parsed.map_err(|e| format!("{value:?} is not a 16-bit number: {e}"))
}

/// `--hid-device` paths by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HidDevices(pub Vec<(Role, PathBuf)>);

fn parse_hid_devices(value: &str) -> Result<HidDevices, String> {
    let mut devices: Vec<(Role, PathBuf)> = Vec::new();
    for item in value.split(',') {
        let (name, path) = item.split_once('=').ok_or_else(|| format!("{item:?} is not ROLE=PATH"))?;
        let role = Role::from_name(name)
            .ok_or_else(|| format!("unknown HID device {name:?}: use keyboard, pointer or mouse"))?;
        if path.is_empty() {
            return Err(format!("no path for the {name}"));
        }
        if devices.iter().any(|(seen, _)| *seen == role) {
            return Err(format!("the {name} is given twice"));
        }
        devices.push((role, PathBuf::from(path)));
    }
    Ok(HidDevices(devices))
}

fn parse_source(value: &str) -> Result<SourceSpec, String> {
    match value.split_once(':') {
        None if value == "demo" => Ok(SourceSpec::Demo),
        None if value == "auto" => Ok(SourceSpec::Auto),
        Some(("replay", path)) if !path.is_empty() => Ok(SourceSpec::Replay(PathBuf::from(path))),
        Some(("v4l2", path)) if !path.is_empty() => Ok(SourceSpec::V4l2(PathBuf::from(path))),
        _ => Err(format!("unknown source {value:?}: use `demo`, `auto`, `v4l2:/dev/videoN` or `replay:PATH`")),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { command, provenance, .. } = cli;
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Check(args) => tokio::task::spawn_blocking(move || crate::config::check(&args, &provenance)).await?,
        Command::Gadget { action } => tokio::task::spawn_blocking(move || gadget_command(action)).await?,
        Command::Passwd(args) => tokio::task::spawn_blocking(move || crate::passwd::run(&args)).await?,
        Command::Media(args) => tokio::task::spawn_blocking(move || crate::media::command::run(&args)).await?,
        Command::Ctl(args) => tokio::task::spawn_blocking(move || crate::control::client::run(&args)).await?,
        Command::Probe { json } => {
            let report = tokio::task::spawn_blocking(crate::probe::probe).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            if !report.can_run_as_kvm() {
                bail!("kvnc cannot run as a KVM here yet (see above)");
            }
            Ok(())
        }
    }
}

fn gadget_command(action: GadgetAction) -> anyhow::Result<()> {
    match action {
        GadgetAction::Up(args) => {
            let status = gadget::up(&args.config())?;
            print!("{status}");
        }
        GadgetAction::Down { gadget_name } => {
            if gadget::down(&gadget_name)? {
                println!("removed gadget {gadget_name}");
            } else {
                println!("no gadget {gadget_name}");
            }
        }
        GadgetAction::Status { gadget_name } => match gadget::status(&gadget_name)? {
            Some(status) => print!("{status}"),
            None => bail!("no gadget {gadget_name} (`kvnc gadget up` creates it)"),
        },
    }
    Ok(())
}

impl ServeArgs {
    /// `--hid`, or what it means when not given.
    pub(crate) fn hid_mode(&self) -> anyhow::Result<HidMode> {
        let mode = self.hid.unwrap_or(match (&self.source, &self.hid_device) {
            (_, Some(_)) => HidMode::Gadget,
            (SourceSpec::Demo, None) => HidMode::Demo,
            _ => HidMode::None,
        });
        if self.hid_device.is_some() && mode != HidMode::Gadget {
            bail!("--hid-device writes gadget reports: it needs --hid gadget");
        }
        if mode == HidMode::Demo && self.source != SourceSpec::Demo {
            bail!("--hid demo needs --source demo: the demo target is both screen and input");
        }
        Ok(mode)
    }
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    if args.source == SourceSpec::Auto {
        args.source = match tokio::task::spawn_blocking(crate::source::v4l2::find_capture_device).await? {
            Some(device) => SourceSpec::V4l2(device),
            None => SourceSpec::Demo,
        };
        tracing::info!("--source auto: {:?}", args.source);
    }
    let logins = args.login.load(args.listen)?;
    let config = logins.server_config(args.name.clone(), args.max_cut_text);
    let hid_mode = args.hid_mode()?;
    let mut demo = None;
    let source: Arc<dyn FrameSource> = match &args.source {
        SourceSpec::Demo => demo.insert(DemoTarget::start()).clone(),
        SourceSpec::Replay(path) => ReplaySource::open(path, args.fps)?,
        SourceSpec::V4l2(device) => V4l2Source::start(CaptureConfig {
            device: device.clone(),
            request: ModeRequest { fourcc: args.capture_format, size: args.capture_size, fps: args.capture_fps },
            idle_after: std::time::Duration::from_secs(args.capture_idle_secs),
        })?,
        SourceSpec::Auto => bail!("--source auto is resolved above"),
    };
    let sink: Arc<dyn InputSink> = match (hid_mode, demo) {
        (HidMode::Demo, Some(demo)) => demo,
        (HidMode::Gadget, _) => gadget_sink(&args).await?,
        _ => Arc::new(DiscardSink::new()),
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let layout = Layout::load(&args.layout).with_context(|| format!("keyboard layout {:?}", args.layout))?;
    tracing::info!("keysyms are typed for the target's {} keyboard layout", layout.name());
    let router = InputRouter::new(sink, layout);
    router.set_mouse_mode(args.mouse_mode);
    let paste = PasteConfig {
        mode: args.paste,
        max_chars: args.paste_max_chars,
        key_delay: std::time::Duration::from_millis(args.paste_key_ms),
    };
    let limits = Limits {
        handshake_timeout: std::time::Duration::from_secs(args.handshake_timeout),
        allowed_origins: args.ws_allowed_origin.clone(),
    };
    let control = crate::control::ControlConfig {
        socket: if args.no_control_socket {
            None
        } else {
            args.control_socket.clone().or_else(crate::control::socket::default_path)
        },
        media: args.media_dir.as_ref().map(|dir| -> Arc<dyn crate::media::VirtualMedia> {
            let library = crate::media::library::MediaLibrary::new(dir.clone());
            Arc::new(crate::media::drive::GadgetDrive::new(args.gadget.gadget_name.clone(), library))
        }),
        gadget: (hid_mode == HidMode::Gadget && args.hid_device.is_none()).then(|| args.gadget.gadget_name.clone()),
    };
    let server = Server::new(
        config,
        source,
        Arc::new(router),
        Options {
            paste,
            policy: args.shared_policy,
            limits,
            security: logins.security,
            control,
            lossless_refresh: (args.lossless_refresh_ms > 0)
                .then(|| std::time::Duration::from_millis(args.lossless_refresh_ms)),
            encode_workers: match args.encode_workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => usize::from(n),
            },
        },
    )?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    tokio::select! {
        result = server.run(listener) => result,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted, shutting down");
            server.shut_down().await;
            Ok(())
        }
        _ = terminate.recv() => {
            tracing::info!("asked to stop (SIGTERM), shutting down");
            server.shut_down().await;
            Ok(())
        }
    }
}

/// Writes to `--hid-device`, or sets up the gadget and writes to its nodes.
async fn gadget_sink(args: &ServeArgs) -> anyhow::Result<Arc<dyn InputSink>> {
    let paths = match &args.hid_device {
        Some(HidDevices(paths)) => paths.clone(),
        None => {
            let config = args.gadget.config();
            let status = tokio::task::spawn_blocking(move || gadget::up(&config)).await??;
            if let Some(udc) = &status.udc {
                tracing::info!(
                    "USB gadget {} on {udc}: the target's host is {}",
                    status.name,
                    status.udc_state.as_deref().unwrap_or("in an unknown state")
                );
            }
            status.device_paths()?
        }
    };
    for (role, path) in &paths {
        tracing::info!("{} reports go to {}", role.name(), path.display());
    }
    Ok(HidgSink::start(&paths)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["kvnc", "serve"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(args) => *args,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn source_specs() {
        assert_eq!(args(&[]).source, SourceSpec::Demo);
        assert_eq!(args(&["--source", "replay:/tmp/x"]).source, SourceSpec::Replay("/tmp/x".into()));
        assert_eq!(args(&["--source", "v4l2:/dev/video2"]).source, SourceSpec::V4l2("/dev/video2".into()));
        assert_eq!(args(&["--source", "auto"]).source, SourceSpec::Auto);
        for bad in ["replay:", "v4l2:", "demox", "usb:/dev/video0"] {
            assert!(Cli::try_parse_from(["kvnc", "serve", "--source", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn hid_mode_follows_the_source_unless_given() {
        assert_eq!(args(&[]).hid_mode().unwrap(), HidMode::Demo);
        assert_eq!(args(&["--source", "replay:/x"]).hid_mode().unwrap(), HidMode::None);
        assert_eq!(args(&["--hid", "gadget"]).hid_mode().unwrap(), HidMode::Gadget);
        assert_eq!(args(&["--hid-device", "keyboard=/dev/hidg0"]).hid_mode().unwrap(), HidMode::Gadget);
        assert!(args(&["--source", "replay:/x", "--hid", "demo"]).hid_mode().is_err());
        assert!(args(&["--hid", "none", "--hid-device", "keyboard=/k"]).hid_mode().is_err());
    }

    #[test]
    fn capture_options() {
        let parsed = args(&["--capture-format", "YUYV", "--capture-size", "1280x720", "--capture-fps", "30"]);
        assert_eq!(
            (parsed.capture_format, parsed.capture_size, parsed.capture_fps),
            (Some(*b"YUYV"), Some((1280, 720)), Some(30))
        );
        for (option, bad) in [
            ("--capture-format", "H264"),
            ("--capture-format", "YUV"),
            ("--capture-size", "1280"),
            ("--capture-size", "0x720"),
            ("--capture-size", "70000x1"),
        ] {
            assert!(Cli::try_parse_from(["kvnc", "serve", option, bad]).is_err(), "{option} {bad}");
        }
    }

    #[test]
    fn hid_devices_by_role() {
        let devices = args(&["--hid-device", "keyboard=/run/k,mouse=/dev/hidg2"]).hid_device.unwrap();
        assert_eq!(devices.0, [(Role::Keyboard, "/run/k".into()), (Role::Mouse, "/dev/hidg2".into())]);
        for bad in ["keyboard", "joystick=/x", "keyboard=", "keyboard=/a,keyboard=/b"] {
            assert!(Cli::try_parse_from(["kvnc", "serve", "--hid-device", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn gadget_identity() {
        let config =
            args(&["--usb-vendor-id", "0x1209", "--usb-product-id", "4660", "--udc", "dummy_udc.0"]).gadget.config();
        assert_eq!((config.vendor_id, config.product_id, config.udc.as_deref()), (0x1209, 4660, Some("dummy_udc.0")));
        assert_eq!(args(&[]).gadget.config(), GadgetConfig { udc: None, ..GadgetConfig::default() });
        assert!(Cli::try_parse_from(["kvnc", "serve", "--usb-vendor-id", "0x10000"]).is_err());
    }
}
