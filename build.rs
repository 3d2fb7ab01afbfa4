//! Gathers the web console (src/console/) into the binary: our own page files from
//! `src/console/web/`, and the noVNC package pinned in `src/console/package-lock.json`, fetched
//! from the npm registry as the tarball npm would fetch and checked against the lockfile's sha512
//! `integrity` before anything of it is used. So `cargo build` on a machine without Node or npm
//! gives a binary whose page needs nothing beyond the board, and the repository holds no copy of
//! noVNC.
//!
//! Writes `$OUT_DIR/console/` (each file as served, plus a gzip copy where that is smaller) and
//! `$OUT_DIR/console_assets.rs`, the table `src/console/assets.rs` includes.
//!
//! Offline builds: `KVNC_NOVNC_TARBALL=/path/novnc-1.7.0.tgz` (e.g. from `npm pack
//! @novnc/novnc@1.7.0`) is used instead of the download; it must match the lockfile's hash too.
//! A download is kept in `$OUT_DIR`, so rebuilds after page edits do not fetch it again.

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

const LOCKFILE: &str = "src/console/package-lock.json";
const PACKAGE_JSON: &str = "src/console/package.json";
/// Our own page files, served at the top level (`index.html` as `/`).
const PAGE_DIR: &str = "src/console/web";
const NOVNC_LOCK_KEY: &str = "node_modules/@novnc/novnc";
/// What the page needs of the package: the RFB class and everything it imports (`core/`, whose
/// only outside import is pako's zlib under `vendor/pako/lib/`), and the licences, served beside
/// the code they cover.
const NOVNC_PARTS: &[&str] =
    &["core/", "vendor/pako/lib/", "vendor/pako/LICENSE", "LICENSE.txt", "docs/LICENSE.MPL-2.0", "AUTHORS"];
/// The file the page imports; the build fails if the package lacks it.
const NOVNC_ENTRY: &str = "core/rfb.js";
/// Files are gzipped only when that saves at least this share (tiny files gain nothing).
const GZIP_MIN_SAVING: f64 = 0.1;
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
const DOWNLOAD_ATTEMPTS: u32 = 3;
/// The npm tarball is ~150 KiB; anything far larger is not the package.
const MAX_TARBALL: u64 = 16 << 20;

type Result<T> = std::result::Result<T, String>;

fn main() {
    if let Err(error) = run() {
        // Cargo shows a build script's stderr when it fails.
        eprintln!("error: building the web console: {error}");
        std::process::exit(1);
    }
}

/// The noVNC package as the lockfile pins it.
struct Pinned {
    version: String,
    url: String,
    /// SHA-512 of the tarball (the lockfile's `integrity`, decoded).
    sha512: Vec<u8>,
}

/// One file as served.
struct Asset {
    /// URL path, e.g. `/` or `/novnc/1.7.0/core/rfb.js`.
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    /// True for files whose URL changes with their content (noVNC's, under its version).
    immutable: bool,
}

fn run() -> Result<()> {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={LOCKFILE}");
    println!("cargo::rerun-if-changed={PACKAGE_JSON}");
    println!("cargo::rerun-if-changed={PAGE_DIR}");
    println!("cargo::rerun-if-env-changed=KVNC_NOVNC_TARBALL");

    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let pinned = pinned(&manifest_dir.join(LOCKFILE))?;
    let tarball = tarball(&pinned, &out_dir)?;
    let mut assets = novnc_assets(&pinned, &tarball)?;
    assets.extend(page_assets(&manifest_dir.join(PAGE_DIR), &pinned.version)?);
    write_assets(&out_dir, &pinned, &assets)
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set (cargo sets it for build scripts)"))
}

/// Reads version, tarball URL and hash of @novnc/novnc from the lockfile.
fn pinned(lockfile: &Path) -> Result<Pinned> {
    let text = std::fs::read_to_string(lockfile).map_err(|e| format!("reading {}: {e}", lockfile.display()))?;
    let lock: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", lockfile.display()))?;
    let entry = &lock["packages"][NOVNC_LOCK_KEY];
    let field = |name: &str| entry[name].as_str().map(str::to_string);
    let version = field("version").ok_or_else(|| format!("{} pins no {NOVNC_LOCK_KEY} version", lockfile.display()))?;
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+')) {
        return Err(format!("odd noVNC version {version:?} in {}", lockfile.display()));
    }
    let integrity =
        field("integrity").ok_or_else(|| format!("{} has no integrity hash for noVNC", lockfile.display()))?;
    // npm may leave `resolved` out (omit-lockfile-registry-resolved); then it is the registry's
    // usual place. The hash below is what makes either trustworthy.
    let url =
        field("resolved").unwrap_or_else(|| format!("https://registry.npmjs.org/@novnc/novnc/-/novnc-{version}.tgz"));
    // "sha512-BASE64", possibly among other hashes separated by spaces (SRI).
    let sha512 = integrity
        .split_whitespace()
        .find_map(|hash| hash.strip_prefix("sha512-"))
        .ok_or_else(|| format!("noVNC's integrity {integrity:?} has no sha512 hash"))?;
    let sha512 = base64::engine::general_purpose::STANDARD
        .decode(sha512)
        .map_err(|e| format!("noVNC's sha512 integrity is not base64: {e}"))?;
    if sha512.len() != 64 {
        return Err(format!("noVNC's sha512 integrity is {} bytes long, not 64", sha512.len()));
    }
    Ok(Pinned { version, url, sha512 })
}

