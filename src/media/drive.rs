//! The gadget's virtual drives, driven through the configfs attributes of its mass-storage
//! function's LUNs (`lun.N/file`, `ro`, `forced_eject`; `cdrom` and `removable` are fixed when
//! `kvnc gadget up` creates them, see [`MediaLun`]).
//!
//! The gadget outlives kvnc, so nothing here holds state: every call finds the function by the
//! gadget's name, reads what the kernel has, and writes what must change. Two kvnc processes
//! (`kvnc media` beside `kvnc serve`) take turns through a lock on the function's directory.
//!
//! The kernel's rules (drivers/usb/gadget/function/storage_common.c), which fix the order of
//! every change:
//! * `ro` and `cdrom` can be written only while the LUN is empty (EBUSY otherwise);
//! * writing `file` (a path, or a line break to empty it) fails with EBUSY while the target holds
//!   the medium locked (SCSI PREVENT MEDIUM REMOVAL, which hosts send while the drive is open or
//!   mounted); `forced_eject` empties it regardless;
//! * a new medium is announced to the target as a SCSI unit attention (medium changed), so it
//!   re-reads the drive without the device being re-plugged: the keyboard stays.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rustix::io::Errno;

use super::library::MediaLibrary;
use super::{ImageInfo, MediaMode, MediaStatus, VirtualMedia};
use crate::hid::gadget::{self, MediaLun};

/// A CD-ROM sector; the kernel counts a CD-ROM image in these.
const CDROM_SECTOR: u64 = 2048;
/// The kernel refuses a CD-ROM image shorter than 300 sectors ("smallest track", ETOOSMALL).
const CDROM_MIN_SECTORS: u64 = 300;
/// And shows only the first 256*60*75 - 1 sectors of a longer one (the MSF address limit), at
/// least up to Linux 6.1 as in Debian 12: ~2.2 GiB.
const CDROM_MAX_SECTORS: u64 = 256 * 60 * 75 - 1;
/// A disk image is counted in 512-byte sectors; a shorter one is refused.
const DISK_SECTOR: u64 = 512;
/// The kernel's ETOOSMALL (not a userspace errno, so not in rustix).
const ETOOSMALL: i32 = 525;

/// The target's virtual drives, through the configfs attributes of the gadget `gadget_name`.
#[derive(Debug, Clone)]
pub struct GadgetDrive {
    gadget_name: String,
    library: MediaLibrary,
    /// Where gadgets are: None for the mounted configfs (found as `kvnc gadget` finds it).
    gadgets_root: Option<PathBuf>,
    /// Where UDCs report their state (/sys/class/udc).
    udc_class: PathBuf,
    io: Arc<dyn AttributeIo>,
}

/// Reads and writes configfs attributes. A trait so that the unit tests can put a model of the
/// kernel's rules (EBUSY and all) over a temporary directory.
pub trait AttributeIo: Send + Sync + fmt::Debug {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn write(&self, path: &Path, value: &[u8]) -> io::Result<()>;
}

/// The real thing: configfs files.
#[derive(Debug)]
struct Configfs;

impl AttributeIo for Configfs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write(&self, path: &Path, value: &[u8]) -> io::Result<()> {
        // One write(2): configfs hands each write to the attribute's store function whole.
        fs::write(path, value)
    }
}

/// Where the gadget's mass-storage function is.
struct Located {
    gadget: PathBuf,
    function: PathBuf,
}

impl Located {
    fn lun(&self, lun: MediaLun) -> PathBuf {
        self.function.join(lun.dir_name())
    }
}

impl GadgetDrive {
    /// The drives of the gadget called `gadget_name` in the mounted configfs, with images from
    /// `library`.
    pub fn new(gadget_name: impl Into<String>, library: MediaLibrary) -> Self {
        Self {
            gadget_name: gadget_name.into(),
            library,
            gadgets_root: None,
            udc_class: PathBuf::from("/sys/class/udc"),
            io: Arc::new(Configfs),
        }
    }

