//! Builds the lab guest from Debian packages only, and caches it: the kernel of the current
//! `linux-image-*-amd64` behind `linux-image-amd64`, and an initramfs of `busybox-static`,
//! tests/lab/init.sh and the kernel modules of tests/lab/modules.txt with their dependencies
//! (resolved with the kernel's own modules.dep, made by `depmod`).
//!
//! Cache layout (`<target>/lab/`, or $KVNC_LAB_CACHE):
//! * `debs/*.deb`: the downloaded packages (`apt-get download`), kept so that a change of the module
//!   list or of init.sh rebuilds the initramfs without downloading again;
//! * `<kernel package>_<version>/`: `vmlinux` (the kernel, decompressed: QEMU boots it directly through
//!   its PVH entry, which saves the ~6 s the guest takes to decompress an xz bzImage under TCG; `vmlinuz`
//!   when `xz` is missing), `initramfs.cpio` (uncompressed, for the same reason) and `initramfs.stamp`
//!   (what it was built from: rebuilt when that changes).
//!
//! Host tools: apt-get/apt-cache (to resolve and download), dpkg-deb, depmod (kmod), xz (xz-utils).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The guest's init and module list, compiled in so that the cache stamp follows their content.
const INIT_SCRIPT: &str = include_str!("init.sh");
const MODULE_LIST: &str = include_str!("modules.txt");
/// Bump when the initramfs layout made here changes, to rebuild every cached initramfs.
const LAYOUT_VERSION: u32 = 1;

/// The meta-package whose dependency names the current kernel package.
const KERNEL_META_PACKAGE: &str = "linux-image-amd64";
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// A bootable guest: kernel image and initramfs, ready for `qemu -kernel/-initrd`.
#[derive(Debug, Clone)]
pub struct GuestImage {
    pub(crate) kernel: PathBuf,
    pub(crate) initramfs: PathBuf,
    /// The kernel release, e.g. "6.1.0-57-amd64".
    pub kernel_release: String,
}

/// A Debian package at an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Package {
    name: String,
    version: String,
}

impl Package {
    /// The name `apt-get download` gives the file ("1:1.35" becomes "1%3a1.35").
    fn deb_file_name(&self) -> String {
        format!("{}_{}_amd64.deb", self.name, self.version.replace(':', "%3a"))
    }

    fn cache_dir_name(&self) -> String {
        format!("{}_{}", self.name, self.version.replace(':', "_"))
    }
}

/// One line of modules.txt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleEntry {
    pub name: String,
    params: Vec<String>,
    /// `load` (at boot) rather than `ship` (packed only).
    pub load_at_boot: bool,
}

/// Parses modules.txt (see its header); panics on a malformed line.
pub fn module_list() -> Vec<ModuleEntry> {
    parse_module_list(MODULE_LIST).unwrap_or_else(|e| panic!("tests/lab/modules.txt: {e}"))
}

fn parse_module_list(text: &str) -> Result<Vec<ModuleEntry>, String> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let load_at_boot = match words.next() {
            Some("load") => true,
            Some("ship") => false,
            other => return Err(format!("line {}: expected `load` or `ship`, got {other:?}", index + 1)),
        };
        let name = words.next().ok_or_else(|| format!("line {}: no module name", index + 1))?;
        entries.push(ModuleEntry {
            name: normalize_module_name(name),
            params: words.map(str::to_string).collect(),
            load_at_boot,
        });
    }
    Ok(entries)
}

/// Module names are the same with `-` or `_` ("usb-storage" is "usb_storage").
fn normalize_module_name(name: &str) -> String {
    name.replace('-', "_")
}

/// Where the lab caches downloads and images: $KVNC_LAB_CACHE, else `<target dir>/lab`.
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KVNC_LAB_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::target_dir().join("lab")
}

/// Returns the cached guest image for the current Debian kernel, building it first if needed
/// (once per test process). Panics with the failing step's output when it cannot be built.
pub(crate) fn guest_image() -> GuestImage {
    static IMAGE: OnceLock<GuestImage> = OnceLock::new();
    IMAGE.get_or_init(load_or_build).clone()
}