/// The tarball: the one named by KVNC_NOVNC_TARBALL, else the one kept from an earlier build,
/// else a download. Every source must match the lockfile's hash.
fn tarball(pinned: &Pinned, out_dir: &Path) -> Result<Vec<u8>> {
    let matches = |bytes: &[u8]| Sha512::digest(bytes).as_slice() == pinned.sha512.as_slice();
    if let Some(path) = std::env::var_os("KVNC_NOVNC_TARBALL") {
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path).map_err(|e| format!("reading KVNC_NOVNC_TARBALL {}: {e}", path.display()))?;
        if !matches(&bytes) {
            return Err(format!(
                "KVNC_NOVNC_TARBALL {} is not @novnc/novnc {} as {LOCKFILE} pins it (its sha512 differs)",
                path.display(),
                pinned.version
            ));
        }
        return Ok(bytes);
    }
    let kept = out_dir.join(format!("novnc-{}.tgz", pinned.version));
    if let Ok(bytes) = std::fs::read(&kept)
        && matches(&bytes)
    {
        return Ok(bytes);
    }
    if std::env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true") {
        return Err(format!(
            "cargo runs offline, and noVNC {} must be fetched from {}: set KVNC_NOVNC_TARBALL to a copy of that file",
            pinned.version, pinned.url
        ));
    }
    let bytes = download(&pinned.url)?;
    if !matches(&bytes) {
        return Err(format!(
            "{} does not match the sha512 integrity in {LOCKFILE}: refusing to build it in",
            pinned.url
        ));
    }
    // Only a cache: a build that cannot keep it still has the bytes.
    let _ = std::fs::write(&kept, &bytes);
    Ok(bytes)
}

/// Fetches `url` (HTTPS proxies from the usual environment variables are honoured by ureq).
fn download(url: &str) -> Result<Vec<u8>> {
    if !url.starts_with("https://") {
        return Err(format!("noVNC's tarball URL {url:?} is not https://"));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(root_certs()).build())
        .timeout_global(Some(DOWNLOAD_TIMEOUT))
        .user_agent("kvnc-build (build.rs)")
        .build()
        .into();
    let mut last_error = String::new();
    for attempt in 1..=DOWNLOAD_ATTEMPTS {
        match agent.get(url).call() {
            Ok(mut response) => match response.body_mut().with_config().limit(MAX_TARBALL).read_to_vec() {
                Ok(bytes) => return Ok(bytes),
                Err(e) => last_error = format!("reading {url}: {e}"),
            },
            Err(e) => last_error = format!("fetching {url}: {e}"),
        }
        if attempt < DOWNLOAD_ATTEMPTS {
            std::thread::sleep(Duration::from_secs(u64::from(attempt) * 2));
        }
    }
    Err(format!(
        "{last_error} (tried {DOWNLOAD_ATTEMPTS} times; offline, set KVNC_NOVNC_TARBALL to a copy of that file)"
    ))
}