    /// Like [`GadgetDrive::new`] with gadgets under `gadgets_root` (instead of configfs's
    /// `usb_gadget`) and UDC states under `udc_class` (instead of /sys/class/udc): for tests
    /// against a directory tree that stands in for the kernel's.
    pub fn with_roots(
        gadget_name: impl Into<String>,
        library: MediaLibrary,
        gadgets_root: impl Into<PathBuf>,
        udc_class: impl Into<PathBuf>,
    ) -> Self {
        Self { gadgets_root: Some(gadgets_root.into()), udc_class: udc_class.into(), ..Self::new(gadget_name, library) }
    }

    /// Replaces how attributes are read and written (tests model the kernel with it).
    pub fn with_io(mut self, io: Arc<dyn AttributeIo>) -> Self {
        self.io = io;
        self
    }

    pub fn library(&self) -> &MediaLibrary {
        &self.library
    }

    /// The drive an image in `mode` goes into.
    pub fn lun_for(mode: MediaMode) -> MediaLun {
        match mode {
            MediaMode::Cdrom => MediaLun::Cdrom,
            MediaMode::ReadOnly | MediaMode::ReadWrite => MediaLun::Disk,
        }
    }

    fn locate(&self) -> anyhow::Result<Located> {
        let name = &self.gadget_name;
        let gadget = match &self.gadgets_root {
            Some(root) => Some(root.join(name)).filter(|dir| dir.is_dir()),
            None => gadget::gadget_dir(name)?,
        };
        let Some(gadget) = gadget else {
            bail!("there is no USB gadget {name:?}: run `kvnc gadget up` (as root) first, or give its --gadget-name");
        };
        let old_gadget = || {
            anyhow!(
                "the USB gadget {name:?} has no virtual drives like kvnc's (it was set up by an older kvnc, or \
                 by hand): `kvnc gadget up` re-creates it (the target sees the keyboard unplugged and plugged \
                 in once)"
            )
        };
        let function = gadget::mass_storage_dir(&gadget).ok_or_else(old_gadget)?;
        let located = Located { gadget, function };
        if !MediaLun::ALL.iter().all(|lun| located.lun(*lun).is_dir()) {
            return Err(old_gadget());
        }
        Ok(located)
    }

    /// Reads attribute `name` of `dir`, without the kernel's trailing line break.
    fn read_attr(&self, dir: &Path, name: &str) -> anyhow::Result<String> {
        let path = dir.join(name);
        let bytes = self.io.read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        Ok(text.strip_suffix('\n').unwrap_or(&text).to_string())
    }

    fn write_attr(&self, dir: &Path, name: &str, value: &[u8]) -> io::Result<()> {
        let path = dir.join(name);
        tracing::debug!("writing {:?} to {}", String::from_utf8_lossy(value), path.display());
        self.io.write(&path, value)
    }

    /// Empties `lun`; returns whether the target held the medium (it was then forced out).
    fn eject_lun(&self, located: &Located, lun: MediaLun) -> anyhow::Result<bool> {
        let dir = located.lun(lun);
        let file = self.read_attr(&dir, "file")?;
        if file.is_empty() {
            return Ok(false);
        }
        let writable = self.read_attr(&dir, "ro")? == "0";
        // A line break, not nothing: configfs never passes an empty write on to the kernel's
        // store function, and it takes "\n" for "no file".
        let forced = match self.write_attr(&dir, "file", b"\n") {
            Ok(()) => false,
            Err(error) if is_errno(&error, Errno::BUSY) => {
                tracing::warn!(
                    "the target has the {} locked (the medium is in use there: mounted or open); forcing {file} out",
                    lun.name()
                );
                self.write_attr(&dir, "forced_eject", b"1")
                    .map_err(|error| explain(error, &dir.join("forced_eject"), "force the medium out"))?;
                true
            }
            Err(error) => return Err(explain(error, &dir.join("file"), "eject")),
        };
        tracing::info!("ejected {file} from the {}", lun.name());
        if writable {
            // What the target wrote sits in the board's page cache: flush it now, so that a power
            // cut after the eject cannot lose it.
            if let Err(error) = fs::File::open(&file).and_then(|image| image.sync_all()) {
                tracing::warn!("cannot flush {file} to storage after the eject: {error}");
            }
        }
        Ok(forced)
    }

