//! The process's open-file limit, which bounds how many connections one
//! `vigil` process can hold (each is a socket). At start the soft limit is
//! raised to the hard one, as nginx (`worker_rlimit_nofile`) and Go's
//! runtime do: the soft limit is a default for programs that do not expect
//! many files (often 1,024), the hard one is what the operator allows.

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

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (or, when the hard
/// limit is unlimited, to the kernel's `fs.nr_open`, the most a process can
/// have). Returns the soft limit before and after when it changed.
pub(crate) fn raise_open_file_limit() -> std::io::Result<Option<(u64, u64)>> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` only writes the `rlimit` it is given, which lives
    // on this stack frame for the whole call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        match kernel_file_ceiling() {
            Some(ceiling) => ceiling,
            None => return Ok(None),
        }
    } else {
        limit.rlim_max
    };
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur >= target {
        return Ok(None);
    }
    let before = limit.rlim_cur;
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `setrlimit` only reads the `rlimit` it is given, which lives
    // on this stack frame for the whole call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some((before, target)))
}

/// `fs.nr_open`: no process may hold more files than this.
fn kernel_file_ceiling() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
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
