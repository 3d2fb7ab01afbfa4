//! The USB gadget kvnc presents on the board's OTG port: one composite device with the HID
//! functions of [`super::descriptor`] (keyboard, absolute pointer, boot mouse) and one
//! mass-storage function with two removable drives ([`MediaLun`]: a CD-ROM and a disk, empty
//! until `kvnc media attach` fills one), set up in configfs through the `usb-gadget` crate.
//! This file and `descriptor.rs` are the device contract: tests take interface numbers, LUNs and
//! attributes from here.
//!
//! The gadget outlives kvnc on purpose: removing it unplugs the keyboard from the target, and
//! firmware may not find it again until the next boot. So `up` is idempotent (an existing gadget
//! with the same layout is kept, and bound if it is not), `serve` never removes it, and only
//! `kvnc gadget down` does.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use usb_gadget::function::hid::Hid;
use usb_gadget::function::msd::{Lun, Msd};
use usb_gadget::{Class, Config, Gadget, Id, RegGadget, Strings, Udc};

use super::Role;
use super::descriptor::HidFunction;

/// Where the HID functions' character devices are and who the gadget says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GadgetConfig {
    /// The gadget's configfs directory name.
    pub name: String,
    pub vendor_id: u16,
    pub product_id: u16,
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
    /// The UDC to bind to; the first one (alphabetically, like `usb_gadget::default_udc`) if None.
    pub udc: Option<String>,
}

impl Default for GadgetConfig {
    fn default() -> Self {
        Self {
            name: "kvnc".into(),
            // The Linux Foundation's "Multifunction Composite Gadget" ID, as PiKVM uses.
            vendor_id: 0x1d6b,
            product_id: 0x0104,
            manufacturer: "kvnc".into(),
            product: "kvnc Composite KVM Device".into(),
            serial: "kvnc-0001".into(),
            udc: None,
        }
    }
}

/// The drives of the gadget's mass-storage function, one SCSI logical unit (LUN) each, in
/// configfs order (`lun.0`, `lun.1`).
///
/// Two drives of fixed type rather than one whose `cdrom` flag flips: a host learns whether a
/// LUN is a CD-ROM or a disk (SCSI INQUIRY) only when it enumerates the device, so a flipped
/// flag reaches the target only after a re-plug, and a re-plug unplugs the keyboard too (PiKVM's
/// maintainer says the same: pikvm/pikvm#37, #188; the lab showed an sr0 staying sr0). With one
/// drive of each type, an ISO goes into the CD-ROM and a disk image into the disk, and the target
/// only ever sees media changes. The CD-ROM is LUN 0, where firmware that looks at the first LUN
/// only still finds installer ISOs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaLun {
    /// A CD-ROM drive (`cdrom` 1, always read-only): ISOs.
    Cdrom,
    /// A removable disk (`cdrom` 0), read-only or read-write: disk images.
    Disk,
}

impl MediaLun {
    pub const ALL: [MediaLun; 2] = [MediaLun::Cdrom, MediaLun::Disk];

    /// The SCSI LUN the target sees, and N of the configfs directory `lun.N`.
    pub fn index(self) -> usize {
        match self {
            MediaLun::Cdrom => 0,
            MediaLun::Disk => 1,
        }
    }

    /// The LUN's directory in the mass-storage function's configfs directory.
    pub fn dir_name(self) -> String {
        format!("lun.{}", self.index())
    }

    pub fn is_cdrom(self) -> bool {
        self == MediaLun::Cdrom
    }

    pub fn name(self) -> &'static str {
        match self {
            MediaLun::Cdrom => "CD-ROM",
            MediaLun::Disk => "disk",
        }
    }

    /// The SCSI INQUIRY identification the target lists the drive by: vendor (8 characters),
    /// product (16) and revision (4), as the kernel's `inquiry_string` attribute takes them.
    pub fn inquiry_string(self) -> &'static str {
        match self {
            MediaLun::Cdrom => "kvnc    Virtual CD-ROM  0001",
            MediaLun::Disk => "kvnc    Virtual Disk    0001",
        }
    }
}

/// The USB interface number of the mass-storage function: it comes after the HID functions, so
/// theirs stay what they were before it existed.
pub const MASS_STORAGE_INTERFACE: usize = Role::ALL.len();

/// What a gadget looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GadgetStatus {
    pub name: String,
    /// The UDC it is bound to, if any.
    pub udc: Option<String>,
    /// The UDC's state as the kernel reports it: "configured", "suspended", "not attached", ...
    pub udc_state: Option<String>,
    /// The character device of each HID function (present only while bound).
    pub devices: Vec<(Role, Option<PathBuf>)>,
    /// The mass-storage function's configfs directory (None on a gadget made before kvnc had one).
    pub mass_storage: Option<PathBuf>,
}

