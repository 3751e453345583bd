//! Alerts on what breaks without using capacity up: replication, a
//! missing replica or master, a cluster without coverage, queues, and
//! exporters or targets that are down.

use super::rule::{Rule, alert_labels};
use crate::plan::capacity::Bottleneck;
use crate::plan::monitoring::{self, Monitoring, Severity};
use crate::plan::names;
use crate::render::format::thousands;
use std::collections::BTreeMap;

/// An alert on something that breaks without using capacity up.
pub(super) struct Silent {
    pub(super) name: &'static str,
    pub(super) bottleneck: Bottleneck,
    pub(super) severity: Severity,
    pub(super) expr: String,
    pub(super) for_: &'static str,
    pub(super) summary: String,
    /// Series that make it fire, for its unit test.
    pub(super) fires_on: Vec<(String, String)>,
    /// The labels its result carries beyond the rule's own.
    pub(super) result_labels: Vec<(&'static str, String)>,
}

pub(super) fn silent_alerts(m: &Monitoring) -> Vec<Silent> {
    let mut out = Vec::new();
    if m.read_replicas > 0 {
        out.push(Silent {
            name: "PostgresReplicationLag",
            bottleneck: Bottleneck::Database,
            severity: Severity::Warning,
            expr: "max by (application_name) (pg_stat_replication_pg_wal_lsn_diff{role=\"primary\"}) > 67108864".to_owned(),
            for_: "5m",
            summary: "a replica is more than 64 MB of WAL behind the primary: its reads are stale".to_owned(),
            fires_on: vec![(
                format!("pg_stat_replication_pg_wal_lsn_diff{{role=\"primary\",application_name=\"{}\"}}", names::postgres_replica(1)),
                "134217728x240".to_owned(),
            )],
            result_labels: vec![("application_name", names::postgres_replica(1))],
        });
        out.push(Silent {
            name: "PostgresReplicaMissing",
            bottleneck: Bottleneck::Database,
            severity: Severity::Critical,
            expr: format!(
                "count(pg_stat_replication_pg_wal_lsn_diff{{role=\"primary\"}}) < {} or absent(pg_stat_replication_pg_wal_lsn_diff{{role=\"primary\"}})",
                m.read_replicas
            ),
            for_: "2m",
            summary: format!(
                "fewer than {} replicas stream from the primary: reads crowd onto the rest",
                m.read_replicas
            ),
            fires_on: vec![("pg_up{role=\"primary\"}".to_owned(), "1x240".to_owned())],
            // absent() keeps the selector's equality matchers as labels.
            result_labels: vec![("role", "primary".to_owned())],
        });
    }
    out.push(Silent {
        name: "PostgresSlotHoldsWal",
        bottleneck: Bottleneck::Database,
        severity: Severity::Warning,
        expr: format!(
            "max by (slot_name) (pg_replication_slots_pg_wal_lsn_diff{{role=\"primary\"}}) > {}",
            m.slot_wal_alert_bytes
        ),
        for_: "5m",
        summary: format!(
            "a replication slot holds more than {} MB of WAL (80% of max_slot_wal_keep_size): its replica is stalled and will be cut off",
            m.slot_wal_alert_bytes / 1_048_576
        ),
        fires_on: vec![(
            "pg_replication_slots_pg_wal_lsn_diff{role=\"primary\",slot_name=\"replica_1\"}".to_owned(),
            format!("{}x240", m.slot_wal_alert_bytes * 2),
        )],
        result_labels: vec![("slot_name", "replica_1".to_owned())],
    });
    out.push(Silent {
        name: "PgBouncerClientsWaiting",
        bottleneck: Bottleneck::Database,
        severity: Severity::Warning,
        expr: "max by (node) (pgbouncer_pools_client_waiting_connections) > 0".to_owned(),
        for_: "2m",
        summary: "clients wait for a server connection: the pool is exhausted".to_owned(),
        fires_on: vec![(
            format!(
                "pgbouncer_pools_client_waiting_connections{{node=\"{}\"}}",
                names::pgbouncer(1)
            ),
            "3x240".to_owned(),
        )],
        result_labels: vec![("node", names::pgbouncer(1))],
    });
    out.push(Silent {
        name: "PgBouncerClientWaitTime",
        bottleneck: Bottleneck::Database,
        severity: Severity::Critical,
        expr: "max by (node) (pgbouncer_pools_client_maxwait_seconds) > 1".to_owned(),
        for_: "1m",
        summary: "the oldest waiting client has waited over a second for a server connection"
            .to_owned(),
        fires_on: vec![(
            format!(
                "pgbouncer_pools_client_maxwait_seconds{{node=\"{}\"}}",
                names::pgbouncer(1)
            ),
            "4x240".to_owned(),
        )],
        result_labels: vec![("node", names::pgbouncer(1))],
    });
    // A cache that evicts (allkeys-*) does so by design.
    if !m.cache_evicts {
        out.push(Silent {
            name: "RedisEvicting",
            bottleneck: Bottleneck::Redis,
            severity: Severity::Warning,
            expr: "sum(rate(redis_evicted_keys_total[5m])) > 0".to_owned(),
            for_: "10m",
            summary: "Redis evicts keys: maxmemory is full".to_owned(),
            fires_on: vec![(
                format!("redis_evicted_keys_total{{node=\"{}\"}}", names::redis(1)),
                "0+10x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
    }
    // The queue Redis never evicts: at maxmemory it refuses new jobs. Its
    // alert is on its own limit (redis_exporter's redis_memory_max_bytes),
    // not the phase's Redis's.
    if let Some(node) = &m.queue_redis {
        out.push(Silent {
            name: "QueueRedisNearlyFull",
            bottleneck: Bottleneck::Redis,
            severity: Severity::Critical,
            expr: format!(
                "max(redis_memory_used_bytes{{node=\"{node}\"}} / redis_memory_max_bytes{{node=\"{node}\"}}) > 0.9"
            ),
            for_: "5m",
            summary: "the queue Redis holds over 90% of its maxmemory: at 100% it refuses new jobs (noeviction); drain the queues, remove finished jobs, or raise queue_redis.maxmemory_mb".to_owned(),
            fires_on: vec![
                (
                    format!("redis_memory_used_bytes{{node=\"{node}\"}}"),
                    "95x240".to_owned(),
                ),
                (
                    format!("redis_memory_max_bytes{{node=\"{node}\"}}"),
                    "100x240".to_owned(),
                ),
            ],
            result_labels: Vec::new(),
        });
    }
    out.push(Silent {
        name: "RedisRejectingConnections",
        bottleneck: Bottleneck::Redis,
        severity: Severity::Critical,
        expr: "sum(rate(redis_rejected_connections_total[5m])) > 0".to_owned(),
        for_: "1m",
        summary: "Redis refuses connections: maxclients is reached".to_owned(),
        fires_on: vec![(
            format!(
                "redis_rejected_connections_total{{node=\"{}\"}}",
                names::redis(1)
            ),
            "0+5x240".to_owned(),
        )],
        result_labels: Vec::new(),
    });
    if let Some(master) = &m.sentinel {
        out.push(Silent {
            name: "SentinelMasterWithoutReplicas",
            bottleneck: Bottleneck::Redis,
            severity: Severity::Critical,
            expr: format!(
                "min(redis_sentinel_master_ok_slaves{{master_name=\"{master}\"}}) < 1"
            ),
            for_: "1m",
            summary: "the sentinels see no healthy replica: a failover has nowhere to go and writes needing a replica stop".to_owned(),
            fires_on: vec![(
                format!(
                    "redis_sentinel_master_ok_slaves{{master_name=\"{master}\",node=\"{}\"}}",
                    names::sentinel(1)
                ),
                "0x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
        out.push(Silent {
            name: "SentinelQuorumLost",
            bottleneck: Bottleneck::Redis,
            severity: Severity::Critical,
            expr: "min(redis_sentinel_master_ckquorum_status) < 1".to_owned(),
            for_: "1m",
            summary: "the sentinels cannot reach their quorum: no failover can happen".to_owned(),
            fires_on: vec![(
                format!(
                    "redis_sentinel_master_ckquorum_status{{node=\"{}\"}}",
                    names::sentinel(1)
                ),
                "0x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
    }
    if m.cluster {
        out.push(Silent {
            name: "RedisClusterDown",
            bottleneck: Bottleneck::Redis,
            severity: Severity::Critical,
            expr: "min(redis_cluster_state) < 1".to_owned(),
            for_: "1m",
            summary: "a Redis Cluster node reports the cluster down: some slots have no master"
                .to_owned(),
            fires_on: vec![(
                format!(
                    "redis_cluster_state{{node=\"{}\"}}",
                    names::cluster_node(1, 1)
                ),
                "0x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
    }
    for q in &m.queues {
        let queues = q.queues.join("|");
        let first = q.queues.first().cloned().unwrap_or_default();
        out.push(Silent {
            name: "BullmqQueueDepth",
            bottleneck: Bottleneck::Notifications,
            severity: Severity::Warning,
            // Waiting and prioritized jobs are the backlog; every process
            // that exports a queue reports the same counts, from Redis.
            expr: format!(
                "max by (queue) (sum by (queue, instance) ({count}{{queue=~\"{queues}\",state=~\"waiting|prioritized\"}})) > {}",
                q.depth_alert,
                count = monitoring::BULLMQ_JOB_COUNT,
            ),
            for_: "5m",
            summary: format!(
                "more than {} jobs wait in a queue of worker {}: over {:.0} s of its modelled throughput, so notifications go out late",
                thousands(q.depth_alert),
                q.worker,
                monitoring::QUEUE_DEPTH_SECONDS
            ),
            fires_on: vec![(
                format!(
                    "{}{{queue=\"{first}\",state=\"waiting\",job=\"app\",instance=\"app-1\"}}",
                    monitoring::BULLMQ_JOB_COUNT
                ),
                format!("{}x240", q.depth_alert * 2),
            )],
            result_labels: vec![("queue", first.clone())],
        });
        out.push(Silent {
            name: "BullmqOldestJobAge",
            bottleneck: Bottleneck::Notifications,
            severity: Severity::Critical,
            expr: format!(
                "max by (queue) ({}{{queue=~\"{queues}\"}}) > {}",
                monitoring::OLDEST_JOB_AGE,
                q.age_alert_seconds
            ),
            for_: "2m",
            summary: format!(
                "the oldest waiting job in a queue of worker {} has waited over {} s: the workers are stalled or too few",
                q.worker, q.age_alert_seconds
            ),
            fires_on: vec![(
                format!(
                    "{}{{queue=\"{first}\",job=\"app\",instance=\"app-1\"}}",
                    monitoring::OLDEST_JOB_AGE
                ),
                format!("{}x240", q.age_alert_seconds * 5),
            )],
            result_labels: vec![("queue", first.clone())],
        });
        // The age is the app's own gauge: an app that does not serve it
        // would leave BullmqOldestJobAge unable to fire, and that is no
        // silence. absent() per queue names the queue.
        out.push(Silent {
            name: "BullmqOldestJobAgeUnmeasured",
            bottleneck: Bottleneck::Notifications,
            severity: Severity::Warning,
            expr: q
                .queues
                .iter()
                .map(|queue| format!("absent({}{{queue=\"{queue}\"}})", monitoring::OLDEST_JOB_AGE))
                .collect::<Vec<_>>()
                .join(" or "),
            for_: "10m",
            summary: format!(
                "no process serves {} for a queue of worker {}: BullmqOldestJobAge cannot fire until the app exports it",
                monitoring::OLDEST_JOB_AGE,
                q.worker
            ),
            // BullMQ's own counts are there; the app's gauge is there for
            // every queue but the first.
            fires_on: std::iter::once((
                format!(
                    "{}{{queue=\"{first}\",state=\"waiting\",job=\"app\",instance=\"app-1\"}}",
                    monitoring::BULLMQ_JOB_COUNT
                ),
                "5x240".to_owned(),
            ))
            .chain(q.queues.iter().skip(1).map(|queue| {
                (
                    format!(
                        "{}{{queue=\"{queue}\",job=\"app\",instance=\"app-1\"}}",
                        monitoring::OLDEST_JOB_AGE
                    ),
                    "1x240".to_owned(),
                )
            }))
            .collect(),
            result_labels: vec![("queue", first)],
        });
    }
    out.push(Silent {
        name: "ScaleplanServerDown",
        bottleneck: Bottleneck::System,
        severity: Severity::Critical,
        // Exporters answer when their server does not, with *_up 0; and a
        // server that is gone takes its series with it.
        expr: "pg_up == 0 or pgbouncer_up == 0 or redis_up == 0".to_owned(),
        for_: "1m",
        summary: "an exporter cannot reach its server: the server is down or refuses it".to_owned(),
        fires_on: vec![(
            format!(
                "pg_up{{job=\"postgres\",instance=\"x\",node=\"{}\"}}",
                names::POSTGRES_PRIMARY
            ),
            "0x240".to_owned(),
        )],
        result_labels: vec![
            ("job", "postgres".to_owned()),
            ("instance", "x".to_owned()),
            ("node", names::POSTGRES_PRIMARY.to_owned()),
        ],
    });
    out.push(Silent {
        name: "ScaleplanTargetDown",
        bottleneck: Bottleneck::System,
        severity: Severity::Critical,
        expr: "up == 0".to_owned(),
        for_: "2m",
        summary: "Prometheus cannot scrape an exporter: what it watches is unseen".to_owned(),
        fires_on: vec![(
            format!(
                "up{{job=\"redis\",instance=\"x\",node=\"{}\"}}",
                names::redis(1)
            ),
            "0x240".to_owned(),
        )],
        result_labels: vec![
            ("job", "redis".to_owned()),
            ("instance", "x".to_owned()),
            ("node", names::redis(1)),
        ],
    });
    out
}

pub(super) fn silent_rule(m: &Monitoring, s: &Silent) -> Rule {
    Rule {
        kind: "alert",
        name: s.name.to_owned(),
        expr: s.expr.clone(),
        wait: Some(s.for_),
        labels: alert_labels(m, s.severity, s.bottleneck),
        annotations: BTreeMap::from([("summary", s.summary.clone())]),
    }
}
