//! `kvnc media list|attach|eject|status`: the virtual drives from the command line, without the
//! server (like `kvnc gadget`). Changing media needs root (configfs); listing and status do not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::drive::{GadgetDrive, mode_name};
use super::library::MediaLibrary;
use super::{ImageInfo, MediaMode, MediaStatus, VirtualMedia};

/// `kvnc media ACTION --media-dir DIR [--gadget-name NAME] [--json]`.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    #[command(subcommand)]
    pub action: MediaAction,
    /// The directory images are attached from (required); nothing outside it can be attached.
    // Optional to clap only because clap refuses required global options: `run` requires it.
    #[arg(long, value_name = "DIR", global = true)]
    pub media_dir: Option<PathBuf>,
    /// The gadget's configfs name (as given to `kvnc gadget up`).
    #[arg(long, value_name = "NAME", default_value = "kvnc", global = true)]
    pub gadget_name: String,
    /// Print JSON for scripts instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum MediaAction {
    /// List the images in the media directory, with their sizes.
    List,
    /// Put an image into the target's virtual drive; whatever was in comes out first (the
    /// target sees a medium change, its keyboard stays).
    Attach {
        /// The image's file name in the media directory.
        name: String,
        /// How the target sees it: `cdrom` (default for `.iso` files), `read-only` (a disk; the
        /// default for other files) or `read-write` (a disk the target can write to).
        #[arg(long, value_enum)]
        mode: Option<MediaMode>,
    },
    /// Take the image out of the target's virtual drive (forced if the target has it in use).
    Eject,
    /// Show the attached image, its mode, and whether the target's USB host has enumerated the
    /// drive.
    Status,
}

/// The mode an image is attached in when `--mode` is not given: ISOs as CD-ROMs, anything else
/// as a disk the target cannot change (read-write is never a default).
pub fn default_mode(name: &str) -> MediaMode {
    if name.to_ascii_lowercase().ends_with(".iso") { MediaMode::Cdrom } else { MediaMode::ReadOnly }
}

/// Runs `kvnc media ...`; prints text, or JSON with `--json` (images: a list of
/// [`ImageInfo`]; the other actions: a [`MediaStatus`]).
pub fn run(args: &MediaArgs) -> anyhow::Result<()> {
    let dir = args.media_dir.clone().context("--media-dir DIR is required: the directory images are attached from")?;
    let drive = GadgetDrive::new(args.gadget_name.clone(), MediaLibrary::new(&dir));
    let status = match &args.action {
        MediaAction::List => {
            let images = drive.list()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&images)?);
            } else {
                print!("{}", format_list(&dir, &images));
            }
            return Ok(());
        }
        MediaAction::Attach { name, mode } => drive.attach(name, mode.unwrap_or_else(|| default_mode(name)))?,
        MediaAction::Eject => drive.eject()?,
        MediaAction::Status => drive.status()?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", format_status(&status));
    }
    Ok(())
}

/// `NAME  SIZE` lines, names aligned.
pub fn format_list(dir: &Path, images: &[ImageInfo]) -> String {
    if images.is_empty() {
        return format!("no images in {}\n", dir.display());
    }
    let width = images.iter().map(|image| image.name.chars().count()).max().unwrap_or(0);
    let mut text = String::new();
    for image in images {
        let _ = writeln!(text, "{:width$}  {}", image.name, human_size(image.size_bytes));
    }
    text
}

/// The status as `image:`, `mode:` and `target:` lines.
pub fn format_status(status: &MediaStatus) -> String {
    let mut text = String::new();
    match (&status.image, status.mode) {
        (Some(image), Some(mode)) => {
            let _ = writeln!(text, "image: {image}");
            let drive = match mode {
                MediaMode::Cdrom => "in the CD-ROM drive",
                MediaMode::ReadOnly => "in the disk drive, the target cannot write to it",
                MediaMode::ReadWrite => "in the disk drive, the target can write to it",
            };
            let _ = writeln!(text, "mode: {} ({drive})", mode_name(mode));
        }
        (Some(image), None) => {
            let _ = writeln!(text, "image: {image}");
        }
        (None, _) => {
            let _ = writeln!(text, "image: none (the drives are empty)");
        }
    }
    let target = if status.host_configured {
        "connected (its USB host has enumerated the drives)"
    } else {
        "not connected (the gadget is not bound, or the target is off, asleep or unplugged)"
    };
    let _ = writeln!(text, "target: {target}");
    text
}

