//! A process's memory, from `/proc/<pid>/status`, and where the machine's CPU time went,
//! from `/proc/stat` (Linux; `None` elsewhere).

use serde::Serialize;

/// A `kB` field of `/proc/<pid>/status`, e.g. `VmRSS` (resident now) or `VmHWM` (the
/// highest resident size so far), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

/// [`status_kib`] of the text of a status file.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Resident memory now, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// The peak resident memory of the process's life, in KiB.
pub fn hwm_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM")
}

/// The machine's CPU time since boot, summed over its CPUs, in clock ticks: the first
/// line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// User, nice, system, irq and softirq: running something, ours or not.
    pub busy: u64,
    pub idle: u64,
    /// Idle with a disk request outstanding.
    pub iowait: u64,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else while they had
    /// work: on a shared host, the one cause of a stall that nothing inside can see.
    pub steal: u64,
}

/// The machine's CPU times now.
pub fn cpu_times() -> Option<CpuTimes> {
    parse_cpu_times(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// [`cpu_times`] of the text of `/proc/stat`.
pub fn parse_cpu_times(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
    // already counted in user.
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    if f.len() < 4 {
        return None;
    }
    Some(CpuTimes {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3),
        iowait: at(4),
        steal: at(7),
    })
}

/// Shares of all the CPUs' time between two readings, in percent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuShare {
    pub busy_pct: f64,
    pub iowait_pct: f64,
    pub steal_pct: f64,
    pub idle_pct: f64,
}

impl CpuShare {
    /// `None` when no tick passed in between (or the counters went back).
    pub fn between(from: CpuTimes, to: CpuTimes) -> Option<CpuShare> {
        let d = |a: u64, b: u64| b.checked_sub(a);
        let busy = d(from.busy, to.busy)?;
        let idle = d(from.idle, to.idle)?;
        let iowait = d(from.iowait, to.iowait)?;
        let steal = d(from.steal, to.steal)?;
        let total = (busy + idle + iowait + steal) as f64;
        if total == 0.0 {
            return None;
        }
        let pct = |v: u64| (v as f64 * 1000.0 / total).round() / 10.0;
        Some(CpuShare {
            busy_pct: pct(busy),
            iowait_pct: pct(iowait),
            steal_pct: pct(steal),
            idle_pct: pct(idle),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_times_and_their_shares() {
        let before = "cpu  100 0 50 800 20 0 30 0 0 0\ncpu0 50 0 25 400 10 0 15 0 0 0\nintr 1\n";
        let after = "cpu  400 0 150 900 40 0 50 60 7 0\ncpu0 200 0 75 450 20 0 25 30 3 0\n";
        let a = parse_cpu_times(before).unwrap();
        assert_eq!(
            a,
            CpuTimes {
                busy: 180,
                idle: 800,
                iowait: 20,
                steal: 0
            }
        );
        let b = parse_cpu_times(after).unwrap();
        // busy 600-180=420, idle 100, iowait 20, steal 60: 600 ticks in all.
        let share = CpuShare::between(a, b).unwrap();
        assert_eq!(share.busy_pct, 70.0);
        assert_eq!(share.idle_pct, 16.7);
        assert_eq!(share.iowait_pct, 3.3);
        assert_eq!(share.steal_pct, 10.0);
        assert_eq!(CpuShare::between(a, a), None, "no tick passed");
        assert_eq!(CpuShare::between(b, a), None, "counters went back");
        assert_eq!(parse_cpu_times("intr 1\n"), None);
        assert_eq!(parse_cpu_times("cpu  1 2 x 4\n"), None);
    }

    #[test]
    fn reads_this_machine() {
        if cfg!(target_os = "linux") {
            let t = cpu_times().unwrap();
            assert!(t.busy + t.idle > 0);
        }
    }

    #[test]
    fn reads_kib_fields() {
        let status = "Name:\tmailplane\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(123_456));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(98_765));
        assert_eq!(parse_status_kib(status, "Threads"), None);
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn reads_this_process() {
        if cfg!(target_os = "linux") {
            assert!(rss_kib(std::process::id()).unwrap() > 0);
            assert!(hwm_kib(std::process::id()).unwrap() > 0);
        }
    }
}