fn load_or_build() -> GuestImage {
    let cache = cache_dir();
    let debs = cache.join("debs");
    fs::create_dir_all(&debs).unwrap_or_else(|e| panic!("creating {}: {e}", debs.display()));

    let kernel_package = match resolve_kernel_package() {
        Ok(package) => package,
        Err(e) => {
            // Offline, or apt lists missing: a kernel cached earlier still makes a working lab.
            let cached = newest_cached_deb(&debs, "linux-image-")
                .unwrap_or_else(|| panic!("cannot resolve the kernel package ({e}); run `apt-get update` first"));
            eprintln!("lab: cannot resolve the kernel package ({e}); using the cached {}", cached.deb_file_name());
            cached
        }
    };
    let busybox_package = resolve_candidate(BUSYBOX_PACKAGE)
        .or_else(|e| newest_cached_deb(&debs, BUSYBOX_PACKAGE).filter(|p| p.name == BUSYBOX_PACKAGE).ok_or(e))
        .unwrap_or_else(|e| panic!("cannot resolve {BUSYBOX_PACKAGE}: {e}"));

    let image_dir = cache.join(kernel_package.cache_dir_name());
    let stamp_path = image_dir.join("initramfs.stamp");
    let stamp = format!(
        "layout {LAYOUT_VERSION}\nkernel {}\nbusybox {}\n--- modules.txt\n{MODULE_LIST}\n--- init.sh\n{INIT_SCRIPT}",
        kernel_package.deb_file_name(),
        busybox_package.deb_file_name()
    );
    let kernel_release = kernel_release_of(&kernel_package);
    let kernel_path = ["vmlinux", "vmlinuz"].iter().map(|name| image_dir.join(name)).find(|p| p.is_file());
    let initramfs = image_dir.join("initramfs.cpio");
    if let Some(kernel) = &kernel_path
        && initramfs.is_file()
        && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp)
    {
        return GuestImage { kernel: kernel.clone(), initramfs, kernel_release };
    }

    eprintln!("lab: building the guest image in {} (kernel {kernel_release})", image_dir.display());
    let kernel_deb = download(&kernel_package, &debs);
    let busybox_deb = download(&busybox_package, &debs);
    prune_other_debs(&debs, &[&kernel_deb, &busybox_deb]);

    let work = scratch_dir(&cache, "build");
    let result = build_into(&work, &image_dir, &kernel_deb, &busybox_deb, &kernel_release, &stamp);
    let _ = fs::remove_dir_all(&work);
    let kernel = result.unwrap_or_else(|e| panic!("building the lab guest: {e}"));
    GuestImage { kernel, initramfs, kernel_release }
}

