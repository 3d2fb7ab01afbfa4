//! The .deb's parts agree with each other and with kvnc: cargo-deb's metadata installs files
//! that exist where kvnc and the unit look for them, the unit starts kvnc the way the README
//! says, gives it the directories it uses and enough file descriptors, and systemd accepts it
//! (`systemd-analyze verify`, and `security` with its exposure capped). The built package itself
//! is checked, installed and run by scripts/test.

use std::path::{Path, PathBuf};
use std::process::Command;

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn unit() -> String {
    std::fs::read_to_string(root().join("packaging/debian/kvnc.service")).unwrap()
}

/// The values of `Key=` lines in the unit, in order.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines().filter_map(|line| line.strip_prefix(&prefix)).map(str::to_owned).collect()
}

/// `[package.metadata.deb]` of Cargo.toml.
fn deb_metadata() -> toml::de::DeTable<'static> {
    let text: &'static str = Box::leak(std::fs::read_to_string(root().join("Cargo.toml")).unwrap().into_boxed_str());
    let manifest = toml::de::DeTable::parse(text).unwrap().into_inner();
    let table = |value: &toml::de::DeValue<'static>| value.as_table().cloned().unwrap();
    let package = table(manifest.get("package").unwrap().get_ref());
    let metadata = table(package.get("metadata").unwrap().get_ref());
    table(metadata.get("deb").unwrap().get_ref())
}

/// (source, destination) of every asset.
fn assets() -> Vec<(String, String)> {
    let deb = deb_metadata();
    let assets = deb.get("assets").unwrap().get_ref().as_array().unwrap().clone();
    assets
        .iter()
        .map(|asset| {
            let asset = asset.get_ref().as_array().unwrap();
            let text = |index: usize| asset[index].get_ref().as_str().unwrap().to_owned();
            (text(0), text(1))
        })
        .collect()
}

#[test]
fn the_package_installs_existing_files_where_kvnc_looks_for_them() {
    let assets = assets();
    for (source, _) in &assets {
        // cargo-deb's placeholder for the binary built.
        if source != "target/release/kvnc" {
            assert!(root().join(source).is_file(), "asset {source} does not exist");
        }
    }
    let destination = |source: &str| assets.iter().find(|(from, _)| from == source).map(|(_, to)| format!("/{to}"));
    assert_eq!(destination("target/release/kvnc").as_deref(), Some("/usr/bin/"));
    assert_eq!(destination("packaging/kvnc.toml").as_deref(), Some(kvnc::config::DEFAULT_PATH));
    assert!(destination("packaging/modules-load.conf").is_some_and(|to| to.starts_with("/usr/lib/modules-load.d/")));
    let deb = deb_metadata();
    assert_eq!(deb.get("maintainer-scripts").unwrap().get_ref().as_str(), Some("packaging/debian"));
    assert!(root().join("packaging/debian/kvnc.service").is_file(), "cargo-deb takes the unit from there");
}

#[test]
fn the_unit_runs_serve_with_the_packaged_configuration() {
    let unit = unit();
    assert_eq!(
        unit_values(&unit, "ExecStart"),
        [format!("/usr/bin/kvnc --config {} serve", kvnc::config::DEFAULT_PATH)]
    );
    // kvnc keeps its certificate and key in $STATE_DIRECTORY and its control socket in
    // $RUNTIME_DIRECTORY, where `kvnc ctl` looks as root.
    assert_eq!(unit_values(&unit, "StateDirectory"), ["kvnc"]);
    assert_eq!(unit_values(&unit, "RuntimeDirectory"), ["kvnc"]);
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert!(
        unit_values(&unit, "ReadWritePaths").iter().any(|path| path.trim_start_matches('-') == "/sys/kernel/config")
    );
    // No device allow-list: it would lock kvnc out of /dev/hidgN (see the unit's comment).
    for key in ["DevicePolicy", "DeviceAllow", "PrivateDevices", "ProtectClock"] {
        assert!(unit_values(&unit, key).is_empty(), "{key}= in the unit");
    }
}

#[test]
fn the_file_limit_covers_the_waiting_logins_with_room_for_viewers() {
    let admission = std::fs::read_to_string(root().join("src/server/admission.rs")).unwrap();
    let waiting: usize = admission
        .lines()
        .find_map(|line| line.strip_prefix("pub const MAX_WAITING: usize = "))
        .and_then(|value| value.trim_end_matches(';').parse().ok())
        .expect("MAX_WAITING in src/server/admission.rs");
    let limit: usize = unit_values(&unit(), "LimitNOFILE")[0].parse().unwrap();
    // kvnc's own descriptors (a few dozen) and at least a thousand viewers besides the waiting ones.
    assert!(limit >= waiting + 64 + 1000, "LimitNOFILE={limit} for {waiting} waiting connections");
}

/// The unit with ExecStart pointing at the built binary (systemd-analyze checks that it exists).
fn unit_for_this_build(dir: &Path) -> Option<PathBuf> {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no systemd-analyze on this machine");
        return None;
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("kvnc.service");
    std::fs::write(&path, unit().replace("/usr/bin/kvnc", KVNC)).unwrap();
    Some(path)
}

#[test]
fn systemd_accepts_the_unit_and_rates_its_sandbox_ok() {
    let dir = std::env::temp_dir().join(format!("kvnc-package-test-{}", std::process::id()));
    let Some(path) = unit_for_this_build(&dir) else { return };
    let verify = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stderr).into_owned();
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    // The exposure score (0 to 10, shown as 2.8) in tenths: 30 keeps it at "OK".
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=30"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout).into_owned();
    assert!(security.status.success(), "exposure above 3.0:\n{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
