//! `scaleplan observe`: the live load of a running local deployment, read
//! from the servers themselves (PgBouncer's SHOW STATS and SHOW POOLS,
//! Redis's INFO and ROLE), against the phase's capacity model: each
//! resource's utilisation, the bottleneck now, and whether and when to
//! move to the next phase.

use super::probe;
use super::resp::Conn;
use super::secrets::Secrets;
use super::tools::Tools;
use crate::plan::PlannedPhase;
use crate::plan::capacity::Resource;
use crate::plan::identity::{ADMIN_USER, Secret};
use crate::plan::monitoring::{CRITICAL, WARNING};
use crate::plan::topology::Topology;
use serde::Serialize;
use std::collections::BTreeMap;
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

/// Counters read at one instant, by node, to difference over the window.
#[derive(Default)]
pub(super) struct Counters {
    /// Queries through each PgBouncer, by (instance, database).
    pub queries: BTreeMap<(String, String), f64>,
    /// Microseconds those queries took, by (instance, database).
    pub query_time_us: BTreeMap<(String, String), f64>,
    /// Commands processed by each Redis node that is a master.
    pub masters: BTreeMap<String, f64>,
}

/// A per-node rate over the window: only nodes read at both ends count, so
/// a node that did not answer once is not read as its whole lifetime's
/// count in five seconds.
pub(super) fn rates<K: Ord + Clone>(
    before: &BTreeMap<K, f64>,
    after: &BTreeMap<K, f64>,
    seconds: f64,
) -> BTreeMap<K, f64> {
    after
        .iter()
        .filter_map(|(k, b)| {
            let a = before.get(k)?;
            Some((k.clone(), ((b - a) / seconds).max(0.0)))
        })
        .collect()
}

pub struct Observer<'a> {
    tools: Tools,
    secrets: Secrets,
    topo: &'a Topology,
}