/// Unpacks the packages into `work` and writes kernel, initramfs and stamp into `image_dir`
/// (each through a temporary file and a rename, so a concurrent or interrupted build never leaves
/// a half-written file behind). Returns the kernel's path.
fn build_into(
    work: &Path,
    image_dir: &Path,
    kernel_deb: &Path,
    busybox_deb: &Path,
    release: &str,
    stamp: &str,
) -> Result<PathBuf, String> {
    let kernel_root = work.join("kernel");
    let busybox_root = work.join("busybox");
    run(Command::new("dpkg-deb").arg("-x").arg(kernel_deb).arg(&kernel_root))?;
    run(Command::new("dpkg-deb").arg("-x").arg(busybox_deb).arg(&busybox_root))?;
    // The package carries no modules.dep: its postinst makes one, so make it here.
    run(Command::new("depmod").arg("-b").arg(&kernel_root).arg(release))?;

    let modules_dir = kernel_root.join("lib/modules").join(release);
    let modules_dep = fs::read_to_string(modules_dir.join("modules.dep")).map_err(|e| format!("modules.dep: {e}"))?;
    let builtin = fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
    let entries = module_list();
    let packed = resolve_modules(&modules_dep, &builtin, &entries)?;

    fs::create_dir_all(image_dir).map_err(|e| format!("creating {}: {e}", image_dir.display()))?;
    let vmlinuz = kernel_root.join("boot").join(format!("vmlinuz-{release}"));
    let kernel = match decompress_kernel(&vmlinuz, &work.join("vmlinux")) {
        Ok(vmlinux) => install_file(&vmlinux, &image_dir.join("vmlinux"))?,
        Err(e) => {
            eprintln!("lab: booting the compressed kernel (slower): {e}");
            let _ = fs::remove_file(image_dir.join("vmlinux"));
            install_file(&vmlinuz, &image_dir.join("vmlinuz"))?
        }
    };

    let mut archive = Cpio::default();
    for dir in ["bin", "dev", "etc", "etc/lab", "etc/modprobe.d", "host", "proc", "run", "sys", "tmp"] {
        archive.dir(dir);
    }
    archive.char_device("dev/console", 5, 1);
    archive.file("init", INIT_SCRIPT.as_bytes(), 0o755);
    archive.file("etc/lab/modules.txt", MODULE_LIST.as_bytes(), 0o644);
    archive.file("etc/modprobe.d/lab.conf", modprobe_options(&entries).as_bytes(), 0o644);
    let busybox = fs::read(busybox_root.join("bin/busybox")).map_err(|e| format!("busybox: {e}"))?;
    archive.file("bin/busybox", &busybox, 0o755);
    let module_base = format!("lib/modules/{release}");
    for module in &packed {
        let data = fs::read(modules_dir.join(module)).map_err(|e| format!("{module}: {e}"))?;
        archive.file(&format!("{module_base}/{module}"), &data, 0o644);
    }
    // The packed modules' own lines of modules.dep: busybox modprobe loads dependencies from it.
    archive.file(&format!("{module_base}/modules.dep"), filter_modules_dep(&modules_dep, &packed).as_bytes(), 0o644);
    archive.file(&format!("{module_base}/modules.builtin"), builtin.as_bytes(), 0o644);

    let cpio = work.join("initramfs.cpio");
    fs::write(&cpio, archive.finish()).map_err(|e| format!("writing {}: {e}", cpio.display()))?;
    install_file(&cpio, &image_dir.join("initramfs.cpio"))?;
    let stamp_tmp = work.join("initramfs.stamp");
    fs::write(&stamp_tmp, stamp).map_err(|e| format!("writing the stamp: {e}"))?;
    install_file(&stamp_tmp, &image_dir.join("initramfs.stamp"))?;
    eprintln!("lab: guest image ready: {} modules packed", packed.len());
    Ok(kernel)
}

/// The paths (relative to the modules directory) of every module in `entries` and of everything
/// they need, dependencies first. Modules built into the kernel are skipped.
fn resolve_modules(modules_dep: &str, builtin: &str, entries: &[ModuleEntry]) -> Result<Vec<String>, String> {
    let dependencies: BTreeMap<&str, Vec<&str>> = modules_dep
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(module, deps)| (module.trim(), deps.split_whitespace().collect()))
        .collect();
    let by_name: BTreeMap<String, &str> = dependencies.keys().map(|path| (module_name_of_path(path), *path)).collect();
    let builtin: BTreeSet<String> = builtin.lines().map(module_name_of_path).collect();

    let mut ordered = Vec::new();
    let mut seen = BTreeSet::new();
    fn visit<'a>(
        path: &'a str,
        dependencies: &BTreeMap<&'a str, Vec<&'a str>>,
        seen: &mut BTreeSet<&'a str>,
        ordered: &mut Vec<String>,
    ) {
        if !seen.insert(path) {
            return;
        }
        for dependency in dependencies.get(path).into_iter().flatten() {
            visit(dependency, dependencies, seen, ordered);
        }
        ordered.push(path.to_string());
    }
    for entry in entries {
        match by_name.get(&entry.name) {
            Some(path) => visit(path, &dependencies, &mut seen, &mut ordered),
            None if builtin.contains(&entry.name) => {}
            None => return Err(format!("module {} (tests/lab/modules.txt) is not in this kernel", entry.name)),
        }
    }
    Ok(ordered)
}

