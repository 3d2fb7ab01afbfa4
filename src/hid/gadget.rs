//! The USB gadget kvnc presents on the board's OTG port: one composite device with the HID
//! functions of [`super::descriptor`] (keyboard, absolute pointer, boot mouse), set up in configfs
//! through the `usb-gadget` crate.
//!
//! The gadget outlives kvnc on purpose: removing it unplugs the keyboard from the target, and
//! firmware may not find it again until the next boot. So `up` is idempotent (an existing gadget
//! with the same layout is kept, and bound if it is not), `serve` never removes it, and only
//! `kvnc gadget down` does.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use usb_gadget::function::hid::Hid;
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
    Ok(Some(GadgetStatus { name: name.to_string(), udc, udc_state, devices }))
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
/// IDs, the strings, or the HID functions (matched by their report descriptors, since configfs
/// names them by position).
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
    if functions != Role::ALL.len() {
        return Some(format!("it has {functions} functions, not {}", Role::ALL.len()));
    }
    let missing = Role::ALL.into_iter().find(|role| function_dir(dir, *role).is_none())?;
    Some(format!("it has no {} function like kvnc's", missing.name()))
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
