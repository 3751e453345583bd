//! Stopping a bring-up and asking after it.

use super::procs;
use super::procs::Proc;
use super::state::State;
use anyhow::{Context, bail};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

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
    // master that is merely stopping) and the proxy, then Redis,
    // PgBouncer, replicas and the primary last.
    let rank = |kind: &str| match kind {
        "app" | "monitor" | "sentinel" | "haproxy" => 0,
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

/// A deployment as `status --format json` (and `serve`'s
/// `/v1/deployment`) reports it.
#[derive(Clone, Debug, Serialize)]
pub struct StatusDoc {
    /// The phase that runs, or ran last; None where nothing was brought up.
    pub phase: Option<String>,
    pub base_port: Option<u16>,
    /// Something was started and not stopped with `down`.
    pub started: bool,
    /// Every recorded process is up and takes connections.
    pub up: bool,
    pub monitoring: bool,
    /// A `migrate` under way, as `status` describes it.
    pub migration: Option<String>,
    pub processes: Vec<ProcStatus>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProcStatus {
    pub name: String,
    pub kind: String,
    pub port: u16,
    pub pid: u32,
    /// up, not_accepting (running but refusing connections) or down.
    pub state: &'static str,
}

/// Each recorded process and whether it serves.
pub fn status_report(dir: &Path) -> anyhow::Result<StatusDoc> {
    let Some(state) = State::load(dir)? else {
        return Ok(StatusDoc {
            phase: None,
            base_port: None,
            started: false,
            up: false,
            monitoring: false,
            migration: None,
            processes: Vec::new(),
        });
    };
    let processes: Vec<ProcStatus> = state
        .processes
        .iter()
        .map(|p| {
            // Running is not enough: the server must also take connections.
            let listening = || {
                let addr = std::net::SocketAddr::from(([127, 0, 0, 1], p.port));
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            };
            let state = match (p.alive(), p.alive() && listening()) {
                (true, true) => "up",
                (true, false) => "not_accepting",
                (false, _) => "down",
            };
            ProcStatus {
                name: p.name.clone(),
                kind: p.kind.clone(),
                port: p.port,
                pid: p.pid,
                state,
            }
        })
        .collect();
    Ok(StatusDoc {
        started: !processes.is_empty(),
        up: !processes.is_empty() && processes.iter().all(|p| p.state == "up"),
        phase: Some(state.phase.clone()),
        base_port: Some(state.base_port),
        monitoring: state.monitoring,
        migration: state.migration.as_ref().map(|m| m.describe()),
        processes,
    })
}

/// Prints each recorded process and whether it is up; true when all are.
pub fn status(dir: &Path) -> anyhow::Result<bool> {
    let doc = status_report(dir)?;
    let Some(phase) = &doc.phase else {
        crate::say!("nothing is up in {}", dir.display());
        return Ok(false);
    };
    if doc.started {
        crate::say!("phase {phase} (base port {})", doc.base_port.unwrap_or(0));
    } else {
        crate::say!("phase {phase}: stopped");
    }
    if let Some(m) = &doc.migration {
        crate::say!("{m}");
    }
    for p in &doc.processes {
        let what = match p.state {
            "up" => format!("up (pid {})", p.pid),
            "not_accepting" => format!("running (pid {}) but not accepting connections", p.pid),
            _ => "down".to_owned(),
        };
        crate::say!(
            "  {:<22} {:<10} 127.0.0.1:{:<6} {what}",
            p.name,
            p.kind,
            p.port
        );
    }
    Ok(doc.up)
}
