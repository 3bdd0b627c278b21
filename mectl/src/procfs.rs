//! What Linux's `/proc/<pid>/stat` says of a process: whether it is the
//! process we started (its start time) and the CPU it has used. The
//! launcher uses it to never signal a reused PID, the load generator to
//! account CPU per process.

use std::time::Duration;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// One letter: R running, S sleeping, T stopped, Z zombie, ...
    pub state: char,
    /// User and system CPU, in clock ticks.
    pub user_ticks: u64,
    pub system_ticks: u64,
    /// When the process started, in clock ticks after boot: with the PID,
    /// it names one process for the life of the machine.
    pub start_ticks: u64,
}

impl ProcStat {
    /// `None` when no such process exists (or it cannot be read).
    pub fn of(pid: u32) -> Option<ProcStat> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ProcStat::parse(&text)
    }

    /// This process.
    pub fn of_self() -> Option<ProcStat> {
        ProcStat::of(std::process::id())
    }

    /// Parses one `stat` line. The command name (field 2) is in
    /// parentheses and may hold spaces and parentheses itself, so the
    /// fields are counted from the last `)`.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let (_, rest) = text.rsplit_once(')')?;
        // rest: " S ppid pgrp ..." = field 3 onwards.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).copied();
        let number = |n: usize| field(n)?.parse::<u64>().ok();
        Some(ProcStat {
            state: field(3)?.chars().next()?,
            user_ticks: number(14)?,
            system_ticks: number(15)?,
            start_ticks: number(22)?,
        })
    }

    /// User plus system CPU.
    pub fn cpu(&self) -> Duration {
        ticks(self.user_ticks + self.system_ticks)
    }

    /// Still a live process (a zombie has exited and only awaits its reaper).
    pub fn is_alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// Clock ticks as time.
pub fn ticks(ticks: u64) -> Duration {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_holds_spaces_and_parentheses() {
        let line = "4242 (matchengine (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    170 30 0 0 20 0 9 0 987654 1000 10 18446744073709551615";
        let stat = ProcStat::parse(line).expect("a stat line");
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                user_ticks: 170,
                system_ticks: 30,
                start_ticks: 987654,
            }
        );
        assert!(stat.is_alive());
        assert!(ProcStat::parse("4242 (cut").is_none());
        assert!(ProcStat::parse("4242 (z) Z 1 2").is_none());
    }

    #[test]
    fn reads_this_process() {
        let stat = ProcStat::of_self().expect("this process's stat");
        assert!(stat.is_alive());
        assert!(stat.start_ticks > 0);
    }
}
