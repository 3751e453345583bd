//! `scaleplan up --native`, `down` and `status`: a phase's local target run
//! as processes on this machine, from the files scaleplan generates.
//!
//! Everything a bring-up owns lives in one state directory: the rendered
//! local target (config/), the data of every server, their logs, the
//! secrets (mode 0600, never under out/) and state.json, the record of the
//! processes started, which `down` and `status` read.

mod probe;
mod procs;
mod tools;
mod up;

pub use probe::wait_for;
pub use procs::Proc;
pub use tools::Tools;
pub use up::{Secrets, UpOptions, up};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// The default state directory, relative to where scaleplan runs.
pub const DEFAULT_STATE: &str = ".scaleplan/state";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub phase: String,
    pub base_port: u16,
    /// In start order; `down` stops them in reverse.
    pub processes: Vec<Proc>,
}

impl State {
    pub fn path(dir: &Path) -> std::path::PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Option<State>> {
        let path = State::path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(
                serde_json::from_str(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = State::path(dir);
        let tmp = dir.join("state.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    pub fn running(&self) -> Vec<&Proc> {
        self.processes.iter().filter(|p| p.alive()).collect()
    }
}

/// Stops exactly the processes recorded in the state directory, newest
/// first, and nothing else.
pub fn down(dir: &Path, purge: bool) -> anyhow::Result<()> {
    let Some(mut state) = State::load(dir)? else {
        bail!(
            "{} holds no bring-up (no state.json): nothing to stop",
            dir.display()
        );
    };
    let mut order: Vec<Proc> = state.processes.clone();
    order.reverse();
    // Clients before servers: Sentinel first (so it does not fail over a
    // master that is merely stopping), then Redis, PgBouncer, replicas and
    // the primary last.
    let rank = |kind: &str| match kind {
        "sentinel" => 0,
        "redis" => 1,
        "pgbouncer" => 2,
        _ => 3,
    };
    order.sort_by_key(|p| rank(&p.kind));
    let alive: Vec<Proc> = order.iter().filter(|p| p.alive()).cloned().collect();
    let killed = procs::stop_all(&alive, Duration::from_secs(20));
    for p in &alive {
        let how = if killed.contains(&p.name) {
            "killed after 20 s"
        } else {
            "stopped"
        };
        crate::say!("{:<22} {how} (pid {})", p.name, p.pid);
    }
    if alive.is_empty() {
        crate::say!("nothing was running");
    }
    state.processes.clear();
    state.save(dir)?;
    if purge {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        crate::say!("removed {}", dir.display());
    }
    Ok(())
}

/// Prints each recorded process and whether it is up; true when all are.
pub fn status(dir: &Path) -> anyhow::Result<bool> {
    let Some(state) = State::load(dir)? else {
        crate::say!("nothing is up in {}", dir.display());
        return Ok(false);
    };
    if state.processes.is_empty() {
        crate::say!("phase {}: stopped", state.phase);
        return Ok(false);
    }
    crate::say!("phase {} (base port {})", state.phase, state.base_port);
    let mut all = true;
    for p in &state.processes {
        // Running is not enough: the server must also take connections.
        let listening = || {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], p.port));
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
        };
        let (up, what) = match (p.alive(), p.alive() && listening()) {
            (true, true) => (true, format!("up (pid {})", p.pid)),
            (true, false) => (
                false,
                format!("running (pid {}) but not accepting connections", p.pid),
            ),
            (false, _) => (false, "down".to_owned()),
        };
        all &= up;
        crate::say!(
            "  {:<22} {:<10} 127.0.0.1:{:<6} {what}",
            p.name,
            p.kind,
            p.port
        );
    }
    Ok(all)
}