impl GadgetStatus {
    /// The device paths of a bound gadget, for [`super::hidg::HidgSink::start`].
    pub fn device_paths(&self) -> anyhow::Result<Vec<(Role, PathBuf)>> {
        self.devices
            .iter()
            .map(|(role, path)| {
                let path = path.clone().ok_or_else(|| anyhow!("the gadget's {} has no device node", role.name()))?;
                Ok((*role, path))
            })
            .collect()
    }
}

impl std::fmt::Display for GadgetStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "gadget: {}", self.name)?;
        match &self.udc {
            Some(udc) => writeln!(f, "udc: {udc} ({})", self.udc_state.as_deref().unwrap_or("state unknown"))?,
            None => writeln!(f, "udc: none (not bound)")?,
        }
        for (role, path) in &self.devices {
            let path = path.as_ref().map_or("-".into(), |path| path.display().to_string());
            writeln!(f, "{}: {path}", role.name())?;
        }
        match &self.mass_storage {
            Some(dir) => {
                let luns: Vec<String> =
                    MediaLun::ALL.iter().map(|lun| format!("{} {}", lun.name(), lun.dir_name())).collect();
                writeln!(f, "mass storage: {} ({})", dir.display(), luns.join(", "))?
            }
            None => writeln!(f, "mass storage: none (`kvnc gadget up` re-creates the gadget with it)")?,
        }
        Ok(())
    }
}

/// Creates (or finds) the gadget and binds it; returns its status with the device paths.
pub fn up(config: &GadgetConfig) -> anyhow::Result<GadgetStatus> {
    let udc = choose_udc(config.udc.as_deref())?;
    if let Some(existing) = find(&config.name)? {
        let difference = layout_difference(existing.path(), config);
        if difference.is_none() {
            let bound = existing.udc().context("cannot read the gadget's UDC")?;
            match bound {
                Some(bound) if bound == udc.name() => {
                    tracing::info!("gadget {} is already up on {}", config.name, udc.name().to_string_lossy());
                }
                _ => {
                    existing.bind(Some(&udc)).with_context(|| bind_error(&udc))?;
                    tracing::info!("bound the existing gadget {} to {}", config.name, udc.name().to_string_lossy());
                }
            }
            return wait_for_devices(&config.name);
        }
        let difference = difference.unwrap_or_default();
        tracing::info!("gadget {} differs ({difference}): re-creating it", config.name);
        existing.remove().context("cannot remove the old gadget")?;
    }
    let mut gadget = Gadget::new(
        Class::INTERFACE_SPECIFIC,
        Id::new(config.vendor_id, config.product_id),
        Strings::new(&config.manufacturer, &config.product, &config.serial),
    );
    gadget.name = Some(config.name.clone());
    let mut usb_config = Config::new("kvnc");
    for role in Role::ALL {
        usb_config.add_function(hid_function(role.function()));
    }
    // After the HID functions: their interface numbers (and /dev/hidgN order) stay as they were.
    usb_config.add_function(mass_storage_function());
    let mut registered = gadget.with_config(usb_config).bind(&udc).map_err(|error| {
        if error.kind() == std::io::ErrorKind::Unsupported {
            anyhow!(
                "this kernel's HID gadget function lacks an attribute kvnc needs (`no_out_endpoint`, \
                 Linux 5.19 and later): {error}"
            )
        } else {
            anyhow::Error::new(error).context(bind_error(&udc))
        }
    })?;
    // Keep the gadget after this process exits: removing it would unplug the target's keyboard.
    registered.detach();
    tracing::info!("created gadget {} on {}", config.name, udc.name().to_string_lossy());
    wait_for_devices(&config.name)
}

/// Unbinds and removes the gadget; returns whether there was one.
pub fn down(name: &str) -> anyhow::Result<bool> {
    let Some(gadget) = find(name)? else { return Ok(false) };
    gadget.remove().with_context(|| format!("cannot remove gadget {name}"))?;
    Ok(true)
}

/// The gadget's status, or None if there is no gadget of that name.
pub fn status(name: &str) -> anyhow::Result<Option<GadgetStatus>> {
    let Some(gadget) = find(name)? else { return Ok(None) };
    let udc = gadget.udc().context("cannot read the gadget's UDC")?.map(|udc| udc.to_string_lossy().into_owned());
    let udc_state = udc.as_deref().map(udc_state);
    let devices = Role::ALL
        .into_iter()
        .map(|role| (role, function_dir(gadget.path(), role).and_then(|dir| device_node(&dir))))
        .collect();
    let mass_storage = mass_storage_dir(gadget.path());
    Ok(Some(GadgetStatus { name: name.to_string(), udc, udc_state, devices, mass_storage }))
}

