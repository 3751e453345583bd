//! The monitoring of a phase: Prometheus's rules (recording the use,
//! modelled capacity and utilisation of each resource of the capacity
//! model; alerting at the model's thresholds, on the N-1 rule, on the
//! trend, and on what breaks silently), their promtool unit tests, the
//! Grafana dashboard, and each target's Prometheus configuration.

use super::artifacts::Artifacts;
use super::format::thousands;
use super::templates as t;
use super::{Renderer, generated};
use crate::plan::PlannedPhase;
use crate::plan::layout::{PhaseFile, TargetFile};
use crate::plan::monitoring::{self, Monitoring, Watch};
use crate::plan::names;
use crate::plan::target::Target;
use crate::plan::topology::{PGBOUNCER_EXPORTER, RedisLayout, Topology};
use minijinja::context;
use minijinja::value::{Serde, Value};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
struct Rule {
    /// "record" or "alert".
    kind: &'static str,
    name: String,
    expr: String,
    /// How long it must hold before firing.
    wait: Option<&'static str>,
    labels: BTreeMap<&'static str, String>,
    annotations: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Group {
    name: &'static str,
    rules: Vec<Rule>,
}

/// One promtool test: input series, and what each alert does at a time.
#[derive(Serialize)]
struct Test {
    name: String,
    series: Vec<(String, String)>,
    eval_time: &'static str,
    alerts: Vec<Expect>,
}

#[derive(Serialize)]
struct Expect {
    alertname: String,
    /// Labels and annotations of each alert expected to fire; empty: none.
    fire: Vec<Fired>,
}

#[derive(Serialize, Clone)]
struct Fired {
    labels: BTreeMap<&'static str, String>,
    annotations: BTreeMap<&'static str, String>,
}

fn record(name: &str, expr: String, w: &Watch) -> Rule {
    Rule {
        kind: "record",
        name: name.to_owned(),
        expr,
        wait: None,
        labels: BTreeMap::from([
            ("resource", w.resource.to_owned()),
            ("bottleneck", w.bottleneck.to_owned()),
        ]),
        annotations: BTreeMap::new(),
    }
}

fn show(v: f64, unit: &str) -> String {
    if unit == "bytes" {
        format!("{} MB", thousands((v / 1_048_576.0).round() as u64))
    } else if v.fract() == 0.0 || v >= 100.0 {
        format!("{} {unit}", thousands(v.round() as u64))
    } else {
        format!("{v:.2} {unit}")
    }
}

/// Where to go from here, for every capacity alert.
fn next_step(m: &Monitoring) -> String {
    match (&m.next, &m.transition) {
        (Some(next), Some(plan)) => format!(
            "The next phase is {next}: review {plan} and run `scaleplan migrate {next}` (local) or apply its plan."
        ),
        _ => format!(
            "{} is the last phase: add a larger one to the phases directory.",
            m.phase
        ),
    }
}

struct CapacityAlert {
    name: &'static str,
    severity: &'static str,
    expr: String,
    for_: &'static str,
    summary: String,
}

/// An input missing is not "no alert": a resource nobody measures says so.
fn unmeasured_rule(m: &Monitoring, w: &Watch) -> Rule {
    Rule {
        kind: "alert",
        name: "ScaleplanUnmeasured".to_owned(),
        expr: format!("absent(scaleplan:use{{resource=\"{}\"}})", w.resource),
        wait: Some("10m"),
        labels: {
            let mut l = alert_labels(m, "warning", w.bottleneck);
            l.insert("resource", w.resource.to_owned());
            l
        },
        annotations: BTreeMap::from([(
            "summary",
            format!(
                "{} is not measured: {} is missing, so no capacity alert can fire for it",
                w.label, w.source
            ),
        )]),
    }
}

/// "WebSocket's", but "notifications'" and "database replicas'".
fn possessive(label: &str) -> String {
    if label.ends_with('s') {
        format!("{label}'")
    } else {
        format!("{label}'s")
    }
}

fn capacity_alerts(m: &Monitoring, w: &Watch) -> Vec<CapacityAlert> {
    if !w.capacity_alerts {
        return Vec::new();
    }
    let sel = format!("scaleplan:utilisation{{resource=\"{}\"}}", w.resource);
    let of = format!(
        "{}'s modelled {} ({})",
        m.phase,
        w.label,
        show(w.supply, w.unit)
    );
    let mut out = vec![
        CapacityAlert {
            name: "ScaleplanCapacityWarning",
            severity: "warning",
            expr: format!("{sel} > {}", m.warning),
            for_: "5m",
            summary: format!("{} above {:.0}% of {of}", w.label, m.warning * 100.0),
        },
        CapacityAlert {
            name: "ScaleplanCapacityCritical",
            severity: "critical",
            expr: format!("{sel} > {}", m.critical),
            for_: "5m",
            summary: format!("{} above {:.0}% of {of}", w.label, m.critical * 100.0),
        },
        CapacityAlert {
            name: "ScaleplanCapacityExhaustion",
            severity: "warning",
            // The trend of the daily peaks, not of the hours: a morning's
            // climb projected over a week would fire every day.
            expr: format!(
                "predict_linear(max_over_time({sel}[1d])[14d:1h], {}) > 1",
                m.predict_seconds
            ),
            for_: "1h",
            summary: format!(
                "{} daily peaks, at their trend, run out of {of} within 7 days",
                possessive(w.label)
            ),
        },
    ];
    if let Some(share) = w.n_minus_one {
        out.push(CapacityAlert {
            name: "ScaleplanCapacityNMinusOne",
            severity: "warning",
            expr: format!("{sel} > {share:.4}"),
            for_: "5m",
            summary: format!(
                "{}: losing one of its {} would leave less than the load needs ({of})",
                w.label, w.units
            ),
        });
    }
    out
}

fn alert(m: &Monitoring, w: &Watch, a: &CapacityAlert) -> Rule {
    Rule {
        kind: "alert",
        name: a.name.to_owned(),
        expr: a.expr.clone(),
        wait: Some(a.for_),
        labels: {
            let mut l = alert_labels(m, a.severity, w.bottleneck);
            l.insert("resource", w.resource.to_owned());
            l
        },
        annotations: BTreeMap::from([
            ("summary", a.summary.clone()),
            (
                "description",
                format!("Measured: {}. {}", w.source, next_step(m)),
            ),
        ]),
    }
}

fn alert_labels(
    m: &Monitoring,
    severity: &str,
    bottleneck: &str,
) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("severity", severity.to_owned()),
        ("phase", m.phase.clone()),
        ("bottleneck", bottleneck.to_owned()),
    ])
}

