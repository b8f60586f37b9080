//! CPU time by who spent it, from `/proc`: the server's password-hash threads, the rest of the
//! server, PostgreSQL's processes, and this driver (the same process when the server runs in
//! it, as in `http_load`). Rates drift with a shared machine's load; CPU per request does much
//! less, so this is what says where a sign-in's or a write's time goes.

use std::time::Duration;

/// Linux reports CPU time in clock ticks of 1/100 s (`USER_HZ`, fixed on x86_64 and arm64).
const TICK: Duration = Duration::from_millis(10);

/// CPU spent so far, in ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub hash_threads: u64,
    pub server_rest: u64,
    pub postgres: u64,
    pub driver: u64,
}

impl Spent {
    /// Now, for the server process `pid`.
    pub fn now(pid: u32) -> Spent {
        let server = ticks(&format!("/proc/{pid}/stat")).map_or(0, |(_, t)| t);
        let hash_threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| ticks(&format!("{}/stat", task.path().display())))
            .filter(|(comm, _)| comm.starts_with("password-hash"))
            .map(|(_, t)| t)
            .sum();
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|p| ticks(&format!("{}/stat", p.path().display())))
            .filter(|(comm, _)| comm == "postgres")
            .map(|(_, t)| t)
            .sum();
        Spent {
            hash_threads,
            server_rest: server.saturating_sub(hash_threads),
            postgres,
            driver: ticks("/proc/self/stat").map_or(0, |(_, t)| t),
        }
    }

    /// What was spent since `before`, per one of `count` events.
    pub fn per(&self, before: &Spent, count: usize) -> [Duration; 4] {
        let each =
            |now: u64, then: u64| TICK * now.saturating_sub(then) as u32 / count.max(1) as u32;
        [
            each(self.hash_threads, before.hash_threads),
            each(self.server_rest, before.server_rest),
            each(self.postgres, before.postgres),
            each(self.driver, before.driver),
        ]
    }
}

/// (comm, utime + stime) of one `/proc/…/stat`; None when it is gone or unreadable.
fn ticks(path: &str) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // After the comm: state is field 3 of the man page, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}
