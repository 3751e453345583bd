//! What the monitoring of a phase watches: each resource of the capacity
//! model with the PromQL that measures its use (in the unit of the
//! model's supply), the thresholds the alerts fire at, and the figures of
//! the alerts for what breaks without using capacity up. The rules, their
//! unit tests, the dashboard and `observe` all read this.

use super::capacity::{Bottleneck, Estimate, Resource};
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
    pub bottleneck: Bottleneck,
    /// The modelled supply, in `unit`.
    pub supply: f64,
    pub unit: &'static str,
    /// Replicas or instances that share it; > 1 means losing one leaves
    /// (units - 1) / units of it, which the N-1 alert checks.
    pub units: u32,
    /// The utilisation at which losing one unit exhausts it.
    pub n_minus_one: Option<f64>,
    /// PromQL of the use, in `unit`, all units together (the dashboard).
    pub used: String,
    /// PromQL of the utilisation: the busiest unit's use over its share
    /// of the supply, where the load is per unit.
    pub utilisation: String,
    /// Whether its use nearing the supply is a problem (not so for the
    /// memory of a cache that evicts by design).
    pub capacity_alerts: bool,
    /// Where the use comes from, for the README and the dashboard.
    pub source: &'static str,
    /// The raw series the rules read, at 90% and at 50% of the supply,
    /// for the rules' unit tests: (series, values) pairs, one sample each
    /// 15 s for an hour.
    pub test_high: Vec<(String, String)>,
    pub test_half: Vec<(String, String)>,
}

crate::keyword! {
    /// How urgent an alert is: a warning can wait for working hours.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
    pub enum Severity {
        Warning = "warning",
        Critical = "critical",
    }
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
    /// The queue Redis's node (`queue_redis`): its own memory alert, and
    /// out of the phase's Redis's capacity series.
    pub queue_redis: Option<String>,
    /// The phase's Redis is a cache that evicts (allkeys-*): at maxmemory
    /// by design, so its evictions alert nobody.
    pub cache_evicts: bool,
    /// The notification workers' queues, each worker's own.
    pub queues: Vec<QueueWatch>,
}

/// Raw series for a rule's unit test: (series, values).
type Series = Vec<(String, String)>;

/// The metric that counts an app's open WebSocket connections, which the
/// app exports (`prom-client` gauge); see docs/app-contract.md.
pub const APP_WEBSOCKET_METRIC: &str = "scaleplan_app_websocket_connections";

/// BullMQ's own job counts, by `queue` and `state` (waiting, prioritized,
/// active, ...): what `Queue#exportPrometheusMetrics()` prints (BullMQ 5,
/// guide "Prometheus"). The app serves them on the /metrics Prometheus
/// already scrapes (it holds the queues it adds jobs to); every replica
/// reports the same counts, read from Redis, so the rules take the max per
/// queue.
pub const BULLMQ_JOB_COUNT: &str = "bullmq_job_count";
/// Completed jobs, by `queue`: also BullMQ's `exportPrometheusMetrics()`,
/// counted when the Worker runs with the `metrics` option.
pub const BULLMQ_COMPLETED: &str = "bullmq_job_completed_total";
/// The age of the oldest waiting job, by `queue`, in seconds: BullMQ has no
/// such metric, so the app exports it beside BullMQ's (a prom-client gauge;
/// docs/monitoring.md).
pub const OLDEST_JOB_AGE: &str = "scaleplan_queue_oldest_job_age_seconds";
/// The queue-depth alert fires past this many seconds of the workers'
/// modelled throughput waiting...
pub const QUEUE_DEPTH_SECONDS: f64 = 60.0;
/// ...and the age alert when the oldest waiting job is older than this.
pub const OLDEST_JOB_ALERT_SECONDS: u32 = 60;

/// The BullMQ queues of one notification worker, for the queue alerts.
#[derive(Clone, Debug, Serialize)]
pub struct QueueWatch {
    pub worker: String,
    pub queues: Vec<String>,
    /// Jobs waiting that make a minute of the worker's modelled
    /// throughput (replicas x concurrency / p95 latency).
    pub depth_alert: u64,
    pub age_alert_seconds: u32,
}