/// The machine's trusted certificate authorities, as curl and npm use them (`SSL_CERT_FILE`, else
/// Debian's bundle): a network whose HTTPS proxy has its own authority has it there. Mozilla's
/// list, built into ureq, where the machine has none.
fn root_certs() -> ureq::tls::RootCerts {
    let file = std::env::var_os("SSL_CERT_FILE")
        .map_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"), PathBuf::from);
    let certs: Vec<_> = std::fs::read(file)
        .map(|pem| {
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if certs.is_empty() { ureq::tls::RootCerts::WebPki } else { ureq::tls::RootCerts::new_with_certs(&certs) }
}

/// The package's files the page needs, under `/novnc/VERSION/`.
fn novnc_assets(pinned: &Pinned, tarball: &[u8]) -> Result<Vec<Asset>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    let mut assets = Vec::new();
    let entries = archive.entries().map_err(|e| format!("reading the noVNC tarball: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("reading the noVNC tarball: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| format!("a noVNC tarball entry's name: {e}"))?.into_owned();
        // npm tarballs keep everything under `package/`.
        let Ok(inner) = path.strip_prefix("package") else { continue };
        // Only plain relative names become URL paths.
        if !inner.components().all(|c| matches!(c, Component::Normal(_))) {
            continue;
        }
        let Some(name) = inner.to_str() else { continue };
        if !NOVNC_PARTS.iter().any(|part| name == *part || (part.ends_with('/') && name.starts_with(part))) {
            continue;
        }
        let content_type = content_type(name).ok_or_else(|| format!("no content type known for noVNC's {name}"))?;
        let mut body = Vec::new();
        entry.read_to_end(&mut body).map_err(|e| format!("reading noVNC's {name}: {e}"))?;
        assets.push(Asset { path: format!("/novnc/{}/{name}", pinned.version), content_type, body, immutable: true });
    }
    let entry = format!("/novnc/{}/{NOVNC_ENTRY}", pinned.version);
    if !assets.iter().any(|asset| asset.path == entry) {
        return Err(format!("the noVNC {} package has no {NOVNC_ENTRY}", pinned.version));
    }
    Ok(assets)
}

/// Our own files (`index.html` served as `/`), plus `novnc.js`, which hands the page noVNC's RFB
/// class from its versioned path: the page's own files never name the version.
fn page_assets(dir: &Path, novnc_version: &str) -> Result<Vec<Asset>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("reading {}: {e}", dir.display()))?;
        if entry.file_type().map_err(|e| format!("{}: {e}", entry.path().display()))?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    if !names.iter().any(|name| name == "index.html") {
        return Err(format!("{} has no index.html", dir.display()));
    }
    let mut assets = Vec::new();
    for name in names {
        // Editor backups and the like are not served.
        let Some(content_type) = content_type(&name) else { continue };
        if name.starts_with('.') || name == "novnc.js" {
            continue;
        }
        let body = std::fs::read(dir.join(&name)).map_err(|e| format!("reading {}/{name}: {e}", dir.display()))?;
        let path = if name == "index.html" { "/".to_string() } else { format!("/{name}") };
        assets.push(Asset { path, content_type, body, immutable: false });
    }
    let shim = format!(
        "// Made by kvnc's build.rs: noVNC {novnc_version}, as pinned in src/console/package-lock.json.\n\
         export {{ default }} from './novnc/{novnc_version}/{NOVNC_ENTRY}';\n"
    );
    assets.push(Asset {
        path: "/novnc.js".into(),
        content_type: "text/javascript; charset=utf-8",
        body: shim.into_bytes(),
        immutable: false,
    });
    Ok(assets)
}

fn content_type(name: &str) -> Option<&'static str> {
    let file = name.rsplit('/').next().unwrap_or(name);
    if file.starts_with("LICENSE") || file == "AUTHORS" {
        return Some("text/plain; charset=utf-8");
    }
    let extension = file.rsplit_once('.').map(|(_, extension)| extension);
    Some(match extension {
        Some("html") => "text/html; charset=utf-8",
        // Module scripts must come with a JavaScript type; text/javascript is the HTML spec's.
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// Writes every body (and a gzip copy where it pays) to `$OUT_DIR/console/` and the table.
fn write_assets(out_dir: &Path, pinned: &Pinned, assets: &[Asset]) -> Result<()> {
    let dir = out_dir.join("console");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut table = String::new();
    let _ = writeln!(table, "// Made by build.rs from {LOCKFILE} and {PAGE_DIR}/.");
    let _ = writeln!(table, "/// The noVNC version the page uses, as pinned in the lockfile.");
    let _ = writeln!(table, "pub const NOVNC_VERSION: &str = {:?};", pinned.version);
    let _ = writeln!(table, "pub static ASSETS: &[Asset] = &[");
    let mut total = 0;
    for (index, asset) in assets.iter().enumerate() {
        let body_path = dir.join(format!("{index}.bin"));
        std::fs::write(&body_path, &asset.body).map_err(|e| format!("writing {}: {e}", body_path.display()))?;
        total += asset.body.len();
        let gzip = gzip(&asset.body)?;
        let gzip_path = if (gzip.len() as f64) < asset.body.len() as f64 * (1.0 - GZIP_MIN_SAVING) {
            let path = dir.join(format!("{index}.gz"));
            std::fs::write(&path, &gzip).map_err(|e| format!("writing {}: {e}", path.display()))?;
            Some(path)
        } else {
            None
        };
        // A strong validator of the content (the gzip copy gets its own, as HTTP asks).
        let hash = Sha256::digest(&asset.body);
        let etag: String = hash[..12].iter().map(|byte| format!("{byte:02x}")).collect();
        let include = |path: &Path| format!("include_bytes!({:?})", path.display().to_string());
        let _ = writeln!(
            table,
            "    Asset {{ path: {:?}, content_type: {:?}, body: {}, gzip: {}, etag: {:?}, immutable: {} }},",
            asset.path,
            asset.content_type,
            include(&body_path),
            gzip_path.as_deref().map_or("None".to_string(), |path| format!("Some({})", include(path))),
            etag,
            asset.immutable
        );
    }
    let _ = writeln!(table, "];");
    let table_path = out_dir.join("console_assets.rs");
    std::fs::write(&table_path, table).map_err(|e| format!("writing {}: {e}", table_path.display()))?;
    // Shown with `cargo build -vv`: what went into the binary.
    println!("kvnc console: noVNC {} ({} files, {} bytes in all)", pinned.version, assets.len(), total);
    Ok(())
}

fn gzip(body: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).and_then(|()| encoder.finish()).map_err(|e| format!("gzip: {e}"))
}
