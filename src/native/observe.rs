//! `scaleplan observe`: the live load of a running local deployment, read
//! from the servers themselves (pg_stat_database, PgBouncer's SHOW POOLS,
//! Redis's INFO and ROLE), against the phase's capacity model: each
//! resource's utilisation, the bottleneck now, and whether and when to
//! move to the next phase.

use super::probe;
use super::resp::{Conn, Reply};
use super::secrets::Secrets;
use super::tools::Tools;
use crate::plan::PlannedPhase;
use crate::plan::capacity::Resource;
use crate::plan::identity::{ADMIN_USER, SUPERUSER, Secret};
use crate::plan::monitoring::{CRITICAL, WARNING};
use crate::plan::topology::Topology;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// One resource as measured.
#[derive(Clone, Debug, Serialize)]
pub struct Reading {
    pub resource: Resource,
    pub label: &'static str,
    pub bottleneck: &'static str,
    pub supply: f64,
    pub unit: &'static str,
    /// None where the servers do not show it (the app's own resources).
    pub used: Option<f64>,
    pub utilisation: Option<f64>,
    pub source: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Below the warning threshold.
    Stay,
    /// Above it: prepare the next phase.
    Plan,
    /// Above the critical threshold: move now.
    Move,
}

#[derive(Clone, Debug, Serialize)]
pub struct Advice {
    pub action: Action,
    pub message: String,
    /// At the trend of the readings so far (with --watch), the seconds
    /// until the bottleneck reaches its modelled capacity.
    pub exhausted_in_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Observation {
    pub phase: String,
    pub window_seconds: f64,
    pub readings: Vec<Reading>,
    /// The measured resource with the highest utilisation.
    pub bottleneck: Option<Resource>,
    pub next: Option<String>,
    pub transition: Option<String>,
    pub advice: Advice,
}

/// Counters read at one instant, to difference over the window.
#[derive(Default)]
struct Counters {
    primary_xacts: f64,
    replica_xacts: f64,
    redis_commands: f64,
}

pub struct Observer<'a> {
    tools: Tools,
    secrets: Secrets,
    topo: &'a Topology,
    database: String,
}

