//! The pieces of `mailplane bench`, kept apart from the binary so that each can be read
//! (and tested) alone:
//!
//! - [`loadgen`]: an open-loop HTTP load generator. Request `i` of a step at rate `R` is
//!   due at `t0 + i/R` and is sent then, whether or not earlier requests have been
//!   answered; its latency is measured from that intended time, so time spent queued
//!   (in the client or the server) counts (no coordinated omission).
//! - [`workload`]: the requests: `PUT` of the seed modes on random accounts, `GET` of one
//!   account.
//! - [`sqlite_ceiling`]: a bare SQLite update loop with the store's durability settings.
//! - [`echo`]: an HTTP server that answers every request with a fixed JSON body.
//! - [`pg`]: scratch databases and pgbench.
//! - [`report`]: the terminal table and the JSON file.
//! - [`procfs`]: a process's resident memory.

pub mod connections;
pub mod echo;
pub mod loadgen;
pub mod pg;
pub mod procfs;
pub mod report;
pub mod sqlite_ceiling;
pub mod workload;

/// Raises this process's soft limit on open files to its hard limit (children inherit it):
/// an overloaded step may hold thousands of connections open at both ends.
pub fn raise_open_files_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Asks the process `pid` to stop (SIGTERM).
pub fn terminate(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill only sends a signal.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