    fn read_status(&self, located: &Located) -> anyhow::Result<MediaStatus> {
        let mut loaded = Vec::new();
        for lun in MediaLun::ALL {
            let dir = located.lun(lun);
            let file = self.read_attr(&dir, "file")?;
            if !file.is_empty() {
                let read_only = self.read_attr(&dir, "ro")? != "0";
                loaded.push((lun, file, read_only));
            }
        }
        if loaded.len() > 1 {
            tracing::warn!(
                "both drives hold an image (kvnc attaches one at a time; set by hand?): reporting the first"
            );
        }
        let (image, mode) = match loaded.into_iter().next() {
            None => (None, None),
            Some((lun, file, read_only)) => {
                let mode = match (lun, read_only) {
                    (MediaLun::Cdrom, _) => MediaMode::Cdrom,
                    (MediaLun::Disk, true) => MediaMode::ReadOnly,
                    (MediaLun::Disk, false) => MediaMode::ReadWrite,
                };
                let image = self.library.name_of(Path::new(&file)).unwrap_or(file);
                (Some(image), Some(mode))
            }
        };
        Ok(MediaStatus { image, mode, host_configured: self.host_configured(located) })
    }

    /// Whether the gadget is bound to a UDC whose state is `configured`: the target's USB host
    /// has enumerated the device, so it sees the drives (and the medium, if one is in).
    fn host_configured(&self, located: &Located) -> bool {
        let Ok(udc) = self.read_attr(&located.gadget, "UDC") else { return false };
        let udc = udc.trim();
        if udc.is_empty() {
            return false;
        }
        self.read_attr(&self.udc_class.join(udc), "state").is_ok_and(|state| state.trim() == "configured")
    }
}

/// Refuses images the kernel would refuse, with the reason, and warns about one it would cut.
fn check_size(name: &str, size: u64, mode: MediaMode) -> anyhow::Result<()> {
    match mode {
        MediaMode::Cdrom => {
            if size / CDROM_SECTOR < CDROM_MIN_SECTORS {
                bail!(
                    "{name:?} is {size} bytes: too small for a CD-ROM (the kernel needs at least {CDROM_MIN_SECTORS} \
                     sectors of {CDROM_SECTOR} bytes, 600 KiB); attach it as a disk (--mode read-only)"
                );
            }
            if size / CDROM_SECTOR > CDROM_MAX_SECTORS {
                tracing::warn!(
                    "{name:?} is {size} bytes: Linux's mass-storage function (at least up to 6.1) shows a CD-ROM \
                     only its first {} bytes, so the target may fail reading the rest; a hybrid ISO (most \
                     installers) works whole as a disk: --mode read-only",
                    CDROM_MAX_SECTORS * CDROM_SECTOR
                );
            }
        }
        MediaMode::ReadOnly | MediaMode::ReadWrite => {
            if size < DISK_SECTOR {
                bail!("{name:?} is {size} bytes: a disk image needs at least one sector of {DISK_SECTOR} bytes");
            }
        }
    }
    Ok(())
}

fn is_errno(error: &io::Error, errno: Errno) -> bool {
    error.raw_os_error() == Some(errno.raw_os_error())
}

/// An attribute write's error in words: who may write configfs, what EBUSY meant there.
fn explain(error: io::Error, path: &Path, doing: &str) -> anyhow::Error {
    let code = error.raw_os_error();
    let why = if code == Some(Errno::ACCESS.raw_os_error()) || code == Some(Errno::PERM.raw_os_error()) {
        "permission denied: changing virtual media writes configfs, which needs root".to_string()
    } else if code == Some(Errno::BUSY.raw_os_error()) {
        "the drive is busy (it has a medium again: is another kvnc changing media at the same time?)".to_string()
    } else {
        error.to_string()
    };
    anyhow!("cannot {doing}: {why} ({})", path.display())
}

