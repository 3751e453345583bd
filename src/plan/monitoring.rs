//! What the monitoring of a phase watches: each resource of the capacity
//! model with the PromQL that measures its use (in the unit of the
//! model's supply), the thresholds the alerts fire at, and the figures of
//! the alerts for what breaks without using capacity up. The rules, their
//! unit tests, the dashboard and `observe` all read this.

use super::capacity::{Estimate, Resource};
use super::topology::{RedisLayout, Topology};
use crate::spec::types::Phase;
use serde::Serialize;

/// An alert warns at this share of the modelled capacity...
pub const WARNING: f64 = 0.70;
/// ...and pages at this one.
pub const CRITICAL: f64 = 0.85;
/// How far ahead the exhaustion alert predicts, in seconds: a week, long
/// enough to migrate to the next phase.
pub const PREDICT_SECONDS: u64 = 7 * 24 * 3600;

/// One resource under watch.
#[derive(Clone, Debug, Serialize)]
pub struct Watch {
    pub resource: &'static str,
    pub label: &'static str,
    pub bottleneck: &'static str,
    /// The modelled supply, in `unit`.
    pub supply: f64,
    pub unit: &'static str,
    /// Replicas or instances that share it; > 1 means losing one leaves
    /// (units - 1) / units of it, which the N-1 alert checks.
    pub units: u32,
    /// The utilisation at which losing one unit exhausts it.
    pub n_minus_one: Option<f64>,
    /// PromQL of the use, in `unit`.
    pub used: String,
    /// Where the use comes from, for the README and the dashboard.
    pub source: &'static str,
    /// The raw series the rules read, at 90% and at 50% of the supply,
    /// for the rules' unit tests: (series, values) pairs, one sample each
    /// 15 s for an hour.
    pub test_high: Vec<(String, String)>,
    pub test_half: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Monitoring {
    pub phase: String,
    pub watches: Vec<Watch>,
    pub warning: f64,
    pub critical: f64,
    pub predict_seconds: u64,
    /// The next phase in rollout order and its transition note, which the
    /// alerts name.
    pub next: Option<String>,
    pub transition: Option<String>,
    pub database: String,
    pub read_replicas: u32,
    /// WAL a slot may hold before the alert (80% of max_slot_wal_keep_size).
    pub slot_wal_alert_bytes: u64,
    pub sentinel: Option<String>,
    pub cluster: bool,
}

/// The raw series a rule reads, for a given use of the resource.
type SeriesAt<'a> = Box<dyn Fn(f64) -> Vec<(String, String)> + 'a>;

/// The metric that counts an app's open WebSocket connections, which the
/// app exports (`prom-client` gauge); see the README's contract.
pub const APP_WEBSOCKET_METRIC: &str = "scaleplan_app_websocket_connections";

pub fn plan(phase: &Phase, topo: &Topology, estimate: &Estimate, next: Option<&str>) -> Monitoring {
    let db = phase.postgres.database.as_str();
    let xact = |role: &str| {
        format!(
            "sum(rate(pg_stat_database_xact_commit{{role=\"{role}\",datname=\"{db}\"}}[1m]) + rate(pg_stat_database_xact_rollback{{role=\"{role}\",datname=\"{db}\"}}[1m]))"
        )
    };
    let xact_series = |role: &str, node: &str, per_s: f64| {
        vec![
            (
                format!(
                    "pg_stat_database_xact_commit{{role=\"{role}\",datname=\"{db}\",node=\"{node}\"}}"
                ),
                counter(per_s),
            ),
            (
                format!(
                    "pg_stat_database_xact_rollback{{role=\"{role}\",datname=\"{db}\",node=\"{node}\"}}"
                ),
                gauge(0.0),
            ),
        ]
    };
    let first_replica = topo
        .postgres
        .replicas
        .first()
        .map_or("postgres-replica-1", |r| r.name.as_str());
    let master = topo
        .redis
        .data_nodes()
        .first()
        .map_or("redis-1".to_owned(), |n| n.name.clone());
    let mut watches = Vec::new();
    for line in &estimate.lines {
        let s = &line.supply;
        let at = |share: f64| share * s.amount;
        let (used, source, series): (String, &'static str, SeriesAt) =
            match line.resource {
                Resource::Websocket => (
                    format!("sum({APP_WEBSOCKET_METRIC})"),
                    "the app's gauge of open WebSocket connections",
                    Box::new(|v| vec![(format!("{APP_WEBSOCKET_METRIC}{{job=\"app\"}}"), gauge(v))]),
                ),
                Resource::System => (
                    "sum(rate(process_cpu_seconds_total{job=\"app\"}[1m]))".to_owned(),
                    "the app's process CPU (prom-client's default metrics)",
                    Box::new(|v| vec![("process_cpu_seconds_total{job=\"app\"}".to_owned(), counter(v))]),
                ),
                Resource::DatabasePrimary => (
                    xact("primary"),
                    "transactions a second on the primary (postgres_exporter, pg_stat_database); a statement outside a transaction is one",
                    Box::new(move |v| xact_series("primary", "postgres-primary", v)),
                ),
                Resource::DatabaseReplicas => (
                    xact("replica"),
                    "transactions a second on the replicas (postgres_exporter)",
                    Box::new(move |v| xact_series("replica", first_replica, v)),
                ),
                Resource::PgbouncerClients => (
                    // A PgBouncer lists a pool only once a client used it:
                    // none yet is 0 clients, while the exporter is up.
                    "sum(pgbouncer_pools_client_active_connections + pgbouncer_pools_client_waiting_connections) or sum(pgbouncer_up) * 0".to_owned(),
                    "client connections on every PgBouncer (prometheus-pgbouncer-exporter, SHOW POOLS)",
                    Box::new(|v| {
                        vec![
                            ("pgbouncer_pools_client_active_connections{node=\"pgbouncer-1\"}".to_owned(), gauge(v)),
                            ("pgbouncer_pools_client_waiting_connections{node=\"pgbouncer-1\"}".to_owned(), gauge(0.0)),
                        ]
                    }),
                ),
                Resource::RedisThroughput => (
                    "sum(rate(redis_commands_processed_total[1m]) and on (node) redis_instance_info{role=\"master\"})".to_owned(),
                    "commands a second on the masters (redis_exporter)",
                    Box::new({
                        let master = master.clone();
                        move |v| {
                            vec![
                                (format!("redis_commands_processed_total{{node=\"{master}\"}}"), counter(v)),
                                (format!("redis_instance_info{{node=\"{master}\",role=\"master\"}}"), gauge(1.0)),
                            ]
                        }
                    }),
                ),
                Resource::RedisMemory => (
                    "sum(redis_memory_used_bytes and on (node) redis_instance_info{role=\"master\"})".to_owned(),
                    "memory used on the masters (redis_exporter)",
                    Box::new({
                        let master = master.clone();
                        move |v| {
                            vec![
                                (format!("redis_memory_used_bytes{{node=\"{master}\"}}"), gauge(v)),
                                (format!("redis_instance_info{{node=\"{master}\",role=\"master\"}}"), gauge(1.0)),
                            ]
                        }
                    }),
                ),
            };
        let units = s.units;
        watches.push(Watch {
            resource: line.resource.key(),
            label: line.resource.label(),
            bottleneck: line.resource.bottleneck().as_str(),
            supply: s.amount,
            unit: s.unit,
            units,
            n_minus_one: (units > 1).then(|| f64::from(units - 1) / f64::from(units)),
            used,
            source,
            test_high: series(at(0.9)),
            test_half: series(at(0.5)),
        });
    }
    let storage_gb = phase.postgres.primary.storage_gb;
    let keep_mb = u64::from((storage_gb * 1024 / 10).max(1024));
    Monitoring {
        phase: phase.name.as_str().to_owned(),
        watches,
        warning: WARNING,
        critical: CRITICAL,
        predict_seconds: PREDICT_SECONDS,
        transition: next.map(|n| format!("out/transitions/{}-to-{n}.md", phase.name.as_str())),
        next: next.map(str::to_owned),
        database: db.to_owned(),
        read_replicas: phase.postgres.read_replicas,
        slot_wal_alert_bytes: keep_mb * 1024 * 1024 * 8 / 10,
        sentinel: match &topo.redis {
            RedisLayout::Sentinel { master_name, .. } => Some(master_name.clone()),
            _ => None,
        },
        cluster: matches!(topo.redis, RedisLayout::Cluster { .. }),
    }
}

/// A gauge holding `v`: an hour of samples 15 s apart.
fn gauge(v: f64) -> String {
    format!("{}x240", fmt(v))
}

/// A counter rising at `per_s` a second: an hour of samples 15 s apart.
fn counter(per_s: f64) -> String {
    format!("0+{}x240", fmt(per_s * 15.0))
}

fn fmt(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}