/// An alert on something that breaks without using capacity up.
struct Silent {
    name: &'static str,
    bottleneck: &'static str,
    severity: &'static str,
    expr: String,
    for_: &'static str,
    summary: String,
    /// Series that make it fire, for its unit test.
    fires_on: Vec<(String, String)>,
    /// The labels its result carries beyond the rule's own.
    result_labels: Vec<(&'static str, String)>,
}

fn silent_alerts(m: &Monitoring) -> Vec<Silent> {
    let mut out = Vec::new();
    if m.read_replicas > 0 {
        out.push(Silent {
            name: "PostgresReplicationLag",
            bottleneck: "database",
            severity: "warning",
            expr: "max by (application_name) (pg_stat_replication_pg_wal_lsn_diff{role=\"primary\"}) > 67108864".to_owned(),
            for_: "5m",
            summary: "a replica is more than 64 MB of WAL behind the primary: its reads are stale".to_owned(),
            fires_on: vec![(
                "pg_stat_replication_pg_wal_lsn_diff{role=\"primary\",application_name=\"postgres-replica-1\"}".to_owned(),
                "134217728x240".to_owned(),
            )],
            result_labels: vec![("application_name", "postgres-replica-1".to_owned())],
        });
        out.push(Silent {
            name: "PostgresReplicaMissing",
            bottleneck: "database",
            severity: "critical",
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
        bottleneck: "database",
        severity: "warning",
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
        bottleneck: "database",
        severity: "warning",
        expr: "max by (node) (pgbouncer_pools_client_waiting_connections) > 0".to_owned(),
        for_: "2m",
        summary: "clients wait for a server connection: the pool is exhausted".to_owned(),
        fires_on: vec![(
            "pgbouncer_pools_client_waiting_connections{node=\"pgbouncer-1\"}".to_owned(),
            "3x240".to_owned(),
        )],
        result_labels: vec![("node", "pgbouncer-1".to_owned())],
    });
    out.push(Silent {
        name: "PgBouncerClientWaitTime",
        bottleneck: "database",
        severity: "critical",
        expr: "max by (node) (pgbouncer_pools_client_maxwait_seconds) > 1".to_owned(),
        for_: "1m",
        summary: "the oldest waiting client has waited over a second for a server connection"
            .to_owned(),
        fires_on: vec![(
            "pgbouncer_pools_client_maxwait_seconds{node=\"pgbouncer-1\"}".to_owned(),
            "4x240".to_owned(),
        )],
        result_labels: vec![("node", "pgbouncer-1".to_owned())],
    });
    out.push(Silent {
        name: "RedisEvicting",
        bottleneck: "redis",
        severity: "warning",
        expr: "sum(rate(redis_evicted_keys_total[5m])) > 0".to_owned(),
        for_: "10m",
        summary: "Redis evicts keys: maxmemory is full".to_owned(),
        fires_on: vec![(
            "redis_evicted_keys_total{node=\"redis-1\"}".to_owned(),
            "0+10x240".to_owned(),
        )],
        result_labels: Vec::new(),
    });
    out.push(Silent {
        name: "RedisRejectingConnections",
        bottleneck: "redis",
        severity: "critical",
        expr: "sum(rate(redis_rejected_connections_total[5m])) > 0".to_owned(),
        for_: "1m",
        summary: "Redis refuses connections: maxclients is reached".to_owned(),
        fires_on: vec![(
            "redis_rejected_connections_total{node=\"redis-1\"}".to_owned(),
            "0+5x240".to_owned(),
        )],
        result_labels: Vec::new(),
    });
    if let Some(master) = &m.sentinel {
        out.push(Silent {
            name: "SentinelMasterWithoutReplicas",
            bottleneck: "redis",
            severity: "critical",
            expr: format!(
                "min(redis_sentinel_master_ok_slaves{{master_name=\"{master}\"}}) < 1"
            ),
            for_: "1m",
            summary: "the sentinels see no healthy replica: a failover has nowhere to go and writes needing a replica stop".to_owned(),
            fires_on: vec![(
                format!("redis_sentinel_master_ok_slaves{{master_name=\"{master}\",node=\"sentinel-1\"}}"),
                "0x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
        out.push(Silent {
            name: "SentinelQuorumLost",
            bottleneck: "redis",
            severity: "critical",
            expr: "min(redis_sentinel_master_ckquorum_status) < 1".to_owned(),
            for_: "1m",
            summary: "the sentinels cannot reach their quorum: no failover can happen".to_owned(),
            fires_on: vec![(
                "redis_sentinel_master_ckquorum_status{node=\"sentinel-1\"}".to_owned(),
                "0x240".to_owned(),
            )],
            result_labels: Vec::new(),
        });
    }
    if m.cluster {
        out.push(Silent {
            name: "RedisClusterDown",
            bottleneck: "redis",
            severity: "critical",
            expr: "min(redis_cluster_state) < 1".to_owned(),
            for_: "1m",
            summary: "a Redis Cluster node reports the cluster down: some slots have no master"
                .to_owned(),
            fires_on: vec![(
                "redis_cluster_state{node=\"redis-shard1-1\"}".to_owned(),
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
            bottleneck: "notifications",
            severity: "warning",
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
            bottleneck: "notifications",
            severity: "critical",
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
            bottleneck: "notifications",
            severity: "warning",
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
        bottleneck: "system",
        severity: "critical",
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
        bottleneck: "system",
        severity: "critical",
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

fn silent_rule(m: &Monitoring, s: &Silent) -> Rule {
    Rule {
        kind: "alert",
        name: s.name.to_owned(),
        expr: s.expr.clone(),
        wait: Some(s.for_),
        labels: alert_labels(m, s.severity, s.bottleneck),
        annotations: BTreeMap::from([("summary", s.summary.clone())]),
    }
}

fn groups(m: &Monitoring) -> Vec<Group> {
    let mut recording = Vec::new();
    let mut capacity = Vec::new();
    for w in &m.watches {
        recording.push(record("scaleplan:use", w.used.clone(), w));
        recording.push(record(
            "scaleplan:capacity",
            format!("vector({})", w.supply),
            w,
        ));
        recording.push(record("scaleplan:utilisation", w.utilisation.clone(), w));
        for a in capacity_alerts(m, w) {
            capacity.push(alert(m, w, &a));
        }
        capacity.push(unmeasured_rule(m, w));
    }
    let silent = silent_alerts(m).iter().map(|s| silent_rule(m, s)).collect();
    vec![
        Group {
            name: "scaleplan-capacity-recording",
            rules: recording,
        },
        Group {
            name: "scaleplan-capacity-alerts",
            rules: capacity,
        },
        Group {
            name: "scaleplan-silent-failures",
            rules: silent,
        },
    ]
}

/// Every capacity alert at 90% and at 50% of each resource, the trend, and
/// each silent-failure alert on the series that should set it off.
fn tests(m: &Monitoring) -> Vec<Test> {
    let mut out = Vec::new();
    for w in &m.watches {
        let alerts = capacity_alerts(m, w);
        let fired = |a: &CapacityAlert| Fired {
            labels: {
                let mut l = alert_labels(m, a.severity, w.bottleneck);
                l.insert("resource", w.resource.to_owned());
                l
            },
            annotations: alert(m, w, a).annotations,
        };
        out.push(Test {
            name: format!("{} at 90% of its modelled capacity", w.label),
            series: w.test_high.clone(),
            eval_time: "10m",
            alerts: alerts
                .iter()
                .filter_map(|a| {
                    let fires = match a.name {
                        "ScaleplanCapacityExhaustion" => return None,
                        // Losing one of N leaves (N-1)/N: at 90% that is
                        // too little only while (N-1)/N is below it; too
                        // close to call, it is not checked here.
                        "ScaleplanCapacityNMinusOne" => {
                            let share = w.n_minus_one?;
                            if (share - 0.9).abs() < 0.01 {
                                return None;
                            }
                            share < 0.9
                        }
                        _ => true,
                    };
                    Some(Expect {
                        alertname: a.name.to_owned(),
                        fire: if fires { vec![fired(a)] } else { Vec::new() },
                    })
                })
                .collect(),
        });
        out.push(Test {
            name: format!("{} at 50%: no alert", w.label),
            series: w.test_half.clone(),
            eval_time: "10m",
            alerts: alerts
                .iter()
                .filter(|a| a.severity == "critical" || a.name == "ScaleplanCapacityWarning")
                .map(|a| Expect {
                    alertname: a.name.to_owned(),
                    fire: Vec::new(),
                })
                .collect(),
        });
    }
    // A trend: the WebSocket connections climb from 10% to 60% of the
    // supply over 6 hours; at that rate they run out within the week.
    if let Some(w) = m.watches.iter().find(|w| w.resource == "websocket") {
        let per = w.supply / f64::from(w.units.max(1));
        let start = per * 0.1;
        let step = per * 0.5 / 1440.0;
        let a = capacity_alerts(m, w)
            .into_iter()
            .find(|a| a.name == "ScaleplanCapacityExhaustion")
            .expect("every resource has a trend alert");
        out.push(Test {
            name: format!("{} rising: exhausted within the week", w.label),
            series: vec![(
                format!(
                    "{}{{job=\"app\"}}",
                    crate::plan::monitoring::APP_WEBSOCKET_METRIC
                ),
                format!("{start}+{step}x2200"),
            )],
            eval_time: "9h",
            alerts: vec![Expect {
                alertname: a.name.to_owned(),
                fire: vec![Fired {
                    labels: {
                        let mut l = alert_labels(m, a.severity, w.bottleneck);
                        l.insert("resource", w.resource.to_owned());
                        l
                    },
                    annotations: alert(m, w, &a).annotations,
                }],
            }],
        });
    }
    // Nothing measured at all: every resource says so.
    out.push(Test {
        name: "nothing measured".to_owned(),
        series: vec![("up{job=\"prometheus\"}".to_owned(), "1x240".to_owned())],
        eval_time: "20m",
        alerts: vec![Expect {
            alertname: "ScaleplanUnmeasured".to_owned(),
            fire: m
                .watches
                .iter()
                .map(|w| {
                    let rule = unmeasured_rule(m, w);
                    Fired {
                        labels: rule.labels,
                        annotations: rule.annotations,
                    }
                })
                .collect(),
        }],
    });
    // An idle PgBouncer lists no pool and no database yet: its resources
    // read 0 while its exporter is up, and only the others are unmeasured.
    out.push(Test {
        name: "an idle PgBouncer is measured".to_owned(),
        series: vec![
            ("up{job=\"prometheus\"}".to_owned(), "1x240".to_owned()),
            (
                "pgbouncer_up{node=\"pgbouncer-1\"}".to_owned(),
                "1x240".to_owned(),
            ),
        ],
        eval_time: "20m",
        alerts: vec![Expect {
            alertname: "ScaleplanUnmeasured".to_owned(),
            fire: m
                .watches
                .iter()
                .filter(|w| !w.used.contains("pgbouncer_"))
                .map(|w| {
                    let rule = unmeasured_rule(m, w);
                    Fired {
                        labels: rule.labels,
                        annotations: rule.annotations,
                    }
                })
                .collect(),
        }],
    });
    // A queue that drains: a backlog under the depth alert and jobs that
    // wait under the age alert set off neither. Every app replica reports
    // the same counts (they come from Redis): two replicas here, so rules
    // that added them up instead of taking one would fire.
    for q in &m.queues {
        let series = q
            .queues
            .iter()
            .flat_map(|queue| {
                ["app-1", "app-2"].into_iter().flat_map(move |instance| {
                    [
                        (
                            format!(
                                "{}{{queue=\"{queue}\",state=\"waiting\",job=\"app\",instance=\"{instance}\"}}",
                                monitoring::BULLMQ_JOB_COUNT
                            ),
                            format!("{}x240", q.depth_alert * 2 / 3),
                        ),
                        (
                            format!(
                                "{}{{queue=\"{queue}\",job=\"app\",instance=\"{instance}\"}}",
                                monitoring::OLDEST_JOB_AGE
                            ),
                            format!("{}x240", q.age_alert_seconds * 2 / 3),
                        ),
                    ]
                })
            })
            .collect();
        out.push(Test {
            name: format!("the queues of worker {} drain: no queue alert", q.worker),
            series,
            eval_time: "20m",
            alerts: [
                "BullmqQueueDepth",
                "BullmqOldestJobAge",
                "BullmqOldestJobAgeUnmeasured",
            ]
            .into_iter()
            .map(|a| Expect {
                alertname: a.to_owned(),
                fire: Vec::new(),
            })
            .collect(),
        });
    }
    for s in silent_alerts(m) {
        let mut labels = alert_labels(m, s.severity, s.bottleneck);
        for (k, v) in &s.result_labels {
            labels.insert(k, v.clone());
        }
        out.push(Test {
            name: format!("{} fires", s.name),
            series: s.fires_on.clone(),
            eval_time: "20m",
            alerts: vec![Expect {
                alertname: s.name.to_owned(),
                fire: vec![Fired {
                    labels,
                    annotations: BTreeMap::from([("summary", s.summary.clone())]),
                }],
            }],
        });
    }
    out
}

#[derive(Serialize)]
struct RulesCtx {
    groups: Vec<Group>,
    warning: f64,
    critical: f64,
}

fn rules_ctx(m: &Monitoring) -> RulesCtx {
    RulesCtx {
        groups: groups(m),
        warning: m.warning,
        critical: m.critical,
    }
}

#[derive(Serialize)]
struct TestsCtx {
    tests: Vec<Test>,
}

/// A scrape target: an address and the labels that name the node.
#[derive(Serialize)]
struct Scrape {
    job: &'static str,
    /// The exporter names each node itself (the PgBouncer exporter's
    /// `node` label): keep its labels over the target's.
    honor_labels: bool,
    /// A service found by DNS (every replica of the app in Compose: the
    /// service name resolves to each container), scraped on this port.
    dns: Option<(String, u16)>,
    /// Set for exporters that take the target as a parameter (redis).
    exporter: Option<String>,
    targets: Vec<Target_>,
}

#[derive(Serialize)]
struct Target_ {
    address: String,
    node: String,
    /// The label beside `node` that says what it is: `role` for
    /// PostgreSQL (primary, replica), `component` for Redis, whose
    /// exporter has a `role` label of its own (master, slave).
    kind_label: &'static str,
    kind: &'static str,
}

#[derive(Serialize)]
struct PrometheusCtx<'a> {
    phase: &'a str,
    scrape_interval: &'static str,
    rules: &'static str,
    jobs: Vec<Scrape>,
}

#[derive(Serialize)]
struct PgbouncerExporterCtx {
    host: String,
    port: u16,
    bouncers: Vec<(String, String, u16)>,
    admin_var: &'static str,
}

fn scrape_jobs(topo: &Topology) -> Vec<Scrape> {
    let e = &topo.monitor;
    let mut jobs = Vec::new();
    jobs.push(Scrape {
        job: "postgres",
        honor_labels: false,
        dns: None,
        exporter: None,
        targets: e
            .postgres_exporters
            .iter()
            .map(|x| Target_ {
                address: x.endpoint.to_string(),
                node: x.node.clone(),
                kind_label: "role",
                kind: if x.node == topo.postgres.primary.name {
                    "primary"
                } else {
                    "replica"
                },
            })
            .collect(),
    });
    jobs.push(Scrape {
        job: "pgbouncer",
        honor_labels: true,
        dns: None,
        exporter: None,
        targets: vec![Target_ {
            address: e.pgbouncer_exporter.to_string(),
            node: PGBOUNCER_EXPORTER.to_owned(),
            kind_label: "component",
            kind: "pgbouncer",
        }],
    });
    let mut redis: Vec<Target_> = topo
        .redis
        .data_nodes()
        .iter()
        .map(|n| Target_ {
            address: format!("redis://{}:{}", n.endpoint.host, n.endpoint.port),
            node: n.name.clone(),
            kind_label: "component",
            kind: "redis",
        })
        .collect();
    if let RedisLayout::Sentinel { sentinels, .. } = &topo.redis {
        redis.extend(sentinels.iter().map(|n| Target_ {
            address: format!("redis://{}:{}", n.endpoint.host, n.endpoint.port),
            node: n.name.clone(),
            kind_label: "component",
            kind: "sentinel",
        }));
    }
    // The app's own metrics (WebSocket connections, CPU): every replica,
    // where the target runs the app.
    if !matches!(topo.target, Target::Local { .. }) {
        jobs.push(Scrape {
            job: "app",
            honor_labels: false,
            dns: Some((topo.app.name.clone(), topo.app.port)),
            exporter: None,
            targets: Vec::new(),
        });
    }
    jobs.push(Scrape {
        job: "redis",
        honor_labels: false,
        dns: None,
        exporter: Some(e.redis_exporter.to_string()),
        targets: redis,
    });
    jobs
}

/// The Grafana dashboard: a row per resource, the measured use beside the
/// modelled capacity and the alert thresholds.
pub fn dashboard(m: &Monitoring, g: &crate::render::notice::Generated) -> String {
    let mut panels = Vec::new();
    let mut y = 0;
    for (i, w) in m.watches.iter().enumerate() {
        panels.push(serde_json::json!({
            "type": "row",
            "title": w.label,
            "id": 100 + i,
            "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }));
        y += 1;
        let sel = format!("{{resource=\"{}\"}}", w.resource);
        panels.push(serde_json::json!({
            "type": "timeseries",
            "title": format!("{}: use and modelled capacity ({})", w.label, w.unit),
            "id": 200 + i,
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"h": 8, "w": 16, "x": 0, "y": y},
            "description": format!("Measured: {}. Modelled: {} (scaleplan capacity).", w.source, show(w.supply, w.unit)),
            "fieldConfig": {"defaults": {"unit": grafana_unit(w.unit)}, "overrides": []},
            "targets": [
                {"refId": "A", "expr": format!("scaleplan:use{sel}"), "legendFormat": "measured"},
                {"refId": "B", "expr": format!("scaleplan:capacity{sel}"), "legendFormat": "modelled capacity"},
                {"refId": "C", "expr": format!("scaleplan:capacity{sel} * {}", m.warning), "legendFormat": "warning"},
                {"refId": "D", "expr": format!("scaleplan:capacity{sel} * {}", m.critical), "legendFormat": "critical"},
            ],
        }));
        panels.push(serde_json::json!({
            "type": "gauge",
            "title": format!("{}: utilisation", w.label),
            "id": 300 + i,
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"h": 8, "w": 8, "x": 16, "y": y},
            "fieldConfig": {"defaults": {
                "unit": "percentunit", "min": 0, "max": 1,
                "thresholds": {"mode": "absolute", "steps": [
                    {"color": "green", "value": null},
                    {"color": "orange", "value": m.warning},
                    {"color": "red", "value": m.critical},
                ]},
            }, "overrides": []},
            "targets": [{"refId": "A", "expr": format!("scaleplan:utilisation{sel}")}],
        }));
        y += 8;
    }
    // JSON has no comments: the notice is the first two keys.
    let notice = g.lines("");
    let (first, second) = notice.split_once('\n').unwrap_or((&notice, ""));
    let doc = serde_json::json!({
        "__generated": first.trim(),
        "__generated_2": second.trim(),
        "uid": format!("scaleplan-{}", m.phase),
        "title": format!("scaleplan: {} capacity", m.phase),
        "tags": ["scaleplan", m.phase],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": panels,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn grafana_unit(unit: &str) -> &'static str {
    match unit {
        "bytes" => "bytes",
        "queries/s" | "ops/s" | "messages/s" => "ops",
        "cores" => "none",
        _ => "short",
    }
}

impl Renderer {
    /// monitoring/: the rules, their tests and the dashboard, which every
    /// target shares.
    pub(super) fn render_monitoring(
        &self,
        phase: &PlannedPhase,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let g = generated(phase);
        let m = &phase.monitoring;
        let rules = self.render(t::PROMETHEUS_RULES, &g, rules_ctx(&m))?;
        files.insert(PhaseFile::Rules.rel().to_owned(), rules);
        files.insert(
            PhaseFile::RuleTests.rel().to_owned(),
            self.render(t::PROMETHEUS_RULES_TEST, &g, TestsCtx { tests: tests(&m) })?,
        );
        files.insert(PhaseFile::Dashboard.rel().to_owned(), dashboard(&m, &g));
        Ok(())
    }

    /// A target's monitoring/: its Prometheus configuration (the rules
    /// beside it) and the PgBouncer exporter's.
    pub(super) fn render_target_monitoring(
        &self,
        phase: &PlannedPhase,
        topo: &Topology,
        files: &mut Artifacts,
    ) -> anyhow::Result<()> {
        let g = generated(phase);
        let m = &phase.monitoring;
        let local = matches!(topo.target, Target::Local { .. });
        files.insert(
            TargetFile::Prometheus.of(topo.target),
            self.render(
                t::PROMETHEUS_YML,
                &g,
                PrometheusCtx {
                    phase: phase.name(),
                    // Quicker feedback on a laptop; the usual 15 s elsewhere.
                    scrape_interval: if local { "5s" } else { "15s" },
                    rules: "rules.yml",
                    jobs: scrape_jobs(topo),
                },
            )?,
        );
        files.insert(
            TargetFile::Rules.of(topo.target),
            self.render(t::PROMETHEUS_RULES, &g, rules_ctx(&m))?,
        );
        files.insert(
            TargetFile::PgbouncerExporter.of(topo.target),
            self.render(
                t::PGBOUNCER_EXPORTER_YML,
                &g,
                PgbouncerExporterCtx {
                    host: if local { "127.0.0.1" } else { "0.0.0.0" }.to_owned(),
                    port: topo.monitor.pgbouncer_exporter.port,
                    bouncers: topo
                        .pgbouncer
                        .instances
                        .iter()
                        .map(|p| (p.name.clone(), p.endpoint.host.clone(), p.endpoint.port))
                        .collect(),
                    admin_var: "SCALEPLAN_PGBOUNCER_ADMIN_PASSWORD",
                },
            )?,
        );
        if !local {
            files.insert(
                TargetFile::PgbouncerExporterRequirements.of(topo.target),
                format!(
                    "{}\n# pip install --no-deps -r pgbouncer-exporter.txt\n{}",
                    g.lines("#"),
                    super::compose::PGBOUNCER_EXPORTER_REQUIREMENTS
                ),
            );
            files.insert(
                TargetFile::GrafanaDashboard.of(topo.target),
                dashboard(&m, &g),
            );
            files.insert(
                TargetFile::GrafanaDatasource.of(topo.target),
                self.render(
                    t::GRAFANA_DATASOURCE,
                    &g,
                    context! { prometheus => Value::from(Serde(&topo.monitor.prometheus)) },
                )?,
            );
            files.insert(
                TargetFile::GrafanaDashboards.of(topo.target),
                self.render(t::GRAFANA_DASHBOARDS, &g, ())?,
            );
        }
        Ok(())
    }
}