/// 1023 B, 1.5 KiB, 4.0 GiB.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Command {
        Media(MediaArgs),
    }

    fn parse(args: &[&str]) -> Result<MediaArgs, clap::Error> {
        let Command::Media(args) = Cli::try_parse_from([&["kvnc", "media"], args].concat())?.command;
        Ok(args)
    }

    #[test]
    fn options_go_before_or_after_the_action() {
        let args = parse(&["attach", "debian.iso", "--mode", "read-write", "--media-dir", "/srv/media"]).unwrap();
        assert_eq!(args.action, MediaAction::Attach { name: "debian.iso".into(), mode: Some(MediaMode::ReadWrite) });
        assert_eq!(args.media_dir.as_deref(), Some(Path::new("/srv/media")));
        assert_eq!(args.gadget_name, "kvnc");
        assert!(!args.json);
        let args = parse(&["--media-dir", "/srv", "--gadget-name", "g", "status", "--json"]).unwrap();
        assert_eq!(args.action, MediaAction::Status);
        assert_eq!(args.gadget_name, "g");
        assert!(args.json);
        for mode in ["cdrom", "read-only", "read-write"] {
            assert!(parse(&["attach", "x", "--mode", mode]).is_ok(), "{mode}");
        }
        assert!(parse(&["attach", "x", "--mode", "floppy"]).is_err());
        assert!(parse(&["attach"]).is_err());
    }

    #[test]
    fn the_media_directory_is_required() {
        let args = parse(&["list"]).unwrap();
        let error = run(&args).unwrap_err().to_string();
        assert!(error.contains("--media-dir DIR is required"), "{error}");
    }

    #[test]
    fn isos_default_to_cdrom_and_other_files_to_read_only() {
        assert_eq!(default_mode("debian-12.ISO"), MediaMode::Cdrom);
        assert_eq!(default_mode("disk.img"), MediaMode::ReadOnly);
        assert_eq!(default_mode("iso"), MediaMode::ReadOnly);
    }

    #[test]
    fn text_output() {
        let images = [
            ImageInfo { name: "debian.iso".into(), size_bytes: 658_505_728 },
            ImageInfo { name: "a.img".into(), size_bytes: 5 << 30 },
            ImageInfo { name: "tiny".into(), size_bytes: 512 },
        ];
        assert_eq!(
            format_list(Path::new("/srv/media"), &images),
            "debian.iso  628.0 MiB\na.img       5.0 GiB\ntiny        512 B\n"
        );
        assert_eq!(format_list(Path::new("/srv/media"), &[]), "no images in /srv/media\n");
        let status =
            MediaStatus { image: Some("debian.iso".into()), mode: Some(MediaMode::Cdrom), host_configured: true };
        assert_eq!(
            format_status(&status),
            "image: debian.iso\nmode: cdrom (in the CD-ROM drive)\ntarget: connected (its USB host has enumerated \
             the drives)\n"
        );
        let empty = MediaStatus { image: None, mode: None, host_configured: false };
        assert!(format_status(&empty).starts_with("image: none (the drives are empty)\ntarget: not connected"));
    }

    #[test]
    fn json_output_uses_the_modes_command_line_names() {
        let status =
            MediaStatus { image: Some("disk.img".into()), mode: Some(MediaMode::ReadWrite), host_configured: false };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json, serde_json::json!({"image": "disk.img", "mode": "read-write", "host_configured": false}));
    }
}