impl<'a> Observer<'a> {
    pub fn new(state_dir: &Path, phase: &'a PlannedPhase) -> anyhow::Result<Observer<'a>> {
        Ok(Observer {
            tools: Tools::find()?,
            secrets: Secrets::load_or_create(state_dir)?,
            topo: &phase.local,
        })
    }

    fn admin(&self, port: u16, command: &str) -> Option<Vec<BTreeMap<String, String>>> {
        probe::psql_rows(
            &self.tools,
            port,
            ADMIN_USER,
            self.secrets.get(Secret::PgbouncerAdmin),
            "pgbouncer",
            command,
        )
    }

    /// The Redis masters now, by name, with a connection to each.
    fn masters(&self) -> Vec<(String, Conn)> {
        let password = self.secrets.get(Secret::Redis);
        self.topo
            .redis
            .data_nodes()
            .iter()
            .filter_map(|n| {
                let mut conn = Conn::open(n.endpoint.port, password).ok()?;
                conn.is_master().ok()?.then(|| (n.name.clone(), conn))
            })
            .collect()
    }

    fn info_field(conn: &mut Conn, section: &[u8], field: &str) -> Option<f64> {
        conn.call(&[b"INFO", section])
            .ok()
            .and_then(|r| r.text())
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
            })
            .and_then(|v| v.trim().parse().ok())
    }

    pub(super) fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for p in &self.topo.pgbouncer.instances {
            for row in self
                .admin(p.endpoint.port, "SHOW STATS")
                .unwrap_or_default()
            {
                if let (Some(db), Some(n)) = (
                    row.get("database"),
                    row.get("total_query_count").and_then(|v| v.parse().ok()),
                ) {
                    c.queries.insert((p.name.clone(), db.clone()), n);
                    if let Some(t) = row.get("total_query_time").and_then(|v| v.parse().ok()) {
                        c.query_time_us.insert((p.name.clone(), db.clone()), t);
                    }
                }
            }
        }
        for (name, mut conn) in self.masters() {
            if let Some(n) = Self::info_field(&mut conn, b"stats", "total_commands_processed") {
                c.masters.insert(name, n);
            }
        }
        c
    }

    /// Client connections on each PgBouncer (active and waiting).
    fn pgbouncer_clients(&self) -> Vec<f64> {
        self.topo
            .pgbouncer
            .instances
            .iter()
            .filter_map(|p| self.admin(p.endpoint.port, "SHOW POOLS"))
            .map(|rows| {
                rows.iter()
                    // The admin console's own pool is this very query.
                    .filter(|r| r.get("database").is_some_and(|d| d != "pgbouncer"))
                    .map(|r| {
                        ["cl_active", "cl_waiting"]
                            .iter()
                            .filter_map(|k| r.get(*k)?.parse::<f64>().ok())
                            .sum::<f64>()
                    })
                    .sum()
            })
            .collect()
    }

    pub(super) fn redis_memory(&self) -> Vec<f64> {
        self.masters()
            .into_iter()
            .filter_map(|(_, mut c)| Self::info_field(&mut c, b"memory", "used_memory"))
            .collect()
    }

    /// Reads every resource over `window`. Where several units share a
    /// resource, the utilisation is the busiest unit's over its share (as
    /// the Prometheus rules compute it); the use shown is all of them.
    pub fn observe(&self, phase: &PlannedPhase, window: Duration) -> Observation {
        let before = self.counters();
        let started = Instant::now();
        std::thread::sleep(window);
        let after = self.counters();
        let seconds = started.elapsed().as_secs_f64();
        let queries = rates(&before.queries, &after.queries, seconds);
        let masters = rates(&before.masters, &after.masters, seconds);
        let pgb = &self.topo.pgbouncer;
        let with_replicas = !self.topo.postgres.replicas.is_empty();
        let to = |dbs: &[&str]| -> Option<f64> {
            let found: Vec<f64> = queries
                .iter()
                .filter(|((_, db), _)| dbs.contains(&db.as_str()))
                .map(|(_, r)| *r)
                .collect();
            (!found.is_empty()).then(|| found.iter().sum())
        };
        let primary_dbs: Vec<&str> = if with_replicas {
            vec![pgb.write_db.alias.as_str()]
        } else {
            vec![pgb.write_db.alias.as_str(), pgb.read_alias.as_str()]
        };
        let clients = self.pgbouncer_clients();
        let memory = self.redis_memory();
        let most = |v: &[f64]| {
            v.iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        };
        let master_count = f64::from(self.topo.redis.masters());
        let readings: Vec<Reading> = phase
            .capacity
            .lines
            .iter()
            .map(|line| {
                let supply = line.supply.amount;
                let per_instance = supply / f64::from(line.supply.units.max(1));
                let per_master = supply / master_count;
                let rates: Vec<f64> = masters.values().copied().collect();
                // (use, utilisation, source)
                let (used, utilisation, source) = match line.resource {
                    Resource::Websocket | Resource::System => (
                        None,
                        None,
                        "the app's own metrics (not on the local target)",
                    ),
                    Resource::DatabasePrimary => {
                        let u = to(&primary_dbs);
                        (
                            u,
                            u.map(|u| u / supply),
                            "queries through PgBouncer (SHOW STATS) to the primary",
                        )
                    }
                    Resource::DatabaseReplicas => {
                        let u = to(&[pgb.read_alias.as_str()]);
                        (
                            u,
                            u.map(|u| u / supply),
                            "queries through PgBouncer's read pools (SHOW STATS)",
                        )
                    }
                    Resource::PgbouncerClients => (
                        (!clients.is_empty()).then(|| clients.iter().sum()),
                        most(&clients).map(|m| m / per_instance),
                        "client connections on each PgBouncer (SHOW POOLS)",
                    ),
                    Resource::RedisThroughput => (
                        (!rates.is_empty()).then(|| rates.iter().sum()),
                        most(&rates).map(|m| m / per_master),
                        "commands a second on each master (INFO stats)",
                    ),
                    Resource::RedisMemory => (
                        (!memory.is_empty()).then(|| memory.iter().sum()),
                        most(&memory).map(|m| m / per_master),
                        "memory used on each master (INFO memory)",
                    ),
                    Resource::Notifications | Resource::PushQuota => (
                        None,
                        None,
                        "the workers' own metrics (not on the local target)",
                    ),
                };
                Reading {
                    resource: line.resource,
                    label: line.resource.label(),
                    bottleneck: line.resource.bottleneck().as_str(),
                    supply,
                    unit: line.supply.unit,
                    used,
                    utilisation,
                    source,
                }
            })
            .collect();
        let top = readings
            .iter()
            .filter_map(|r| r.utilisation.map(|u| (r, u)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let next = phase.next.clone();
        let transition = phase.monitoring.transition.clone();
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
    fn a_node_read_at_one_end_only_is_left_out_of_the_rate() {
        let before = BTreeMap::from([("a", 100.0), ("b", 0.0)]);
        let after = BTreeMap::from([("a", 150.0), ("c", 1_000_000.0)]);
        let r = rates(&before, &after, 5.0);
        assert_eq!(r, BTreeMap::from([("a", 10.0)]));
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