/// "kernel/drivers/usb/storage/usb-storage.ko" is module "usb_storage".
fn module_name_of_path(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    normalize_module_name(file.split(".ko").next().unwrap_or(file))
}

fn filter_modules_dep(modules_dep: &str, packed: &[String]) -> String {
    let packed: BTreeSet<&str> = packed.iter().map(String::as_str).collect();
    modules_dep
        .lines()
        .filter(|line| line.split_once(':').is_some_and(|(module, _)| packed.contains(module.trim())))
        .fold(String::new(), |mut out, line| {
            let _ = writeln!(out, "{line}");
            out
        })
}

/// `options NAME PARAMS` for every module with parameters.
fn modprobe_options(entries: &[ModuleEntry]) -> String {
    entries.iter().filter(|e| !e.params.is_empty()).fold(String::new(), |mut out, e| {
        let _ = writeln!(out, "options {} {}", e.name, e.params.join(" "));
        out
    })
}

/// "linux-image-6.1.0-57-amd64" runs release "6.1.0-57-amd64".
fn kernel_release_of(package: &Package) -> String {
    package.name.strip_prefix("linux-image-").unwrap_or(&package.name).to_string()
}

/// The package `linux-image-amd64` depends on, at its candidate version.
fn resolve_kernel_package() -> Result<Package, String> {
    let out = run(Command::new("apt-cache").args(["depends", KERNEL_META_PACKAGE]))?;
    let name = out
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|name| name.starts_with("linux-image-") && name.ends_with("-amd64") && !name.starts_with('<'))
        .ok_or_else(|| format!("`apt-cache depends {KERNEL_META_PACKAGE}` names no kernel package:\n{out}"))?;
    resolve_candidate(name)
}

/// `name` at the version apt would install.
fn resolve_candidate(name: &str) -> Result<Package, String> {
    let out = run(Command::new("apt-cache").args(["policy", name]))?;
    let version = out
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "(none)")
        .ok_or_else(|| format!("apt knows no candidate for {name}"))?;
    Ok(Package { name: name.to_string(), version: version.to_string() })
}

/// Downloads `package` into `debs` unless it is there already; returns the file.
fn download(package: &Package, debs: &Path) -> PathBuf {
    let target = debs.join(package.deb_file_name());
    if target.is_file() {
        return target;
    }
    eprintln!("lab: downloading {} {}", package.name, package.version);
    let scratch = scratch_dir(debs, "download");
    let spec = format!("{}={}", package.name, package.version);
    // Downloading as root into a directory `_apt` cannot enter only warns: say it is meant.
    let result = run(Command::new("apt-get")
        .args(["-q", "-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=3", "download", &spec])
        .current_dir(&scratch));
    let downloaded = scratch.join(package.deb_file_name());
    let moved = result.and_then(|_| install_file(&downloaded, &target));
    let _ = fs::remove_dir_all(&scratch);
    moved.unwrap_or_else(|e| panic!("downloading {spec}: {e}"));
    target
}

/// Removes cached packages other than `keep`, so that kernel updates do not pile up.
fn prune_other_debs(debs: &Path, keep: &[&Path]) {
    let Ok(entries) = fs::read_dir(debs) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "deb") && !keep.contains(&path.as_path()) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The newest (by file time) cached `<name>_<version>_amd64.deb` whose name starts with `prefix`.
fn newest_cached_deb(debs: &Path, prefix: &str) -> Option<Package> {
    fs::read_dir(debs)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            let (name, rest) = file.strip_suffix("_amd64.deb")?.split_once('_')?;
            let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
            let package = Package { name: name.to_string(), version: rest.replace("%3a", ":") };
            name.starts_with(prefix).then_some((modified, package))
        })
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, package)| package)
}