/// The configfs directory of the gadget called `name`, or None if there is no such gadget.
pub fn gadget_dir(name: &str) -> anyhow::Result<Option<PathBuf>> {
    Ok(find(name)?.map(|gadget| gadget.path().to_path_buf()))
}

/// The mass-storage function's directory (`functions/mass_storage.*`) in the gadget directory
/// `gadget`, if it has one. Found by its driver's prefix, since usb-gadget numbers instances.
pub fn mass_storage_dir(gadget: &Path) -> Option<PathBuf> {
    let entries = fs::read_dir(gadget.join("functions")).ok()?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|dir| dir.file_name().is_some_and(|name| name.to_string_lossy().starts_with("mass_storage.")))
        .collect();
    // Deterministic if someone added a second one by hand.
    dirs.sort();
    dirs.into_iter().next()
}

/// The UDC's state, read from sysfs ("configured", "suspended", "not attached", ...).
pub fn udc_state(udc: &str) -> String {
    fs::read_to_string(Path::new("/sys/class/udc").join(udc).join("state"))
        .map(|state| state.trim().to_string())
        .unwrap_or_else(|error| format!("unknown ({error})"))
}

fn hid_function(function: &HidFunction) -> usb_gadget::function::Handle {
    let mut builder = Hid::builder();
    builder.sub_class = function.sub_class;
    builder.protocol = function.protocol;
    builder.report_desc = function.report_desc.to_vec();
    // report_len is at most 8 (descriptor.rs): the cast cannot truncate.
    builder.report_len = function.report_len as u8;
    // No OUT endpoint, like real keyboards: U-Boot could not use a keyboard with one, and the
    // LED reports then come through SET_REPORT on the control endpoint (hardware.md §4).
    builder.no_out_endpoint = true;
    builder.build().1
}

/// One mass-storage function with the [`MediaLun`] drives, both removable and empty: media
/// come and go later by writing the LUNs' attributes (`media/drive.rs`), never by re-creating
/// the gadget.
fn mass_storage_function() -> usb_gadget::function::Handle {
    let mut builder = Msd::builder();
    // Bulk endpoints never stall: kvmd's default (its comment cites raspberrypi/linux#7452;
    // hardware.md §1).
    builder.stall = Some(false);
    for media_lun in MediaLun::ALL {
        let mut lun = Lun::empty();
        lun.removable = true;
        lun.cdrom = media_lun.is_cdrom();
        // A CD-ROM is read-only anyway (the kernel sets `ro` with `cdrom`); the disk's `ro` is
        // set at each attach.
        lun.read_only = media_lun.is_cdrom();
        lun.inquiry_string = media_lun.inquiry_string().to_string();
        builder.add_lun(lun);
    }
    builder.build().1
}

fn choose_udc(name: Option<&str>) -> anyhow::Result<Udc> {
    let mut udcs = usb_gadget::udcs().context("cannot list USB device controllers")?;
    udcs.sort_by(|a, b| a.name().cmp(b.name()));
    let names: Vec<String> = udcs.iter().map(|udc| udc.name().to_string_lossy().into_owned()).collect();
    let found = match name {
        Some(name) => udcs.into_iter().find(|udc| udc.name() == name),
        None => udcs.into_iter().next(),
    };
    found.ok_or_else(|| match (name, names.is_empty()) {
        (_, true) => anyhow!(
            "no USB device controller (/sys/class/udc is empty): on a Raspberry Pi 4 add \
             `dtoverlay=dwc2,dr_mode=peripheral` to config.txt and load the dwc2 module"
        ),
        (Some(name), false) => anyhow!("no USB device controller {name}; there are: {}", names.join(", ")),
        (None, false) => anyhow!("no USB device controller"),
    })
}

fn bind_error(udc: &Udc) -> String {
    format!(
        "cannot bind the gadget to {} (another gadget may hold it: `ls /sys/kernel/config/usb_gadget`)",
        udc.name().to_string_lossy()
    )
}

fn find(name: &str) -> anyhow::Result<Option<RegGadget>> {
    let gadgets = usb_gadget::registered()
        .context("cannot read USB gadgets from configfs (is configfs mounted, and are you root?)")?;
    Ok(gadgets.into_iter().find(|gadget| gadget.name() == name))
}

