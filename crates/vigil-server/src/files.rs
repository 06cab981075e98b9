//! The process's open-file limit, which bounds how many connections one
//! `vigil` process can hold (each is a socket).

/// The soft `RLIMIT_NOFILE` limit: files this process may have open at
/// once. `None` when the system will not say, or sets no limit.
pub(crate) fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the `rlimit` it is given, which lives
    // on this stack frame for the whole call.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_what_the_kernel_reports_for_this_process() {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("Linux /proc");
        let line = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .expect("an open-files line");
        let soft = line.split_whitespace().nth(3).expect("a soft limit");
        assert_eq!(
            open_file_limit().map(|n| n.to_string()).as_deref(),
            Some(soft)
        );
    }
}
