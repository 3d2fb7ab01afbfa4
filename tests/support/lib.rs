//! What kvnc's integration tests (`tests/*.rs`) and benches (`benches/*.rs`) share, as one
//! library: `use kvnc_test_support::{viewers, raw_client, ...};`. Each module's own
//! documentation says what it drives and what it found out about that.
//!
//! Integration tests get `env!("CARGO_BIN_EXE_kvnc")` and the repository's
//! `env!("CARGO_MANIFEST_DIR")` from cargo; this crate, a library in `tests/support/`, gets
//! neither, so it finds both itself: `kvnc_binary()` and `repo_root()`.

use std::fs;
use std::path::{Path, PathBuf};

pub mod bench;
pub mod cpu;
pub mod demo_screen;
pub mod dongle;
pub mod frames;
#[path = "../lab/support.rs"]
pub mod lab;
pub mod novnc;
pub mod qmp;
pub mod raw_client;
pub mod screen;
pub mod test_ca;
pub mod usbredir;
pub mod viewers;

/// The repository's root directory (`fixtures/`, `tests/web`, `tests/.venv`, `target/`).
fn repo_root() -> &'static Path {
    // This crate is tests/support.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("tests/support is two directories below the repository root")
}

/// The kvnc binary of this build, which cargo builds before it runs the package's integration
/// tests and benches: `<target dir>/[<triple>/]<profile>/kvnc`, the directory above the
/// `deps/` directory that holds the running test or bench executable.
fn kvnc_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in a cargo target's deps/ directory", exe.display()));
    let kvnc = profile_dir.join("kvnc");
    assert!(
        kvnc.is_file(),
        "no kvnc binary at {} (beside {}'s deps/ directory): run this through cargo test or cargo bench",
        kvnc.display(),
        exe.display()
    );
    kvnc
}

/// Cargo's target directory: $CARGO_TARGET_DIR if set, else `target/` in the repository.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// Directory for debugging output of failed tests: `<target dir>/test-artifacts`, created on demand.
pub fn artifacts_dir() -> PathBuf {
    let dir = artifacts_dir_path();
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// `<target dir>/test-artifacts`, not created (for code that must not panic, such as a Drop
/// while a test panics).
fn artifacts_dir_path() -> PathBuf {
    target_dir().join("test-artifacts")
}

/// Path `name` inside [`artifacts_dir`].
pub fn artifact_path(name: &str) -> PathBuf {
    artifacts_dir().join(name)
}

/// Finds an executable called `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}