/// How an existing gadget differs from the one `config` describes (None: it is that one): the
/// IDs, the strings, the HID functions (matched by their report descriptors, since configfs
/// names them by position), or the mass-storage function and its drives (a gadget made before
/// kvnc had virtual media differs, so `up` re-creates it once).
fn layout_difference(dir: &Path, config: &GadgetConfig) -> Option<String> {
    let read =
        |path: &str| fs::read_to_string(dir.join(path)).map(|value| value.trim().to_string()).unwrap_or_default();
    let expected = [
        ("idVendor", format!("0x{:04x}", config.vendor_id)),
        ("idProduct", format!("0x{:04x}", config.product_id)),
        // usb-gadget names the US English strings directory 0x0409.
        ("strings/0x0409/manufacturer", config.manufacturer.clone()),
        ("strings/0x0409/product", config.product.clone()),
        ("strings/0x0409/serialnumber", config.serial.clone()),
    ];
    if let Some((attribute, value)) = expected.iter().find(|(attribute, value)| read(attribute) != *value) {
        return Some(format!("{attribute} is {:?}, not {value:?}", read(attribute)));
    }
    let functions = fs::read_dir(dir.join("functions")).map(|entries| entries.count()).unwrap_or(0);
    // The HID functions and one mass-storage function.
    let expected_functions = Role::ALL.len() + 1;
    if functions != expected_functions {
        return Some(format!("it has {functions} functions, not {expected_functions}"));
    }
    if let Some(missing) = Role::ALL.into_iter().find(|role| function_dir(dir, *role).is_none()) {
        return Some(format!("it has no {} function like kvnc's", missing.name()));
    }
    let Some(storage) = mass_storage_dir(dir) else {
        return Some("it has no mass-storage function".into());
    };
    mass_storage_difference(&storage)
}

/// How an existing mass-storage function differs from [`mass_storage_function`]'s: its drives'
/// types and identities (not their media, `ro` or `file`, which change with every attach).
fn mass_storage_difference(dir: &Path) -> Option<String> {
    let read =
        |path: &str| fs::read_to_string(dir.join(path)).map(|value| value.trim().to_string()).unwrap_or_default();
    let luns = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("lun."))
                .count()
        })
        .unwrap_or(0);
    if luns != MediaLun::ALL.len() {
        return Some(format!("its mass-storage function has {luns} drives, not {}", MediaLun::ALL.len()));
    }
    if read("stall") != "0" {
        return Some(format!("mass storage stall is {:?}, not \"0\"", read("stall")));
    }
    for lun in MediaLun::ALL {
        let name = lun.dir_name();
        let expected = [
            ("cdrom", if lun.is_cdrom() { "1" } else { "0" }.to_string()),
            ("removable", "1".to_string()),
            ("inquiry_string", lun.inquiry_string().trim().to_string()),
        ];
        for (attribute, value) in expected {
            let path = format!("{name}/{attribute}");
            if read(&path) != value {
                return Some(format!("mass storage {path} is {:?}, not {value:?}", read(&path)));
            }
        }
    }
    None
}

/// The configfs directory of the HID function playing `role`, found by its report descriptor.
fn function_dir(gadget: &Path, role: Role) -> Option<PathBuf> {
    let function = role.function();
    let entries = fs::read_dir(gadget.join("functions")).ok()?;
    entries.filter_map(Result::ok).map(|entry| entry.path()).find(|dir| {
        let is_hid = dir.file_name().is_some_and(|name| name.to_string_lossy().starts_with("hid."));
        let read = |attribute: &str| fs::read(dir.join(attribute)).unwrap_or_default();
        is_hid
            && read("report_desc") == function.report_desc
            && String::from_utf8_lossy(&read("protocol")).trim() == function.protocol.to_string()
            && String::from_utf8_lossy(&read("subclass")).trim() == function.sub_class.to_string()
    })
}