pub fn plan(phase: &Phase, topo: &Topology, estimate: &Estimate, next: Option<&str>) -> Monitoring {
    let write_db = topo.pgbouncer.write_db.alias.clone();
    let read_db = topo.pgbouncer.read_alias.clone();
    let with_replicas = !topo.postgres.replicas.is_empty();
    // Queries through PgBouncer, the unit the model counts: each pool's
    // database, summed over every instance. Without replicas both pools
    // reach the primary.
    // PgBouncer's SHOW STATS lists a database only once a client used it:
    // none yet is 0 queries, while the exporter is up.
    let queries = |dbs: &str| {
        format!(
            "(sum(rate(pgbouncer_stats_queries_total{{database=~\"{dbs}\"}}[1m])) or sum(pgbouncer_up) * 0)"
        )
    };
    let primary_dbs = if with_replicas {
        write_db.clone()
    } else {
        format!("{write_db}|{read_db}")
    };
    let master = topo
        .redis
        .data_nodes()
        .first()
        .map_or_else(|| super::names::redis(1), |n| n.name.clone());
    // The phase's Redis's masters: the queue Redis is a master too, with a
    // maxmemory of its own, and has its own alert.
    let on_master = match &topo.queue_redis {
        Some(q) => format!(
            "and on (node) redis_instance_info{{role=\"master\",node!=\"{}\"}}",
            q.node.name
        ),
        None => "and on (node) redis_instance_info{role=\"master\"}".to_owned(),
    };
    let cache = phase.redis.maxmemory_policy.as_str().starts_with("allkeys");
    let all_queues = super::topology::queue_names(phase);
    let push_queues = all_queues.join("|");
    let first_queue = all_queues.first().cloned().unwrap_or_default();
    let mut watches = Vec::new();
    for line in &estimate.lines {
        let s = &line.supply;
        // What one unit (replica, instance, master) supplies: the busiest
        // one is what runs out first, whatever the total says.
        let per_unit = match line.resource {
            Resource::RedisThroughput | Resource::RedisMemory => {
                s.amount / f64::from(topo.redis.masters())
            }
            _ => s.amount / f64::from(s.units.max(1)),
        };
        let supply = s.amount;
        let query_series = |db: &str, u: f64| {
            vec![(
                format!("pgbouncer_stats_queries_total{{database=\"{db}\",node=\"pgbouncer-1\"}}"),
                counter(u * supply),
            )]
        };
        let master_series = |metric: &str, values: String| {
            vec![
                (format!("{metric}{{node=\"{master}\"}}"), values),
                (
                    format!("redis_instance_info{{node=\"{master}\",role=\"master\"}}"),
                    gauge(1.0),
                ),
            ]
        };
        let (used, utilisation, source, high, half): (
            String,
            String,
            &'static str,
            Series,
            Series,
        ) = match line.resource {
            Resource::Websocket => {
                let at = |u: f64| {
                    vec![(
                        format!("{APP_WEBSOCKET_METRIC}{{job=\"app\"}}"),
                        gauge(u * per_unit),
                    )]
                };
                (
                    format!("sum({APP_WEBSOCKET_METRIC})"),
                    format!("max({APP_WEBSOCKET_METRIC}) / {per_unit}"),
                    "the app's gauge of open WebSocket connections, the busiest replica against its own limit",
                    at(0.9),
                    at(0.5),
                )
            }
            Resource::System => {
                let at = |u: f64| {
                    vec![(
                        "process_cpu_seconds_total{job=\"app\"}".to_owned(),
                        counter(u * per_unit),
                    )]
                };
                (
                    "sum(rate(process_cpu_seconds_total{job=\"app\"}[1m]))".to_owned(),
                    format!("max(rate(process_cpu_seconds_total{{job=\"app\"}}[1m])) / {per_unit}"),
                    "the app's process CPU (prom-client's default metrics), the busiest replica against the cores it serves with",
                    at(0.9),
                    at(0.5),
                )
            }
            Resource::DatabasePrimary => {
                let used = queries(&primary_dbs);
                (
                    used.clone(),
                    format!("{used} / {supply}"),
                    "queries a second through PgBouncer to the primary (prometheus-pgbouncer-exporter, SHOW STATS)",
                    query_series(&write_db, 0.9),
                    query_series(&write_db, 0.5),
                )
            }
            Resource::DatabaseReplicas => {
                let used = queries(&read_db);
                (
                    used.clone(),
                    format!("{used} / {supply}"),
                    "queries a second through PgBouncer's read pools, which the proxy balances over the replicas",
                    query_series(&read_db, 0.9),
                    query_series(&read_db, 0.5),
                )
            }
            Resource::PgbouncerClients => {
                let at = |u: f64| {
                    vec![
                        (
                            "pgbouncer_pools_client_active_connections{node=\"pgbouncer-1\"}"
                                .to_owned(),
                            gauge(u * per_unit),
                        ),
                        (
                            "pgbouncer_pools_client_waiting_connections{node=\"pgbouncer-1\"}"
                                .to_owned(),
                            gauge(0.0),
                        ),
                    ]
                };
                (
                        // A PgBouncer lists a pool only once a client used
                        // it: none yet is 0 clients, while the exporter is up.
                        "sum(pgbouncer_pools_client_active_connections + pgbouncer_pools_client_waiting_connections) or sum(pgbouncer_up) * 0".to_owned(),
                        format!(
                            "(max(sum by (node) (pgbouncer_pools_client_active_connections + pgbouncer_pools_client_waiting_connections)) or max(pgbouncer_up) * 0) / {per_unit}"
                        ),
                        "client connections on each PgBouncer (SHOW POOLS), the busiest against its max_client_conn",
                        at(0.9),
                        at(0.5),
                    )
            }
            Resource::RedisThroughput => (
                format!("sum(rate(redis_commands_processed_total[1m]) {on_master})"),
                format!("max(rate(redis_commands_processed_total[1m]) {on_master}) / {per_unit}"),
                "commands a second on each master (redis_exporter), the busiest against one node's",
                master_series("redis_commands_processed_total", counter(0.9 * per_unit)),
                master_series("redis_commands_processed_total", counter(0.5 * per_unit)),
            ),
            Resource::RedisMemory => (
                format!("sum(redis_memory_used_bytes {on_master})"),
                format!("max(redis_memory_used_bytes {on_master}) / {per_unit}"),
                "memory used on each master (redis_exporter), the fullest against its maxmemory",
                master_series("redis_memory_used_bytes", gauge(0.9 * per_unit)),
                master_series("redis_memory_used_bytes", gauge(0.5 * per_unit)),
            ),
            // Jobs in flight against the workers' slots (Little's law: a
            // send holds one for its latency). The queue balances over the
            // workers, so the total is the measure, as for the database.
            Resource::Notifications => {
                let used = format!(
                    "sum(max by (queue) ({BULLMQ_JOB_COUNT}{{queue=~\"{push_queues}\",state=\"active\"}}))"
                );
                let at = |u: f64| {
                    vec![(
                        format!(
                            "{BULLMQ_JOB_COUNT}{{queue=\"{first_queue}\",state=\"active\",job=\"app\",instance=\"app-1\"}}"
                        ),
                        gauge(u * supply),
                    )]
                };
                (
                    used.clone(),
                    format!("{used} / {supply}"),
                    "BullMQ's active job count of the notification queues (Queue#exportPrometheusMetrics, which the app serves), against the workers' replicas x concurrency",
                    at(0.9),
                    at(0.5),
                )
            }
            Resource::PushQuota => {
                let used = format!(
                    "sum(max by (queue) (rate({BULLMQ_COMPLETED}{{queue=~\"{push_queues}\"}}[1m])))"
                );
                let at = |u: f64| {
                    vec![(
                        format!(
                            "{BULLMQ_COMPLETED}{{queue=\"{first_queue}\",job=\"app\",instance=\"app-1\"}}"
                        ),
                        counter(u * supply),
                    )]
                };
                (
                    used.clone(),
                    format!("{used} / {supply}"),
                    "messages a second: jobs the notification queues complete (BullMQ's completed count, which the app serves, counted with the Worker's metrics option), one job per message",
                    at(0.9),
                    at(0.5),
                )
            }
        };
        let units = s.units;
        watches.push(Watch {
            resource: line.resource.key(),
            label: line.resource.label(),
            bottleneck: line.resource.bottleneck(),
            supply: s.amount,
            unit: s.unit,
            units,
            n_minus_one: (units > 1).then(|| f64::from(units - 1) / f64::from(units)),
            // A cache (allkeys-* eviction) sits at maxmemory by design: its
            // signal is evictions, not the memory in use.
            capacity_alerts: !(cache && line.resource == Resource::RedisMemory),
            used,
            utilisation,
            source,
            test_high: high,
            test_half: half,
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
        transition: next.map(|to| {
            super::layout::TransitionFile::Note {
                from: phase.name.as_str(),
                to,
            }
            .in_out()
        }),
        next: next.map(str::to_owned),
        database: phase.postgres.database.as_str().to_owned(),
        read_replicas: phase.postgres.read_replicas,
        slot_wal_alert_bytes: keep_mb * 1024 * 1024 * 8 / 10,
        sentinel: match &topo.redis {
            RedisLayout::Sentinel { master_name, .. } => Some(master_name.clone()),
            _ => None,
        },
        cluster: matches!(topo.redis, RedisLayout::Cluster { .. }),
        queue_redis: topo.queue_redis.as_ref().map(|q| q.node.name.clone()),
        cache_evicts: cache,
        queues: super::capacity::notification_workers(phase)
            .map(|(w, n)| QueueWatch {
                worker: w.name.as_str().to_owned(),
                queues: super::topology::worker_queues(w),
                depth_alert: (f64::from(w.replicas) * f64::from(n.concurrency)
                    / (n.p95_latency_ms / 1000.0)
                    * QUEUE_DEPTH_SECONDS)
                    .ceil() as u64,
                age_alert_seconds: OLDEST_JOB_ALERT_SECONDS,
            })
            .collect(),
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
