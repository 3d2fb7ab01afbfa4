//! A process's CPU time, for the benches that report what an update costs.
//!
//! Summing the live threads' `/proc/PID/task/*/schedstat` misses threads that exited in
//! between, such as the scoped threads an encoder spreads one update's bands over. So a
//! measured process is moved into a cgroup of its own ([`account`]), whose CPU usage counts
//! every thread it ever ran (cgroup v2 `cpu.stat`, or v1 `cpuacct.usage`); where no cgroup can
//! be made (not root, no cgroup file system), [`cpu_time`] falls back to the live threads and
//! says so once. The tests' `KvncServer::cpu_time` reads the live threads only, the same way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

/// The cgroup made for each accounted process.
static GROUPS: Mutex<Option<HashMap<u32, PathBuf>>> = Mutex::new(None);

/// Moves `pid` (all its threads) into a new cgroup, so [`cpu_time`] counts threads that have
/// exited too. Returns false when that is not possible here.
pub fn account(pid: u32) -> bool {
    let Some(root) = cgroup_root() else { return false };
    let group = root.join(format!("kvnc-bench-{}-{pid}", std::process::id()));
    let moved =
        std::fs::create_dir_all(&group).is_ok() && std::fs::write(group.join("cgroup.procs"), pid.to_string()).is_ok();
    if !moved {
        let _ = std::fs::remove_dir(&group);
        return false;
    }
    GROUPS.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_default().insert(pid, group);
    true
}

/// Removes `pid`'s cgroup: moves the process back to the root group if it still runs.
pub fn release(pid: u32) {
    let group = GROUPS.lock().unwrap_or_else(PoisonError::into_inner).as_mut().and_then(|groups| groups.remove(&pid));
    if let Some(group) = group {
        if let Some(root) = group.parent() {
            let _ = std::fs::write(root.join("cgroup.procs"), pid.to_string());
        }
        let _ = std::fs::remove_dir(&group);
    }
}

/// CPU time a process has used so far, all threads: from its cgroup when [`account`]ed, else
/// the sum of /proc/PID/task/*/schedstat (nanoseconds; threads that exited are not counted).
pub fn cpu_time(pid: u32) -> Duration {
    let group =
        GROUPS.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|groups| groups.get(&pid).cloned());
    if let Some(usage) = group.as_deref().and_then(cgroup_usage) {
        return usage;
    }
    static WARNING: Once = Once::new();
    WARNING.call_once(|| {
        eprintln!("CPU times: no cgroup for the measured process (run as root); threads that exit are not counted")
    });
    live_threads_cpu_time(pid).unwrap_or_default()
}

/// CPU time the live threads of a process have used so far: the sum of their
/// /proc/PID/task/*/schedstat (nanoseconds). Err if the process's threads cannot be listed.
pub(crate) fn live_threads_cpu_time(pid: u32) -> std::io::Result<Duration> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(Duration::from_nanos(ns))
}

/// Where new cgroups go: the cgroup v2 mount, else v1's cpuacct hierarchy.
fn cgroup_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    let mut v1 = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [_, dir, "cgroup2", ..] => return Some(PathBuf::from(dir)),
            [_, dir, "cgroup", options, ..] if options.split(',').any(|o| o == "cpuacct") => {
                v1 = Some(PathBuf::from(dir));
            }
            _ => {}
        }
    }
    v1
}

/// A cgroup's CPU usage so far: v2 `cpu.stat` usage_usec, or v1 `cpuacct.usage` (ns).
fn cgroup_usage(group: &Path) -> Option<Duration> {
    if let Ok(stat) = std::fs::read_to_string(group.join("cpu.stat")) {
        let usec = stat.lines().find_map(|line| line.strip_prefix("usage_usec ")?.trim().parse().ok())?;
        return Some(Duration::from_micros(usec));
    }
    let ns = std::fs::read_to_string(group.join("cpuacct.usage")).ok()?.trim().parse().ok()?;
    Some(Duration::from_nanos(ns))
}