/// The `/dev` node of a HID function (from its `dev` attribute and sysfs), if bound.
fn device_node(function_dir: &Path) -> Option<PathBuf> {
    let dev = fs::read_to_string(function_dir.join("dev")).ok()?;
    let uevent = fs::read_to_string(Path::new("/sys/dev/char").join(dev.trim()).join("uevent")).ok()?;
    let name = uevent.lines().find_map(|line| line.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

/// Devices appear shortly after binding (udev or devtmpfs); waits up to a few seconds.
fn wait_for_devices(name: &str) -> anyhow::Result<GadgetStatus> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let status = status(name)?.ok_or_else(|| anyhow!("gadget {name} vanished"))?;
        let all_there = status.devices.iter().all(|(_, path)| path.as_ref().is_some_and(|path| path.exists()));
        if all_there || std::time::Instant::now() > deadline {
            return Ok(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configfs gadget directory as `up` leaves it (attributes as the kernel reads them back),
    /// optionally without the mass-storage function, as kvnc made gadgets before virtual media.
    fn fake_gadget(test: &str, with_mass_storage: bool) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvnc-gadget-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let config = GadgetConfig::default();
        let write = |path: &str, value: &[u8]| {
            let path = dir.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, value).unwrap();
        };
        write("idVendor", format!("0x{:04x}\n", config.vendor_id).as_bytes());
        write("idProduct", format!("0x{:04x}\n", config.product_id).as_bytes());
        write("strings/0x0409/manufacturer", format!("{}\n", config.manufacturer).as_bytes());
        write("strings/0x0409/product", format!("{}\n", config.product).as_bytes());
        write("strings/0x0409/serialnumber", format!("{}\n", config.serial).as_bytes());
        for (index, role) in Role::ALL.into_iter().enumerate() {
            let function = role.function();
            write(&format!("functions/hid.kvnc-{index}/report_desc"), function.report_desc);
            write(&format!("functions/hid.kvnc-{index}/protocol"), format!("{}\n", function.protocol).as_bytes());
            write(&format!("functions/hid.kvnc-{index}/subclass"), format!("{}\n", function.sub_class).as_bytes());
        }
        if with_mass_storage {
            write("functions/mass_storage.kvnc-3/stall", b"0\n");
            for lun in MediaLun::ALL {
                let name = lun.dir_name();
                let cdrom: &[u8] = if lun.is_cdrom() { b"1\n" } else { b"0\n" };
                write(&format!("functions/mass_storage.kvnc-3/{name}/cdrom"), cdrom);
                write(&format!("functions/mass_storage.kvnc-3/{name}/removable"), b"1\n");
                write(&format!("functions/mass_storage.kvnc-3/{name}/file"), b"");
                write(
                    &format!("functions/mass_storage.kvnc-3/{name}/inquiry_string"),
                    format!("{}\n", lun.inquiry_string()).as_bytes(),
                );
            }
        }
        dir
    }

    #[test]
    fn a_current_gadget_is_kept_and_an_old_hid_only_one_differs() {
        let config = GadgetConfig::default();
        let current = fake_gadget("current", true);
        assert_eq!(layout_difference(&current, &config), None);
        assert_eq!(mass_storage_dir(&current), Some(current.join("functions/mass_storage.kvnc-3")));

        let old = fake_gadget("old", false);
        assert_eq!(layout_difference(&old, &config).as_deref(), Some("it has 3 functions, not 4"));
        assert_eq!(mass_storage_dir(&old), None);
        for dir in [current, old] {
            let _ = fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn a_mass_storage_function_unlike_kvncs_differs() {
        let config = GadgetConfig::default();
        let dir = fake_gadget("msd-differs", true);
        let storage = dir.join("functions/mass_storage.kvnc-3");
        // An attached medium is not a difference: media change without re-creating the gadget.
        fs::write(storage.join("lun.0/file"), "/srv/media/debian.iso\n").unwrap();
        fs::write(storage.join("lun.1/ro"), "0\n").unwrap();
        assert_eq!(layout_difference(&dir, &config), None);
        // One drive whose type flips (an older design, or by hand) is.
        fs::write(storage.join("lun.0/cdrom"), "0\n").unwrap();
        assert_eq!(layout_difference(&dir, &config).as_deref(), Some("mass storage lun.0/cdrom is \"0\", not \"1\""));
        fs::write(storage.join("lun.0/cdrom"), "1\n").unwrap();
        fs::write(storage.join("stall"), "1\n").unwrap();
        assert!(layout_difference(&dir, &config).is_some_and(|difference| difference.contains("stall")));
        fs::write(storage.join("stall"), "0\n").unwrap();
        fs::remove_dir_all(storage.join("lun.1")).unwrap();
        assert_eq!(layout_difference(&dir, &config).as_deref(), Some("its mass-storage function has 1 drives, not 2"));
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn the_drives_come_after_the_hid_interfaces() {
        assert_eq!(MASS_STORAGE_INTERFACE, 3);
        assert!(Role::ALL.iter().all(|role| role.interface() < MASS_STORAGE_INTERFACE));
        assert_eq!(MediaLun::Cdrom.dir_name(), "lun.0");
        assert_eq!(MediaLun::Disk.dir_name(), "lun.1");
        for lun in MediaLun::ALL {
            // Vendor 8, product 16, revision 4: the kernel pads or cuts to 28.
            assert_eq!(lun.inquiry_string().len(), 28, "{lun:?}");
        }
    }
}