/// Decompresses the xz payload of a bzImage into an ELF `vmlinux` (QEMU boots it through PVH).
fn decompress_kernel(vmlinuz: &Path, out: &Path) -> Result<PathBuf, String> {
    const XZ_MAGIC: &[u8] = b"\xfd7zXZ\x00";
    let image = fs::read(vmlinuz).map_err(|e| format!("reading {}: {e}", vmlinuz.display()))?;
    let start = image.windows(XZ_MAGIC.len()).position(|w| w == XZ_MAGIC).ok_or("no xz payload in the kernel image")?;
    let payload = out.with_extension("xz");
    fs::write(&payload, &image[start..]).map_err(|e| format!("writing {}: {e}", payload.display()))?;
    let output = Command::new("xz")
        .args(["-d", "-c", "--single-stream"])
        .arg(&payload)
        .output()
        .map_err(|e| format!("running xz (Debian package xz-utils): {e}"))?;
    let _ = fs::remove_file(&payload);
    if !output.status.success() || !output.stdout.starts_with(b"\x7fELF") {
        return Err(format!("xz failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr)));
    }
    fs::write(out, &output.stdout).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(out.to_path_buf())
}

/// Copies `from` to a temporary name beside `to` and renames it into place.
fn install_file(from: &Path, to: &Path) -> Result<PathBuf, String> {
    let temporary = to.with_extension(format!("tmp-{}", std::process::id()));
    fs::copy(from, &temporary).map_err(|e| format!("copying {} to {}: {e}", from.display(), temporary.display()))?;
    fs::rename(&temporary, to).map_err(|e| format!("renaming to {}: {e}", to.display()))?;
    Ok(to.to_path_buf())
}

/// A fresh directory `<parent>/.<what>-<pid>-<n>`.
fn scratch_dir(parent: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = parent.join(format!(".{what}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Runs `command` and returns its stdout; Err with its output unless it exits 0.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command.output().map_err(|e| format!("running {command:?}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// An initramfs in the kernel's "newc" cpio format (Documentation/driver-api/early-userspace/
/// buffer-format.rst), uncompressed.
#[derive(Default)]
struct Cpio {
    data: Vec<u8>,
    directories: BTreeSet<String>,
    next_inode: u32,
}

impl Cpio {
    const DIRECTORY: u32 = 0o040000;
    const REGULAR: u32 = 0o100000;
    const CHAR_DEVICE: u32 = 0o020000;

    /// Adds directory `path` and its missing parents (the kernel does not create parents).
    fn dir(&mut self, path: &str) {
        if path.is_empty() || self.directories.contains(path) {
            return;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.directories.insert(path.to_string());
        self.entry(path, Self::DIRECTORY | 0o755, (0, 0), &[]);
    }

    fn file(&mut self, path: &str, data: &[u8], permissions: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, Self::REGULAR | permissions, (0, 0), data);
    }

    fn char_device(&mut self, path: &str, major: u32, minor: u32) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, Self::CHAR_DEVICE | 0o600, (major, minor), &[]);
    }

    fn entry(&mut self, path: &str, mode: u32, (rdev_major, rdev_minor): (u32, u32), data: &[u8]) {
        self.next_inode += 1;
        let links = if mode & Self::DIRECTORY == Self::DIRECTORY { 2 } else { 1 };
        // Fields: magic, inode, mode, uid, gid, links, mtime, size, dev major/minor, rdev major/minor,
        // name size (with its NUL), check.
        let header = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{links:08x}{:08x}{:08x}{:08x}{:08x}{rdev_major:08x}{rdev_minor:08x}{:08x}{:08x}",
            self.next_inode,
            0,
            0,
            0,
            data.len(),
            0,
            0,
            path.len() + 1,
            0,
        );
        self.data.extend_from_slice(header.as_bytes());
        self.data.extend_from_slice(path.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.data
    }
}