/// Why the kernel would not take an image (from writing its path to `file`).
fn explain_load(error: io::Error, path: &Path, lun: MediaLun) -> anyhow::Error {
    let code = error.raw_os_error();
    let why = if code == Some(ETOOSMALL) {
        format!("the image is too small for a {}", lun.name())
    } else if code == Some(Errno::NOENT.raw_os_error()) {
        "the image is gone (deleted or moved just now?)".to_string()
    } else if code == Some(Errno::INVAL.raw_os_error()) {
        "the kernel cannot use it as a medium (not a regular file, or not readable)".to_string()
    } else if code == Some(Errno::ACCESS.raw_os_error()) || code == Some(Errno::PERM.raw_os_error()) {
        "permission denied: changing virtual media writes configfs, which needs root".to_string()
    } else if code == Some(Errno::BUSY.raw_os_error()) {
        "the drive is busy (it got a medium again: is another kvnc changing media at the same time?)".to_string()
    } else {
        error.to_string()
    };
    anyhow!("cannot put {} into the {}: {why} (the drives are empty now)", path.display(), lun.name())
}

/// Holds the function directory locked (flock) while a change is under way, so that a
/// `kvnc media` beside `kvnc serve` cannot interleave its steps with the server's.
fn lock(function: &Path) -> anyhow::Result<fs::File> {
    let dir = fs::File::open(function).with_context(|| format!("cannot open {}", function.display()))?;
    rustix::fs::flock(&dir, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", function.display()))?;
    Ok(dir)
}

impl VirtualMedia for GadgetDrive {
    fn list(&self) -> anyhow::Result<Vec<ImageInfo>> {
        Ok(self.library.list()?)
    }

    fn attach(&self, name: &str, mode: MediaMode) -> anyhow::Result<MediaStatus> {
        let path = self.library.resolve(name)?;
        let size = fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?.len();
        check_size(name, size, mode)?;
        let located = self.locate()?;
        let _lock = lock(&located.function)?;
        let lun = Self::lun_for(mode);
        let dir = located.lun(lun);
        // Its type was fixed when the gadget was made: a different one means it was changed by hand.
        let cdrom = self.read_attr(&dir, "cdrom")?;
        if (cdrom == "1") != lun.is_cdrom() {
            bail!(
                "{} of gadget {:?} says cdrom={cdrom}, which is not kvnc's {} drive: `kvnc gadget down` and \
                 `kvnc gadget up` set it up again",
                dir.display(),
                self.gadget_name,
                lun.name()
            );
        }
        // One image at a time, and `ro` can change only while the drive is empty: both drives
        // are emptied first (forcing the medium out if the target holds it).
        for each in MediaLun::ALL {
            self.eject_lun(&located, each)?;
        }
        let read_only = mode != MediaMode::ReadWrite;
        self.write_attr(&dir, "ro", if read_only { b"1" } else { b"0" })
            .map_err(|error| explain(error, &dir.join("ro"), "make the drive read-only or writable"))?;
        self.write_attr(&dir, "file", path.as_os_str().as_bytes()).map_err(|error| explain_load(error, &path, lun))?;
        let status = self.read_status(&located)?;
        if mode == MediaMode::ReadWrite && status.mode == Some(MediaMode::ReadOnly) {
            tracing::warn!(
                "{name:?} is attached read-only: the kernel could not open {} for writing (file permissions, or \
                 a read-only filesystem)",
                path.display()
            );
        }
        tracing::info!("attached {name:?} ({}) as the {}", mode_name(mode), lun.name());
        Ok(status)
    }

    fn eject(&self) -> anyhow::Result<MediaStatus> {
        let located = self.locate()?;
        let _lock = lock(&located.function)?;
        for lun in MediaLun::ALL {
            self.eject_lun(&located, lun)?;
        }
        self.read_status(&located)
    }

    fn status(&self) -> anyhow::Result<MediaStatus> {
        let located = self.locate()?;
        self.read_status(&located)
    }
}

/// `--mode`'s spelling of a mode.
pub fn mode_name(mode: MediaMode) -> &'static str {
    match mode {
        MediaMode::Cdrom => "cdrom",
        MediaMode::ReadOnly => "read-only",
        MediaMode::ReadWrite => "read-write",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;
    use crate::media::library::tests::TempDir;

    /// f_mass_storage's attribute rules (storage_common.c) over a directory tree: `ro` and
    /// `cdrom` refuse to change while a file is in (EBUSY), `cdrom` 1 implies `ro` 1, `file`
    /// refuses while the target holds the medium locked (EBUSY), `forced_eject` empties it
    /// anyway, a path must name a file big enough (ENOENT, ETOOSMALL), and an empty write
    /// reaches nothing (as configfs). Every write is logged.
    #[derive(Debug, Default)]
    struct KernelModel {
        /// LUN directories whose medium the target holds locked.
        locked: Mutex<HashSet<PathBuf>>,
        /// (LUN directory name/attribute, value) of every write the kernel accepted.
        writes: Mutex<Vec<(String, String)>>,
        /// Attributes whose next write fails with this errno (e.g. a permission error).
        fail: Mutex<Option<(String, i32)>>,
    }

    impl KernelModel {
        fn lock(&self, lun: &Path) {
            self.locked.lock().unwrap().insert(lun.to_path_buf());
        }

        fn writes(&self) -> Vec<(String, String)> {
            self.writes.lock().unwrap().clone()
        }
    }

    fn errno(code: Errno) -> io::Error {
        io::Error::from_raw_os_error(code.raw_os_error())
    }

    impl AttributeIo for KernelModel {
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            fs::read(path)
        }

        fn write(&self, path: &Path, value: &[u8]) -> io::Result<()> {
            if value.is_empty() {
                return Ok(());
            }
            let attribute = path.file_name().unwrap().to_string_lossy().into_owned();
            let lun = path.parent().unwrap();
            let key = format!("{}/{attribute}", lun.file_name().unwrap().to_string_lossy());
            let mut fail = self.fail.lock().unwrap();
            if fail.as_ref().is_some_and(|(failing, _)| *failing == key) {
                let (_, code) = fail.take().unwrap();
                return Err(io::Error::from_raw_os_error(code));
            }
            drop(fail);
            let text = String::from_utf8_lossy(value).into_owned();
            let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
            let is_open = !fs::read_to_string(lun.join("file")).unwrap().trim().is_empty();
            match attribute.as_str() {
                "ro" if is_open => return Err(errno(Errno::BUSY)),
                "cdrom" if is_open => return Err(errno(Errno::BUSY)),
                "cdrom" if text == "1" => fs::write(lun.join("ro"), "1")?,
                "file" if is_open && self.locked.lock().unwrap().contains(lun) => return Err(errno(Errno::BUSY)),
                "file" if !text.is_empty() => {
                    let metadata = fs::metadata(&text).map_err(|_| errno(Errno::NOENT))?;
                    let cdrom = fs::read_to_string(lun.join("cdrom")).unwrap().trim() == "1";
                    let (sector, minimum) = if cdrom { (2048, 300) } else { (512, 1) };
                    if metadata.len() / sector < minimum {
                        return Err(io::Error::from_raw_os_error(ETOOSMALL));
                    }
                }
                "forced_eject" => {
                    self.locked.lock().unwrap().remove(lun);
                    fs::write(lun.join("file"), "")?;
                }
                _ => {}
            }
            if attribute != "forced_eject" {
                fs::write(path, &text)?;
            }
            if attribute == "file" && text.is_empty() {
                self.locked.lock().unwrap().remove(lun);
            }
            self.writes.lock().unwrap().push((key, text));
            Ok(())
        }
    }

    /// A gadget tree as `kvnc gadget up` leaves it, a UDC state, a media directory.
    struct Fixture {
        root: TempDir,
        kernel: Arc<KernelModel>,
        drive: GadgetDrive,
    }

    impl Fixture {
        fn new(test: &str) -> Self {
            let root = TempDir::new(test);
            let media = root.0.join("media");
            fs::create_dir(&media).unwrap();
            fs::write(media.join("installer.iso"), vec![0x49; 300 * 2048]).unwrap();
            fs::write(media.join("tiny.iso"), vec![0x49; 299 * 2048]).unwrap();
            fs::write(media.join("disk.img"), vec![0; 64 * 1024]).unwrap();
            let gadget = root.0.join("usb_gadget").join("kvnc");
            let function = gadget.join("functions").join("mass_storage.kvnc-3");
            for lun in MediaLun::ALL {
                let dir = function.join(lun.dir_name());
                fs::create_dir_all(&dir).unwrap();
                let cdrom = if lun.is_cdrom() { "1" } else { "0" };
                for (attribute, value) in
                    [("file", ""), ("ro", cdrom), ("cdrom", cdrom), ("removable", "1"), ("forced_eject", "")]
                {
                    fs::write(dir.join(attribute), value).unwrap();
                }
            }
            fs::write(gadget.join("UDC"), "dummy_udc.0\n").unwrap();
            let udc = root.0.join("udc").join("dummy_udc.0");
            fs::create_dir_all(&udc).unwrap();
            fs::write(udc.join("state"), "configured\n").unwrap();
            let kernel = Arc::new(KernelModel::default());
            let drive =
                GadgetDrive::with_roots("kvnc", MediaLibrary::new(&media), root.0.join("usb_gadget"), udc_root(&root))
                    .with_io(kernel.clone());
            Self { root, kernel, drive }
        }

        fn lun(&self, lun: MediaLun) -> PathBuf {
            self.root.0.join("usb_gadget/kvnc/functions/mass_storage.kvnc-3").join(lun.dir_name())
        }

        fn attribute(&self, lun: MediaLun, attribute: &str) -> String {
            fs::read_to_string(self.lun(lun).join(attribute)).unwrap()
        }

        fn media(&self, name: &str) -> PathBuf {
            self.root.0.join("media").canonicalize().unwrap().join(name)
        }
    }

    fn udc_root(root: &TempDir) -> PathBuf {
        root.0.join("udc")
    }

    fn status(image: Option<&str>, mode: Option<MediaMode>) -> MediaStatus {
        MediaStatus { image: image.map(str::to_string), mode, host_configured: true }
    }

    #[test]
    fn attaches_an_iso_to_the_cdrom_drive() {
        let fixture = Fixture::new("attach-iso");
        let result = fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap();
        assert_eq!(result, status(Some("installer.iso"), Some(MediaMode::Cdrom)));
        assert_eq!(fixture.attribute(MediaLun::Cdrom, "file"), fixture.media("installer.iso").to_string_lossy());
        assert_eq!(fixture.attribute(MediaLun::Cdrom, "ro"), "1");
        assert_eq!(fixture.attribute(MediaLun::Disk, "file"), "");
        // Only `ro` and `file` change; the drive's type is the gadget's.
        let installer = fixture.media("installer.iso").to_string_lossy().into_owned();
        assert_eq!(fixture.kernel.writes(), [("lun.0/ro".into(), "1".into()), ("lun.0/file".into(), installer)]);
        assert_eq!(fixture.drive.status().unwrap(), result);
    }

    #[test]
    fn attaches_disk_images_read_only_or_read_write_to_the_disk_drive() {
        let fixture = Fixture::new("attach-disk");
        let result = fixture.drive.attach("disk.img", MediaMode::ReadWrite).unwrap();
        assert_eq!(result, status(Some("disk.img"), Some(MediaMode::ReadWrite)));
        assert_eq!(fixture.attribute(MediaLun::Disk, "ro"), "0");
        // Swapping to read-only: empty first (the kernel refuses `ro` on a loaded drive).
        let result = fixture.drive.attach("disk.img", MediaMode::ReadOnly).unwrap();
        assert_eq!(result, status(Some("disk.img"), Some(MediaMode::ReadOnly)));
        let disk = fixture.media("disk.img").to_string_lossy().into_owned();
        assert_eq!(
            fixture.kernel.writes(),
            [
                ("lun.1/ro".into(), "0".into()),
                ("lun.1/file".into(), disk.clone()),
                ("lun.1/file".into(), "".into()),
                ("lun.1/ro".into(), "1".into()),
                ("lun.1/file".into(), disk),
            ]
        );
    }

    #[test]
    fn swapping_between_drives_empties_the_other_one_first() {
        let fixture = Fixture::new("swap");
        fixture.drive.attach("disk.img", MediaMode::ReadWrite).unwrap();
        let result = fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap();
        assert_eq!(result, status(Some("installer.iso"), Some(MediaMode::Cdrom)));
        assert_eq!(fixture.attribute(MediaLun::Disk, "file"), "");
        let result = fixture.drive.attach("disk.img", MediaMode::ReadOnly).unwrap();
        assert_eq!(result, status(Some("disk.img"), Some(MediaMode::ReadOnly)));
        assert_eq!(fixture.attribute(MediaLun::Cdrom, "file"), "");
    }

    #[test]
    fn a_medium_the_target_holds_is_forced_out() {
        let fixture = Fixture::new("forced");
        fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap();
        fixture.kernel.lock(&fixture.lun(MediaLun::Cdrom));
        let result = fixture.drive.eject().unwrap();
        assert_eq!(result, status(None, None));
        let writes = fixture.kernel.writes();
        assert_eq!(writes.last(), Some(&("lun.0/forced_eject".into(), "1".into())), "{writes:?}");

        // Also when a new image replaces it.
        fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap();
        fixture.kernel.lock(&fixture.lun(MediaLun::Cdrom));
        let result = fixture.drive.attach("disk.img", MediaMode::ReadWrite).unwrap();
        assert_eq!(result, status(Some("disk.img"), Some(MediaMode::ReadWrite)));
    }

    #[test]
    fn eject_empties_the_drives_and_is_idempotent() {
        let fixture = Fixture::new("eject");
        assert_eq!(fixture.drive.eject().unwrap(), status(None, None));
        assert!(fixture.kernel.writes().is_empty());
        fixture.drive.attach("disk.img", MediaMode::ReadWrite).unwrap();
        assert_eq!(fixture.drive.eject().unwrap(), status(None, None));
        assert_eq!(fixture.attribute(MediaLun::Disk, "file"), "");
    }

    #[test]
    fn status_maps_paths_to_names_and_reports_the_host() {
        let fixture = Fixture::new("status");
        assert_eq!(fixture.drive.status().unwrap(), status(None, None));
        // Set by hand, outside the media directory: reported by path.
        let outside = fixture.root.0.join("elsewhere.img");
        fs::write(&outside, vec![0; 1024]).unwrap();
        fs::write(fixture.lun(MediaLun::Disk).join("file"), format!("{}\n", outside.display())).unwrap();
        fs::write(fixture.lun(MediaLun::Disk).join("ro"), "1\n").unwrap();
        let expected = status(Some(&outside.to_string_lossy()), Some(MediaMode::ReadOnly));
        assert_eq!(fixture.drive.status().unwrap(), expected);

        // The host: configured only while the gadget is bound to a configured UDC.
        fs::write(fixture.root.0.join("udc/dummy_udc.0/state"), "suspended\n").unwrap();
        assert!(!fixture.drive.status().unwrap().host_configured);
        fs::write(fixture.root.0.join("udc/dummy_udc.0/state"), "configured\n").unwrap();
        fs::write(fixture.root.0.join("usb_gadget/kvnc/UDC"), "\n").unwrap();
        assert!(!fixture.drive.status().unwrap().host_configured);
    }

    #[test]
    fn a_read_write_image_the_kernel_opened_read_only_is_reported_so() {
        let fixture = Fixture::new("fallback");
        // What the kernel does when the file cannot be opened for writing: `ro` reads 1.
        #[derive(Debug)]
        struct ReadOnlyFallback(Arc<KernelModel>);
        impl AttributeIo for ReadOnlyFallback {
            fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
                self.0.read(path)
            }
            fn write(&self, path: &Path, value: &[u8]) -> io::Result<()> {
                self.0.write(path, value)?;
                if path.ends_with("file") && value != b"\n" {
                    fs::write(path.with_file_name("ro"), "1")?;
                }
                Ok(())
            }
        }
        let drive = fixture.drive.clone().with_io(Arc::new(ReadOnlyFallback(fixture.kernel.clone())));
        let result = drive.attach("disk.img", MediaMode::ReadWrite).unwrap();
        assert_eq!(result.mode, Some(MediaMode::ReadOnly));
    }

    #[test]
    fn refuses_what_the_kernel_would_refuse_with_reasons() {
        let fixture = Fixture::new("refusals");
        let error = fixture.drive.attach("tiny.iso", MediaMode::Cdrom).unwrap_err().to_string();
        assert!(error.contains("too small for a CD-ROM") && error.contains("--mode read-only"), "{error}");
        // As a disk it is fine.
        fixture.drive.attach("tiny.iso", MediaMode::ReadOnly).unwrap();
        let error = fixture.drive.attach("../media/disk.img", MediaMode::ReadOnly).unwrap_err().to_string();
        assert!(error.contains("not an image name"), "{error}");
        let error = fixture.drive.attach("missing.iso", MediaMode::Cdrom).unwrap_err().to_string();
        assert!(error.contains("no image \"missing.iso\""), "{error}");
        // Nothing was touched by the refusals.
        assert_eq!(fixture.drive.status().unwrap(), status(Some("tiny.iso"), Some(MediaMode::ReadOnly)));
    }

    #[test]
    fn kernel_errors_are_explained() {
        let fixture = Fixture::new("errors");
        *fixture.kernel.fail.lock().unwrap() = Some(("lun.0/ro".into(), Errno::ACCESS.raw_os_error()));
        let error = fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap_err().to_string();
        assert!(error.contains("needs root"), "{error}");
        *fixture.kernel.fail.lock().unwrap() = Some(("lun.0/file".into(), ETOOSMALL));
        let error = fixture.drive.attach("installer.iso", MediaMode::Cdrom).unwrap_err().to_string();
        assert!(error.contains("too small for a CD-ROM"), "{error}");
        *fixture.kernel.fail.lock().unwrap() = Some(("lun.1/ro".into(), Errno::BUSY.raw_os_error()));
        let error = fixture.drive.attach("disk.img", MediaMode::ReadWrite).unwrap_err().to_string();
        assert!(error.contains("another kvnc"), "{error}");
    }

    #[test]
    fn no_gadget_or_an_old_one_says_what_to_run() {
        let fixture = Fixture::new("no-gadget");
        let other = GadgetDrive::with_roots(
            "other",
            fixture.drive.library().clone(),
            fixture.root.0.join("usb_gadget"),
            udc_root(&fixture.root),
        );
        let error = other.status().unwrap_err().to_string();
        assert!(error.contains("no USB gadget \"other\"") && error.contains("kvnc gadget up"), "{error}");

        // A gadget from before virtual media: HID functions only.
        let old = fixture.root.0.join("usb_gadget/old/functions/hid.old-0");
        fs::create_dir_all(old).unwrap();
        let old = GadgetDrive::with_roots(
            "old",
            fixture.drive.library().clone(),
            fixture.root.0.join("usb_gadget"),
            udc_root(&fixture.root),
        );
        let error = old.attach("installer.iso", MediaMode::Cdrom).unwrap_err().to_string();
        assert!(error.contains("no virtual drives") && error.contains("`kvnc gadget up` re-creates it"), "{error}");
    }

    #[test]
    fn lists_the_library() {
        let fixture = Fixture::new("list");
        let names: Vec<String> = fixture.drive.list().unwrap().into_iter().map(|image| image.name).collect();
        assert_eq!(names, ["disk.img", "installer.iso", "tiny.iso"]);
    }
}
