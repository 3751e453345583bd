//! Stopping a bring-up and asking after it.

use super::procs;
use super::procs::Proc;
use super::state::State;
use anyhow::{Context, bail};
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
        "monitor" | "sentinel" | "haproxy" => 0,
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
    } else {
        crate::say!("phase {} (base port {})", state.phase, state.base_port);
    }
    if let Some(m) = &state.migration {
        crate::say!("{}", m.describe());
    }
    if state.processes.is_empty() {
        return Ok(false);
    }
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
