//! What every step of a bring-up shares: the state directory, the secrets,
//! the processes started so far, and starting and awaiting a server.

use super::probe::wait_for;
use super::procs::{Launch, Proc};
use super::secrets::Secrets;
use super::state::State;
use super::tools::Tools;
use crate::plan::topology::Topology;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Bringup {
    pub tools: Tools,
    pub topo: Topology,
    /// Absolute; every process runs from here.
    pub state_dir: PathBuf,
    /// The rendered local target: config/local.
    pub config: PathBuf,
    pub secrets: Secrets,
    /// The user servers run as when scaleplan runs as root.
    pub server_user: Option<&'static str>,
    pub state: State,
    /// Processes of this phase that were already running and are kept:
    /// in the record from the start, so an interrupted `up` never loses
    /// track of them, and never stopped by a failed one.
    pub running: Vec<Proc>,
    pub timeout: Duration,
    /// How the app's replicas run here; None when this deployment runs
    /// the data tier only.
    pub app: Option<super::app_launch::AppLaunch>,
    /// Replicas allowed to delete their data and clone a primary that is
    /// another cluster (`up --reseed`).
    pub reseed: Vec<String>,
    /// A primary whose data directory is gone may be initialised anew
    /// (`up --reinit-primary`).
    pub reinit_primary: bool,
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// Hands a path to the server user when running as root (PostgreSQL and
/// PgBouncer run as postgres and must own their data and auth files).
pub fn give_to(user: Option<&str>, path: &Path) -> anyhow::Result<()> {
    if let Some(user) = user {
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(path)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown {user} {} failed", path.display());
        }
    }
    Ok(())
}

impl Bringup {
    /// A bring-up of `topo` over the deployment that runs in `state_dir`,
    /// keeping every process that runs: what `migrate` and `promote` act
    /// through. The app's replicas, when they run, are the caller's to set.
    pub fn over_running(
        tools: Tools,
        topo: Topology,
        state_dir: &Path,
        state: State,
        timeout: Duration,
    ) -> anyhow::Result<Bringup> {
        Ok(Bringup {
            tools,
            topo,
            state_dir: state_dir.to_path_buf(),
            config: state_dir.join("config/local"),
            secrets: super::secrets::Secrets::load_or_create(state_dir)?,
            server_user: is_root().then_some("postgres"),
            running: state.running().into_iter().cloned().collect(),
            state,
            timeout,
            app: None,
            reseed: Vec::new(),
            reinit_primary: false,
        })
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.state_dir.join("logs").join(format!("{name}.log"))
    }

    /// A generated script of the local target, run with the state
    /// directory as its working directory, the server binaries on PATH and
    /// the secrets in its environment.
    pub fn script(&self, interpreter: &str, path: &str) -> Launch {
        let mut launch = Launch::new(Path::new(interpreter))
            .arg(self.config.join(path))
            .env("PATH", &self.tools.path())
            .env("TERM", "dumb");
        for (var, value) in self.secrets.env() {
            launch = launch.env(var, value);
        }
        launch
    }

    /// True when this phase's `name` already runs (kept from an earlier
    /// `up`, and in the record from the start): not started twice.
    pub fn keep_running(&mut self, name: &str) -> bool {
        match self.running.iter().find(|p| p.name == name && p.alive()) {
            Some(p) => {
                crate::say!("  {name:<22} already running (pid {})", p.pid);
                true
            }
            None => false,
        }
    }

    /// Starts a server, logging to logs/<name>.log, and records it at once
    /// so `down` can stop it even if a later step fails.
    pub fn spawn(
        &mut self,
        launch: Launch,
        name: &str,
        kind: &str,
        port: u16,
    ) -> anyhow::Result<()> {
        let proc: Proc = launch.spawn(&self.state_dir, &self.log(name), name, kind, port)?;
        self.record(proc)
    }

    /// Records a started process at once.
    pub fn record(&mut self, proc: Proc) -> anyhow::Result<()> {
        // An earlier start of the same node that died (a failed step being
        // run again) leaves the record: this one replaces it.
        self.state
            .processes
            .retain(|p| p.name != proc.name || p.alive());
        self.state.processes.push(proc);
        self.state.save(&self.state_dir)
    }

    /// Waits for a component; on timeout, fails with the end of its log.
    pub fn await_ready(
        &self,
        name: &str,
        what: &str,
        since: Instant,
        mut check: impl FnMut() -> Option<()>,
    ) -> anyhow::Result<()> {
        // A server that exits (a port in use, a bad setting) fails the wait
        // at once instead of at the timeout.
        let process = self
            .state
            .processes
            .iter()
            .rev()
            .find(|p| p.name == name)
            .cloned();
        let mut died = false;
        let ready = wait_for(self.timeout, || {
            if check().is_some() {
                return Some(true);
            }
            if process.as_ref().is_some_and(|p| !p.alive()) {
                died = true;
                return Some(false);
            }
            None
        });
        if ready != Some(true) {
            let why = if died {
                "exited before it was ready".to_owned()
            } else {
                format!("was not {what} within {} s", self.timeout.as_secs())
            };
            bail!(
                "{name} {why}; last lines of {}:\n{}",
                self.log(name).display(),
                self.log_tail(name)
            );
        }
        crate::say!(
            "  {name:<22} {what} ({:.1} s)",
            since.elapsed().as_secs_f64()
        );
        Ok(())
    }

    pub fn log_tail(&self, name: &str) -> String {
        let log = std::fs::read_to_string(self.log(name)).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}