impl<'a> Observer<'a> {
    pub fn new(state_dir: &Path, phase: &'a PlannedPhase) -> anyhow::Result<Observer<'a>> {
        Ok(Observer {
            tools: Tools::find()?,
            secrets: Secrets::load_or_create(state_dir)?,
            topo: &phase.local,
            database: phase.spec().postgres.database.as_str().to_owned(),
        })
    }

    fn xacts(&self, port: u16) -> f64 {
        probe::psql(
            &self.tools,
            port,
            SUPERUSER,
            self.secrets.get(Secret::Postgres),
            "postgres",
            &format!(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{}'",
                self.database
            ),
        )
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
    }

    /// The Redis masters now, with a connection to each.
    fn masters(&self) -> Vec<Conn> {
        let password = self.secrets.get(Secret::Redis);
        self.topo
            .redis
            .data_nodes()
            .iter()
            .filter_map(|n| {
                let mut conn = Conn::open(n.endpoint.port, password).ok()?;
                let role = conn.call(&[b"ROLE"]).ok()?;
                (role.items().first().and_then(Reply::text).as_deref() == Some("master"))
                    .then_some(conn)
            })
            .collect()
    }

    fn info_field(conn: &mut Conn, section: &[u8], field: &str) -> f64 {
        conn.call(&[b"INFO", section])
            .ok()
            .and_then(|r| r.text())
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn counters(&self) -> Counters {
        let pg = &self.topo.postgres;
        Counters {
            primary_xacts: self.xacts(pg.primary.endpoint.port),
            replica_xacts: pg
                .replicas
                .iter()
                .map(|r| self.xacts(r.endpoint.port))
                .sum(),
            redis_commands: self
                .masters()
                .iter_mut()
                .map(|c| Self::info_field(c, b"stats", "total_commands_processed"))
                .sum(),
        }
    }

    /// Client connections on every PgBouncer (active and waiting).
    fn pgbouncer_clients(&self) -> f64 {
        self.topo
            .pgbouncer
            .instances
            .iter()
            .filter_map(|p| {
                probe::psql(
                    &self.tools,
                    p.endpoint.port,
                    ADMIN_USER,
                    self.secrets.get(Secret::PgbouncerAdmin),
                    "pgbouncer",
                    "SHOW POOLS",
                )
            })
            .map(|rows| {
                // database|user|cl_active|cl_waiting|...; the admin console's
                // own pool is this very query.
                rows.lines()
                    .map(|l| l.split('|').collect::<Vec<_>>())
                    .filter(|f| f.len() > 3 && f[0] != "pgbouncer")
                    .map(|f| {
                        f[2].parse::<f64>().unwrap_or(0.0) + f[3].parse::<f64>().unwrap_or(0.0)
                    })
                    .sum::<f64>()
            })
            .sum()
    }

    fn redis_memory(&self) -> f64 {
        self.masters()
            .iter_mut()
            .map(|c| Self::info_field(c, b"memory", "used_memory"))
            .sum()
    }

    /// Reads every resource over `window`.
    pub fn observe(&self, phase: &PlannedPhase, window: Duration) -> Observation {
        let before = self.counters();
        let started = Instant::now();
        std::thread::sleep(window);
        let after = self.counters();
        let seconds = started.elapsed().as_secs_f64();
        let rate = |a: f64, b: f64| ((b - a) / seconds).max(0.0);
        let clients = self.pgbouncer_clients();
        let memory = self.redis_memory();
        let readings: Vec<Reading> = phase
            .capacity
            .lines
            .iter()
            .map(|line| {
                let (used, source) = match line.resource {
                    Resource::Websocket | Resource::System => {
                        (None, "the app's own metrics (not on the local target)")
                    }
                    Resource::DatabasePrimary => (
                        Some(rate(before.primary_xacts, after.primary_xacts)),
                        "pg_stat_database on the primary",
                    ),
                    Resource::DatabaseReplicas => (
                        Some(rate(before.replica_xacts, after.replica_xacts)),
                        "pg_stat_database on the replicas",
                    ),
                    Resource::PgbouncerClients => (Some(clients), "SHOW POOLS"),
                    Resource::RedisThroughput => (
                        Some(rate(before.redis_commands, after.redis_commands)),
                        "INFO stats on the masters",
                    ),
                    Resource::RedisMemory => (Some(memory), "INFO memory on the masters"),
                };
                Reading {
                    resource: line.resource,
                    label: line.resource.label(),
                    bottleneck: line.resource.bottleneck().as_str(),
                    supply: line.supply.amount,
                    unit: line.supply.unit,
                    utilisation: used.map(|u| u / line.supply.amount),
                    used,
                    source,
                }
            })
            .collect();
        let top = readings
            .iter()
            .filter_map(|r| r.utilisation.map(|u| (r, u)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let next = phase.next.clone();
        let transition = next
            .as_ref()
            .map(|n| format!("out/transitions/{}-to-{n}.md", phase.name()));
        let advice = advise(
            top.map(|(r, u)| (r.label, u)),
            next.as_deref(),
            transition.as_deref(),
        );
        Observation {
            phase: phase.name().to_owned(),
            window_seconds: seconds,
            bottleneck: top.map(|(r, _)| r.resource),
            readings,
            next,
            transition,
            advice,
        }
    }
}

fn advise(top: Option<(&str, f64)>, next: Option<&str>, plan: Option<&str>) -> Advice {
    let Some((label, u)) = top else {
        return Advice {
            action: Action::Stay,
            message: "nothing measured".to_owned(),
            exhausted_in_seconds: None,
        };
    };
    let pct = u * 100.0;
    let onward = match (next, plan) {
        (Some(next), Some(plan)) => {
            format!("move to {next}: review {plan}, then `scaleplan migrate {next}`")
        }
        _ => "this is the last phase: add a larger one".to_owned(),
    };
    let (action, message) = if u >= CRITICAL {
        (
            Action::Move,
            format!("{label} is at {pct:.0}% of its modelled capacity: {onward} now"),
        )
    } else if u >= WARNING {
        (
            Action::Plan,
            format!("{label} is at {pct:.0}% of its modelled capacity: plan to {onward}"),
        )
    } else {
        (
            Action::Stay,
            format!(
                "{label} leads at {pct:.0}% of its modelled capacity; no move needed yet (warning at {:.0}%)",
                WARNING * 100.0
            ),
        )
    };
    Advice {
        action,
        message,
        exhausted_in_seconds: None,
    }
}

/// Seconds until utilisation reaches 1 at the trend of `history` (time in
/// seconds, utilisation), by least squares; None when it is not rising.
pub fn time_to_exhaustion(history: &[(f64, f64)]) -> Option<f64> {
    if history.len() < 2 {
        return None;
    }
    let n = history.len() as f64;
    let (sx, sy) = history
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = history.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        return None;
    }
    let slope = num / den;
    let (t, u) = *history.last()?;
    let now = my + slope * (t - mx);
    if slope <= 0.0 || u >= 1.0 {
        return (u >= 1.0).then_some(0.0);
    }
    Some(((1.0 - now) / slope).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_trend_gives_the_time_left_and_a_flat_one_none() {
        // 0.5 at t=0, 0.6 at t=10: 0.01 a second, 40 s left.
        let t = time_to_exhaustion(&[(0.0, 0.5), (10.0, 0.6)]).unwrap();
        assert!((t - 40.0).abs() < 1e-9, "{t}");
        assert_eq!(time_to_exhaustion(&[(0.0, 0.5), (10.0, 0.5)]), None);
        assert_eq!(time_to_exhaustion(&[(0.0, 0.9), (10.0, 1.2)]), Some(0.0));
        assert_eq!(time_to_exhaustion(&[(0.0, 0.5)]), None);
    }

    #[test]
    fn advice_follows_the_thresholds() {
        let plan = Some("out/transitions/a-to-b.md");
        assert_eq!(
            advise(Some(("x", 0.5)), Some("b"), plan).action,
            Action::Stay
        );
        assert_eq!(
            advise(Some(("x", 0.75)), Some("b"), plan).action,
            Action::Plan
        );
        let now = advise(Some(("x", 0.9)), Some("b"), plan);
        assert_eq!(now.action, Action::Move);
        assert!(
            now.message.contains("scaleplan migrate b"),
            "{}",
            now.message
        );
    }
}
