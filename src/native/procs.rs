//! Processes `up` starts: how they are launched, recorded and stopped.
//!
//! A process is identified by its pid and its start time (field 22 of
//! /proc/<pid>/stat), so `down` never signals a process that merely reused
//! a recorded pid.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Proc {
    pub name: String,
    /// What it is: postgres, pgbouncer, redis or sentinel.
    pub kind: String,
    pub pid: u32,
    pub start_time: u64,
    pub port: u16,
}

/// A command to start, optionally as another user.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Run as this user (root only): PostgreSQL refuses to run as root.
    pub user: Option<String>,
}

impl Launch {
    pub fn new(program: &Path) -> Launch {
        Launch {
            program: program.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
            user: None,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Launch {
        self.args.push(a.into());
        self
    }

    pub fn args_str(mut self, args: &[&str]) -> Launch {
        self.args.extend(args.iter().map(OsString::from));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    pub fn user(mut self, user: Option<&str>) -> Launch {
        self.user = user.map(str::to_owned);
        self
    }

    /// The command, wrapped in `setpriv` when it must change user: setpriv
    /// execs in place, so the pid we get is the server's own.
    pub fn command(&self, cwd: &Path) -> Command {
        let mut cmd = match &self.user {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={user}"))
                    .arg(format!("--regid={user}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args).current_dir(cwd);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs to completion, failing with its output when it fails.
    pub fn run(&self, cwd: &Path, what: &str) -> anyhow::Result<String> {
        let out = self
            .command(cwd)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("{what}: starting {}", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{what} failed ({}):\n{}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// Starts a long-running server in its own process group (so a Ctrl-C
    /// aimed at `scaleplan up` does not reach it), output to `log`.
    pub fn spawn(
        &self,
        cwd: &Path,
        log: &Path,
        name: &str,
        kind: &str,
        port: u16,
    ) -> anyhow::Result<Proc> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let child = self
            .command(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} ({})", self.program.display()))?;
        let pid = child.id();
        // The child is reaped by whoever adopts it once `up` exits; dropping
        // the handle does not stop it.
        drop(child);
        let start_time = start_time(pid)
            .with_context(|| format!("{name} exited at once; see {}", log.display()))?;
        Ok(Proc {
            name: name.to_owned(),
            kind: kind.to_owned(),
            pid,
            start_time,
            port,
        })
    }
}

/// Field 22 of /proc/<pid>/stat, None when the process is gone or a zombie.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Proc {
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }

    pub fn signal(&self, sig: &str) {
        if self.alive() {
            let _ = Command::new("kill")
                .args(["-s", sig, &self.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The signal that shuts the server down cleanly: PostgreSQL's fast
    /// shutdown (SIGINT) rolls back open transactions instead of waiting
    /// for clients; the others stop on SIGTERM.
    fn stop_signal(&self) -> &'static str {
        if self.kind == "postgres" {
            "INT"
        } else {
            "TERM"
        }
    }

    pub fn kill_now(&self) {
        self.signal("KILL");
    }
}

/// Stops one process with `sig`, waiting up to `grace` before SIGKILL;
/// true when it needed SIGKILL.
pub fn stop_with(p: &Proc, sig: &str, grace: Duration) -> bool {
    stop_in_stages(p, &[(sig, grace)]).is_some()
}

/// Stops one process with each signal in turn, each given its time, and
/// SIGKILL last. Returns the signal it took past the first, if any.
pub fn stop_in_stages(p: &Proc, stages: &[(&str, Duration)]) -> Option<String> {
    for (i, (sig, grace)) in stages.iter().enumerate() {
        p.signal(sig);
        let deadline = Instant::now() + *grace;
        while Instant::now() < deadline && p.alive() {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !p.alive() {
            return (i > 0).then(|| format!("SIG{sig}"));
        }
    }
    p.kill_now();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && p.alive() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Some("SIGKILL".to_owned())
}

/// Stops processes: a clean signal to each, then up to `grace` for all of
/// them together, then SIGKILL for any still running. Returns those that
/// needed SIGKILL.
pub fn stop_all(procs: &[Proc], grace: Duration) -> Vec<String> {
    for p in procs {
        p.signal(p.stop_signal());
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && procs.iter().any(Proc::alive) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut killed = Vec::new();
    for p in procs.iter().filter(|p| p.alive()) {
        p.kill_now();
        killed.push(p.name.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && procs.iter().any(Proc::alive) {
        std::thread::sleep(Duration::from_millis(20));
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_a_start_time_and_a_dead_pid_has_none() {
        assert!(start_time(std::process::id()).is_some());
        assert!(start_time(u32::MAX).is_none());
    }

    #[test]
    fn stop_all_stops_only_the_recorded_process() {
        let dir = std::env::temp_dir();
        let log = dir.join(format!("scaleplan-procs-test-{}.log", std::process::id()));
        let p = Launch::new(Path::new("/bin/sleep"))
            .arg("30")
            .spawn(&dir, &log, "sleeper", "test", 0)
            .unwrap();
        assert!(p.alive());
        // A record with the right pid but another start time is not ours.
        let impostor = Proc {
            start_time: p.start_time + 1,
            ..p.clone()
        };
        assert!(!impostor.alive());
        assert!(stop_all(&[impostor], Duration::from_millis(100)).is_empty());
        assert!(p.alive(), "an impostor record must not stop the process");
        assert!(stop_all(std::slice::from_ref(&p), Duration::from_secs(5)).is_empty());
        assert!(!p.alive());
        let _ = std::fs::remove_file(log);
    }
}
