//! The capacity model: how many concurrent users each resource of a phase
//! carries, which one runs out first, and the headroom over the plan.
//!
//! Every figure comes from the spec: `workload` says what one user costs,
//! the components say what each node serves. Each resource is a supply
//! (a rate or a hard limit, in its own unit) divided by one user's use of
//! it; the phase carries the smallest. A resource the workload does not
//! use (a read ratio of 1 means no reads) has no limit, never a division
//! by zero. The supply in its own unit is kept beside the users, so the
//! monitoring can compare what the servers measure with what the model
//! counted on.

use super::cloud;
use crate::spec::params;
use crate::spec::types::{Dependency, Notifications, Phase, RedisMode, Service};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Websocket,
    System,
    /// The primary: writes, and the reads too while there is no replica.
    DatabasePrimary,
    DatabaseReplicas,
    PgbouncerClients,
    RedisThroughput,
    RedisMemory,
    /// The notification workers' concurrency slots (BullMQ jobs in flight).
    Notifications,
    /// The push provider's quota of messages per project.
    PushQuota,
}

crate::keyword! {
    /// What an alert says ran out: the families the plan names.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
    pub enum Bottleneck {
        Database = "database",
        Redis = "redis",
        Websocket = "websocket",
        System = "system",
        Notifications = "notifications",
    }
}

impl Resource {
    pub const ALL: [Resource; 9] = [
        Resource::Websocket,
        Resource::System,
        Resource::DatabasePrimary,
        Resource::DatabaseReplicas,
        Resource::PgbouncerClients,
        Resource::RedisThroughput,
        Resource::RedisMemory,
        Resource::Notifications,
        Resource::PushQuota,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Resource::Websocket => "WebSocket",
            Resource::System => "system (app CPU)",
            Resource::DatabasePrimary => "database primary",
            Resource::DatabaseReplicas => "database replicas",
            Resource::PgbouncerClients => "PgBouncer clients",
            Resource::RedisThroughput => "Redis throughput",
            Resource::RedisMemory => "Redis memory",
            Resource::Notifications => "notifications",
            Resource::PushQuota => "push provider quota",
        }
    }

    /// Its name in metric names and labels.
    pub fn key(self) -> &'static str {
        match self {
            Resource::Websocket => "websocket",
            Resource::System => "system",
            Resource::DatabasePrimary => "database_primary",
            Resource::DatabaseReplicas => "database_replicas",
            Resource::PgbouncerClients => "pgbouncer_clients",
            Resource::RedisThroughput => "redis_throughput",
            Resource::RedisMemory => "redis_memory",
            Resource::Notifications => "notifications",
            Resource::PushQuota => "push_quota",
        }
    }

    pub fn bottleneck(self) -> Bottleneck {
        match self {
            Resource::Websocket => Bottleneck::Websocket,
            Resource::System => Bottleneck::System,
            Resource::DatabasePrimary | Resource::DatabaseReplicas | Resource::PgbouncerClients => {
                Bottleneck::Database
            }
            Resource::RedisThroughput | Resource::RedisMemory => Bottleneck::Redis,
            Resource::Notifications | Resource::PushQuota => Bottleneck::Notifications,
        }
    }

    /// What to raise when this resource is the bottleneck.
    pub fn remedy(self) -> &'static str {
        match self {
            Resource::Websocket => {
                "raise app.replicas or app.websocket.max_connections_per_replica"
            }
            Resource::System => "raise app.replicas or app.cpu",
            Resource::DatabasePrimary => {
                "raise postgres.primary.cpu, move reads to postgres.read_replicas, or raise the pools (pgbouncer.default_pool_size, app.db_pool_size) within max_connections"
            }
            Resource::DatabaseReplicas => {
                "raise postgres.read_replicas (and the pools that reach them)"
            }
            Resource::PgbouncerClients => {
                "raise pgbouncer.max_client_conn or pgbouncer.instances, or lower db_pool_size"
            }
            Resource::RedisThroughput => {
                "shard Redis (redis.mode cluster, more redis.cluster.shards) or a larger node"
            }
            Resource::RedisMemory => {
                "raise redis.maxmemory_mb (and memory_mb), or add cluster shards"
            }
            Resource::Notifications => {
                "raise the notification worker's replicas or notifications.concurrency"
            }
            Resource::PushQuota => {
                "ask Firebase for a higher FCM quota (600,000 messages a minute per project by default), or send broadcasts as topic messages"
            }
        }
    }
}

/// A resource's supply in the unit the servers measure it in.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Supply {
    pub amount: f64,
    /// connections, cores, queries/s, clients, ops/s, bytes, jobs in flight
    /// or messages/s.
    pub unit: &'static str,
    /// How many units (replicas, instances, nodes) share it: losing one
    /// leaves (n - 1) / n of it. 1 when there is no spare to lose.
    pub units: u32,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Line {
    pub resource: Resource,
    /// Concurrent users it carries; None when users do not use it, or do
    /// not use it in proportion (PgBouncer's clients are the app's pools).
    pub users: Option<u64>,
    pub supply: Supply,
    /// The arithmetic, for the table.
    pub work: String,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Estimate {
    pub phase: String,
    pub lines: Vec<Line>,
    /// The smallest of the lines: what the phase carries.
    pub capacity: u64,
    pub bottleneck: Resource,
    pub users_max: u32,
    /// capacity / users.max.
    pub headroom: f64,
    /// PgBouncer client connections the pools open: must fit the supply.
    pub pool_clients: u32,
}

impl Estimate {
    pub fn line(&self, r: Resource) -> Option<&Line> {
        self.lines.iter().find(|l| l.resource == r)
    }
}

/// Concurrent users a rate of `supply` per second carries at `per_user`
/// per second each; None when users take none of it.
fn users(supply: f64, per_user: f64) -> Option<u64> {
    if per_user > 0.0 && per_user.is_finite() && supply.is_finite() {
        // The nudge keeps 312,500 from flooring to 312,499 when the rates
        // are not exact in binary (0.24 reads/s).
        Some((supply / per_user * (1.0 + 1e-12)).floor().max(0.0) as u64)
    } else {
        None
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// Operations per second one Redis node of this class sustains. Redis runs
/// commands on one thread, so a node serves what one core does (about
/// 100,000 simple operations a second, redis.io's benchmark page); a
/// burstable node (cache.t*) sustains only its CPU credit baseline (20% of
/// each of its 2 vCPUs for the t4g small and medium: 40% of a core).
pub fn redis_ops_per_node(class: &str) -> u32 {
    const ONE_CORE: u32 = 100_000;
    match class {
        "cache.t4g.micro" | "cache.t3.micro" => ONE_CORE / 10 * 2,
        c if c.starts_with("cache.t") => ONE_CORE / 10 * 4,
        _ => ONE_CORE,
    }
}

/// FCM's default quota for the HTTP v1 API: 600,000 messages a minute per
/// project (Firebase, "Throttling and quotas",
/// https://firebase.google.com/docs/cloud-messaging/concept-options#throttling-and-quotas,
/// now at https://firebase.google.com/docs/cloud-messaging/throttling-and-quotas:
/// "The default quota of 600k messages per minute"; it "measures messages,
/// not requests", counts client errors, and Firebase raises it on request).
/// The model counts a topic message once: it is one message the project
/// sends, and FCM fans it out to the subscribed devices itself (throttled
/// apart from this quota: at most 1,000 fan-outs in progress per project,
/// Firebase, "Topic messaging", Fanout throttling).
pub const FCM_MESSAGES_PER_MINUTE: u32 = 600_000;

/// The workers that declare notifications, with them.
pub fn notification_workers(phase: &Phase) -> impl Iterator<Item = (&Service, &Notifications)> {
    phase
        .workers
        .iter()
        .filter_map(|w| w.notifications.as_ref().map(|n| (w, n)))
}

/// The notification lines: each worker's concurrency slots (jobs in
/// flight: a send holds one for its p95 latency), and the provider's
/// quota that every worker's messages share. Broadcasts are topic
/// messages: a fixed rate, whatever the users.
fn notification_lines(phase: &Phase, lines: &mut Vec<Line>) {
    let workers: Vec<_> = notification_workers(phase).collect();
    if workers.is_empty() {
        return;
    }
    let users_max = f64::from(phase.users.max);
    let mut slots = 0.0;
    let mut replicas = 0;
    let mut carried: Option<u64> = None;
    let mut work = Vec::new();
    for (w, n) in &workers {
        let seconds = n.p95_latency_ms / 1000.0;
        let worker_slots = f64::from(w.replicas) * f64::from(n.concurrency);
        let rate = worker_slots / seconds;
        let per_user = n.per_user_per_sec();
        let broadcast = n.broadcast_per_sec();
        let at_max = users_max * per_user + broadcast;
        let users = users(rate - broadcast, per_user);
        carried = match (carried, users) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        slots += worker_slots;
        replicas += w.replicas;
        work.push(format!(
            "worker {}: {} replicas x {} concurrency / {} s p95 = {} messages/s, at {:.6} messages/s per user ({} per hour x {} fan-out){}; {} users need {:.2} messages/s, {:.2} replicas (at least {} of the {} there are)",
            w.name,
            w.replicas,
            n.concurrency,
            num(seconds),
            num(rate),
            per_user,
            num(n.per_user_per_hour),
            num(n.fan_out),
            if broadcast > 0.0 {
                format!(
                    " + {:.4} topic messages/s of broadcasts ({} per hour x {} topics)",
                    broadcast,
                    num(n.broadcasts_per_hour.unwrap_or(0.0)),
                    n.broadcast_topics
                )
            } else {
                String::new()
            },
            phase.users.max,
            at_max,
            at_max * seconds / f64::from(n.concurrency),
            // Whole replicas; the f64 is finite and small (schema bounds).
            ((at_max * seconds / f64::from(n.concurrency)).ceil() as u64).max(1),
            w.replicas
        ));
    }
    lines.push(Line {
        resource: Resource::Notifications,
        users: carried,
        supply: Supply {
            amount: slots,
            unit: "jobs in flight",
            units: replicas,
        },
        work: work.join("; "),
    });
    let quota = f64::from(FCM_MESSAGES_PER_MINUTE) / 60.0;
    let per_user: f64 = workers.iter().map(|(_, n)| n.per_user_per_sec()).sum();
    let broadcast: f64 = workers.iter().map(|(_, n)| n.broadcast_per_sec()).sum();
    lines.push(Line {
        resource: Resource::PushQuota,
        users: users(quota - broadcast, per_user),
        supply: Supply {
            amount: quota,
            unit: "messages/s",
            units: 1,
        },
        work: format!(
            "FCM's default 600,000 messages a minute per project = {} messages/s{}, at {:.6} messages/s per user; {} users send {:.2} messages/s",
            num(quota),
            if broadcast > 0.0 {
                format!(", less {broadcast:.4} topic messages/s of broadcasts")
            } else {
                String::new()
            },
            per_user,
            phase.users.max,
            users_max * per_user + broadcast
        ),
    });
}

pub fn estimate(phase: &Phase) -> Estimate {
    let w = &phase.workload;
    let app = &phase.app;
    let pg = &phase.postgres;
    let pgb = &phase.pgbouncer;
    let redis = &phase.redis;

    let requests = w.requests_per_user_per_min / 60.0;
    let queries = requests * w.db_queries_per_request;
    let reads = queries * w.read_ratio;
    let writes = queries * (1.0 - w.read_ratio);
    let per_connection = 1000.0 / w.db_query_ms;
    let per_core = f64::from(phase.capacity.db_queries_per_core_per_sec);
    let available = f64::from(
        pg.primary
            .max_connections
            .saturating_sub(params::superuser_reserved(pg)),
    );

    let mut lines = Vec::new();
    let replicas = f64::from(app.replicas);
    let ws = f64::from(app.websocket.max_connections_per_replica);
    lines.push(Line {
        resource: Resource::Websocket,
        users: Some((replicas * ws) as u64),
        supply: Supply {
            amount: replicas * ws,
            unit: "connections",
            units: app.replicas,
        },
        work: format!("{} app replicas x {} connections", app.replicas, num(ws)),
    });
    // Node runs JavaScript on one thread: a replica serves with at most
    // one core per process, whatever else it has.
    let cores = app.cpu.min(f64::from(app.processes));
    let rps = replicas * cores * app.requests_per_core_per_sec;
    lines.push(Line {
        resource: Resource::System,
        users: users(rps, requests),
        supply: Supply {
            amount: replicas * cores,
            unit: "cores",
            units: app.replicas,
        },
        work: format!(
            "{} replicas x {} cores serving (cpu {}, {} process(es)) x {} req/s per core = {} req/s, at {:.3} req/s per user",
            app.replicas,
            num(cores),
            num(app.cpu),
            app.processes,
            num(app.requests_per_core_per_sec),
            num(rps),
            requests
        ),
    });

    // Each replica of the app (and of each service and worker that uses
    // PostgreSQL) holds a pool per database URL: these are PgBouncer's
    // clients, and the most queries that can be in flight at once.
    let app_pool = app.replicas * app.db_pool_size;
    let others: u32 = phase
        .services
        .iter()
        .chain(&phase.workers)
        .filter(|s| s.uses.contains(&Dependency::Postgres))
        .map(|s| s.replicas * s.db_pool_size)
        .sum();
    let per_url = f64::from(app_pool + others);
    let pool_clients = 2 * (app_pool + others);
    let server_pools = f64::from(pgb.instances * pgb.default_pool_size);
    let with_replicas = pg.read_replicas > 0;

    // The primary. With replicas it serves the writes; without, the reads
    // too, and then each pool still carries only its own kind while both
    // share what max_connections leaves and the one CPU. Each query kind is
    // counted once.
    let pool = per_url.min(server_pools).min(available);
    let primary_cpu = pg.primary.cpu * per_core;
    let (primary_qps, primary_users, serves) = if with_replicas {
        let qps = (pool * per_connection).min(primary_cpu);
        (qps, users(qps, writes), "writes")
    } else {
        let shared = (2.0 * per_url.min(server_pools)).min(available);
        let qps = (shared * per_connection).min(primary_cpu);
        let each = pool * per_connection;
        let carried = [users(qps, queries), users(each, reads), users(each, writes)]
            .into_iter()
            .flatten()
            .min();
        (qps, carried, "reads and writes")
    };
    let primary_demand = if with_replicas { writes } else { queries };
    lines.push(Line {
        resource: Resource::DatabasePrimary,
        users: primary_users,
        supply: Supply {
            amount: primary_qps,
            unit: "queries/s",
            units: 1,
        },
        work: format!(
            "min({} connections x {} queries/s, {} cpu x {} queries/s per core) = {} queries/s of {serves}, at {:.3} per user; each pool {} connections",
            num(if with_replicas { pool } else { (2.0 * per_url.min(server_pools)).min(available) }),
            num(per_connection),
            num(pg.primary.cpu),
            num(per_core),
            num(primary_qps),
            primary_demand,
            num(pool)
        ),
    });
    if with_replicas {
        let n = f64::from(pg.read_replicas);
        let connections = per_url.min(server_pools).min(available * n);
        let cpu = n * pg.primary.cpu * per_core;
        let qps = (connections * per_connection).min(cpu);
        lines.push(Line {
            resource: Resource::DatabaseReplicas,
            users: users(qps, reads),
            supply: Supply {
                amount: qps,
                unit: "queries/s",
                units: pg.read_replicas,
            },
            work: format!(
                "min({} connections x {} queries/s, {} replicas x {} cpu x {} queries/s per core) = {} queries/s of reads, at {:.3} per user",
                num(connections),
                num(per_connection),
                pg.read_replicas,
                num(pg.primary.cpu),
                num(per_core),
                num(qps),
                reads
            ),
        });
    }
    let clients = pgb.instances * pgb.max_client_conn;
    lines.push(Line {
        resource: Resource::PgbouncerClients,
        users: None,
        supply: Supply {
            amount: f64::from(clients),
            unit: "clients",
            units: pgb.instances,
        },
        work: format!(
            "the pools open {pool_clients} of {} instances x {} max_client_conn = {clients}, whatever the number of users",
            pgb.instances, pgb.max_client_conn
        ),
    });

    let masters = match (redis.mode, &redis.cluster) {
        (RedisMode::Cluster, Some(c)) => c.shards,
        _ => 1,
    };
    let class = cloud::cache_class(phase, redis);
    let per_node = phase
        .capacity
        .redis_ops_per_sec_per_node
        .unwrap_or_else(|| redis_ops_per_node(&class));
    let ops = f64::from(masters) * f64::from(per_node);
    lines.push(Line {
        resource: Resource::RedisThroughput,
        users: users(ops, requests * w.redis_ops_per_request),
        supply: Supply {
            amount: ops,
            unit: "ops/s",
            units: 1,
        },
        work: format!(
            "{masters} master(s) x {per_node} ops/s ({}), at {:.3} ops/s per user",
            if phase.capacity.redis_ops_per_sec_per_node.is_some() {
                "capacity.redis_ops_per_sec_per_node".to_owned()
            } else {
                class
            },
            requests * w.redis_ops_per_request
        ),
    });
    let memory_kb = f64::from(masters) * f64::from(redis.maxmemory_mb) * 1024.0;
    lines.push(Line {
        resource: Resource::RedisMemory,
        users: users(memory_kb, w.redis_memory_kb_per_user),
        supply: Supply {
            amount: memory_kb * 1024.0,
            unit: "bytes",
            units: 1,
        },
        work: format!(
            "{masters} master(s) x {} MB maxmemory, at {} KB per user",
            redis.maxmemory_mb,
            num(w.redis_memory_kb_per_user)
        ),
    });

    notification_lines(phase, &mut lines);

    let (bottleneck, capacity) = lines
        .iter()
        .filter_map(|l| l.users.map(|u| (l.resource, u)))
        .min_by_key(|(_, u)| *u)
        .unwrap_or((Resource::Websocket, 0));
    let users_max = phase.users.max;
    Estimate {
        phase: phase.name.as_str().to_owned(),
        lines,
        capacity,
        bottleneck,
        users_max,
        headroom: if users_max == 0 {
            0.0
        } else {
            capacity as f64 / f64::from(users_max)
        },
        pool_clients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(extra: serde_json::Value) -> Phase {
        let base = serde_json::json!({
            "users": {"min": 1, "max": 1000},
            "app": {"replicas": 4, "cpu": 1, "requests_per_core_per_sec": 250,
                    "websocket": {"max_connections_per_replica": 2000}},
            "postgres": {"read_replicas": 2,
                         "primary": {"cpu": 4, "memory_mb": 16384, "storage_gb": 100, "max_connections": 300}},
            "pgbouncer": {"instances": 2, "default_pool_size": 40, "reserve_pool_size": 5, "max_client_conn": 3000},
            "redis": {"maxmemory_mb": 1024, "memory_mb": 1536},
        });
        crate::spec::testing::phase(&[base, extra])
    }

    fn users(e: &Estimate, r: Resource) -> Option<u64> {
        e.line(r).unwrap().users
    }

    /// The default workload: 6 requests/min = 0.1 req/s per user; 3 queries
    /// each = 0.3 q/s, 80% reads = 0.24 reads/s and 0.06 writes/s; 4 ms per
    /// query = 250 queries/s per connection, 1,000 per core; 4 Redis ops per
    /// request = 0.4 ops/s; 16 KB of Redis per user; pools of 10.
    #[test]
    fn each_formula_matches_hand_computed_figures() {
        let e = estimate(&phase(serde_json::json!({})));
        // 4 replicas x 2000.
        assert_eq!(users(&e, Resource::Websocket), Some(8000));
        // 4 x 1 cpu x 250 = 1000 req/s / 0.1.
        assert_eq!(users(&e, Resource::System), Some(10_000));
        // Pools: 4 replicas x 10 = 40 per URL, under 2 x 40 server
        // connections: 40 x 250 = 10,000 q/s; 4 cpu x 1,000 = 4,000 q/s;
        // 4,000 / 0.06 writes.
        assert_eq!(users(&e, Resource::DatabasePrimary), Some(66_666));
        // Reads: 40 connections x 250 = 10,000 q/s; 2 x 4 x 1,000 = 8,000;
        // 8,000 / 0.24.
        assert_eq!(users(&e, Resource::DatabaseReplicas), Some(33_333));
        // Not per user: 2 pools x 40 = 80 of 6,000 client slots.
        assert_eq!(users(&e, Resource::PgbouncerClients), None);
        assert_eq!(e.pool_clients, 80);
        // cache.t4g.medium (1536 MB): 40% of a core, 40,000 ops/s / 0.4.
        assert_eq!(users(&e, Resource::RedisThroughput), Some(100_000));
        // 1024 MB x 1024 KB / 16 KB.
        assert_eq!(users(&e, Resource::RedisMemory), Some(65_536));
        assert_eq!((e.capacity, e.bottleneck), (8000, Resource::Websocket));
        assert!((e.headroom - 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_node_replica_serves_with_one_core_per_process() {
        let e = estimate(&phase(serde_json::json!({"app": {"cpu": 2}})));
        // 4 replicas x 1 core (one process) x 250 req/s / 0.1.
        assert_eq!(users(&e, Resource::System), Some(10_000));
        let e = estimate(&phase(
            serde_json::json!({"app": {"cpu": 2, "processes": 2}}),
        ));
        assert_eq!(users(&e, Resource::System), Some(20_000));
    }

    #[test]
    fn without_replicas_the_primary_serves_reads_and_writes_once() {
        let e = estimate(&phase(
            serde_json::json!({"postgres": {"read_replicas": 0, "primary": {"cpu": 2, "max_connections": 103}}}),
        ));
        // Both pools, 2 x 40 = 80 connections x 250 = 20,000 q/s; 2 cpu x
        // 1,000 = 2,000 q/s, for all 0.3 q/s of each user.
        assert_eq!(users(&e, Resource::DatabasePrimary), Some(6_666));
        // With ample CPU, the read pool alone bounds the reads: 40 x 250 =
        // 10,000 q/s / 0.24.
        let e = estimate(&phase(
            serde_json::json!({"postgres": {"read_replicas": 0, "primary": {"cpu": 64, "max_connections": 503}}}),
        ));
        assert_eq!(users(&e, Resource::DatabasePrimary), Some(41_666));
        assert!(e.line(Resource::DatabaseReplicas).is_none());
    }

    #[test]
    fn small_pools_bound_the_database_before_its_cpu() {
        let e = estimate(&phase(serde_json::json!({"app": {"db_pool_size": 1}})));
        // 4 connections x 250 = 1,000 q/s of writes, under 4 cpu x 1,000.
        assert_eq!(users(&e, Resource::DatabasePrimary), Some(16_666));
    }

    #[test]
    fn services_that_use_postgres_add_their_pools() {
        let e = estimate(&phase(serde_json::json!({
            "services": [
                {"name": "payments", "image": "x/p:1", "replicas": 3, "uses": ["postgres"]},
                {"name": "push", "image": "x/q:1", "replicas": 9, "uses": ["redis"]},
            ]
        })));
        // (4 x 10 + 3 x 5) x 2 URLs; push has no database pool.
        assert_eq!(e.pool_clients, 110);
    }

    #[test]
    fn redis_throughput_follows_the_node() {
        let big = estimate(&phase(
            serde_json::json!({"redis": {"maxmemory_mb": 4096, "memory_mb": 6144}}),
        ));
        // cache.m7g.large: a whole core.
        assert_eq!(users(&big, Resource::RedisThroughput), Some(250_000));
        let set = estimate(&phase(
            serde_json::json!({"capacity": {"redis_ops_per_sec_per_node": 20_000}}),
        ));
        assert_eq!(users(&set, Resource::RedisThroughput), Some(50_000));
        let shards = estimate(&phase(
            serde_json::json!({"redis": {"mode": "cluster", "cluster": {"shards": 3}}}),
        ));
        assert_eq!(users(&shards, Resource::RedisThroughput), Some(300_000));
        assert_eq!(users(&shards, Resource::RedisMemory), Some(196_608));
    }

    #[test]
    fn node_memory_follows_maxmemory_when_unset() {
        let p =
            crate::spec::testing::phase(&[serde_json::json!({"redis": {"maxmemory_mb": 2048}})]);
        assert_eq!(p.redis.memory_mb, 3072);
        let p = crate::spec::testing::phase(&[serde_json::json!({"redis": {"maxmemory_mb": 64}})]);
        assert_eq!(p.redis.memory_mb, 320);
    }

    #[test]
    fn an_unused_resource_has_no_limit_and_no_division_by_zero() {
        let e = estimate(&phase(serde_json::json!({"workload": {"read_ratio": 1.0}})));
        assert_eq!(users(&e, Resource::DatabasePrimary), None);
        assert!(e.capacity > 0);
        let e = estimate(&phase(serde_json::json!({"workload": {"read_ratio": 0.0}})));
        assert_eq!(users(&e, Resource::DatabaseReplicas), None);
    }

    fn notifier(name: &str, replicas: u32, notifications: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"name": name, "image": "x/n:1", "replicas": replicas,
                           "uses": ["redis"], "notifications": notifications})
    }

    /// 2 notifications per user an hour to 1.5 devices: 3 messages an hour,
    /// 1/1,200 a second per user. 4 replicas x 50 sends at once, each
    /// holding its slot 200 ms: 200 jobs in flight, 1,000 messages/s.
    #[test]
    fn notification_rows_match_hand_computed_figures() {
        let e = estimate(&phase(
            serde_json::json!({"workers": [notifier("push", 4, serde_json::json!(
                {"per_user_per_hour": 2, "fan_out": 1.5, "p95_latency_ms": 200, "concurrency": 50}
            ))]}),
        ));
        // 1,000 messages/s x 1,200 s per message per user.
        assert_eq!(users(&e, Resource::Notifications), Some(1_200_000));
        let line = e.line(Resource::Notifications).unwrap();
        assert_eq!(
            (line.supply.amount, line.supply.unit, line.supply.units),
            (200.0, "jobs in flight", 4)
        );
        // users.max 1,000 send 1,000 / 1,200 = 0.83 messages/s: 0.83 x
        // 0.2 s / 50 = 0.0033 replicas.
        assert!(line.work.contains("1000 messages/s"), "{}", line.work);
        assert!(
            line.work.contains("0.83 messages/s, 0.00 replicas"),
            "{}",
            line.work
        );
        // FCM: 600,000 a minute = 10,000 messages/s x 1,200.
        assert_eq!(users(&e, Resource::PushQuota), Some(12_000_000));
        let quota = e.line(Resource::PushQuota).unwrap();
        assert_eq!(
            (quota.supply.amount, quota.supply.unit),
            (10_000.0, "messages/s")
        );
        // The app's WebSocket limit still comes first.
        assert_eq!((e.capacity, e.bottleneck), (8000, Resource::Websocket));
        // No worker declares notifications: no rows.
        let e = estimate(&phase(serde_json::json!({})));
        assert!(e.line(Resource::Notifications).is_none());
        assert!(e.line(Resource::PushQuota).is_none());
    }

    /// A broadcast is one topic message per topic, whatever the users: 36
    /// an hour to 100 topics is 1 message/s, which takes 1 x 1,200 users
    /// off each row, and the same whether 1,000 or a million are planned.
    #[test]
    fn broadcasts_are_topic_messages_that_never_scale_with_users() {
        let with = |users_max: u32| {
            estimate(&phase(serde_json::json!({
                "users": {"max": users_max},
                "workers": [notifier("push", 4, serde_json::json!({
                    "per_user_per_hour": 2, "fan_out": 1.5, "p95_latency_ms": 200, "concurrency": 50,
                    "broadcasts_per_hour": 36, "broadcast_topics": 100}))],
            })))
        };
        for users_max in [1000, 1_000_000] {
            let e = with(users_max);
            // (1,000 - 1) messages/s x 1,200.
            assert_eq!(users(&e, Resource::Notifications), Some(1_198_800));
            // (10,000 - 1) x 1,200.
            assert_eq!(users(&e, Resource::PushQuota), Some(11_998_800));
        }
        // A million users send 833.33 + 1 messages/s: 834.33 x 0.2 / 50
        // = 3.34 replicas.
        let line = with(1_000_000);
        let work = &line.line(Resource::Notifications).unwrap().work;
        assert!(work.contains("834.33 messages/s, 3.34 replicas"), "{work}");
    }

    #[test]
    fn the_provider_quota_can_be_the_bottleneck() {
        // 3,600 pushes per user an hour: 1 message/s each, so FCM's 10,000
        // messages/s carry 10,000 users, while 100 replicas x 1,000 sends
        // at 10 ms carry 10 million.
        let e = estimate(&phase(serde_json::json!({
            "app": {"replicas": 100},
            "workers": [notifier("push", 100, serde_json::json!(
                {"per_user_per_hour": 3600, "p95_latency_ms": 10, "concurrency": 1000}))],
        })));
        assert_eq!(users(&e, Resource::Notifications), Some(10_000_000));
        assert_eq!((e.capacity, e.bottleneck), (10_000, Resource::PushQuota));
        assert!(e.bottleneck.remedy().contains("Firebase"));
        assert_eq!(e.bottleneck.bottleneck(), Bottleneck::Notifications);
    }

    #[test]
    fn each_notification_worker_is_its_own_limit_and_they_share_the_quota() {
        let e = estimate(&phase(serde_json::json!({"workers": [
            notifier("push", 4, serde_json::json!(
                {"per_user_per_hour": 2, "fan_out": 1.5, "p95_latency_ms": 200, "concurrency": 50})),
            // 1 replica x 10 / 1 s = 10 messages/s at 1 message an hour:
            // 36,000 users.
            notifier("digest", 1, serde_json::json!(
                {"per_user_per_hour": 1, "p95_latency_ms": 1000, "concurrency": 10})),
            {"name": "plain", "image": "x/p:1", "uses": ["redis"]},
        ]})));
        assert_eq!(users(&e, Resource::Notifications), Some(36_000));
        let line = e.line(Resource::Notifications).unwrap();
        assert_eq!((line.supply.amount, line.supply.units), (210.0, 5));
        // 10,000 messages/s at 3 + 1 = 4 messages per user an hour.
        assert_eq!(users(&e, Resource::PushQuota), Some(9_000_000));
    }

    /// Property: more worker replicas or more concurrency never lower the
    /// notifications row or the phase's capacity, over a deterministic
    /// sweep of workers.
    #[test]
    fn more_workers_or_concurrency_never_lower_capacity() {
        let mut seed: u64 = 0x0b0e;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            1 + (seed >> 33) % n
        };
        let mut binding = 0;
        for _ in 0..500 {
            let replicas = next(20) as u32;
            let concurrency = next(200);
            let notifications = serde_json::json!({
                "per_user_per_hour": next(3600) as f64 / 10.0,
                "fan_out": 1.0 + (next(30) - 1) as f64 / 10.0,
                "p95_latency_ms": next(5000) as f64,
                "concurrency": concurrency,
                "broadcasts_per_hour": next(600) as f64 / 10.0,
                "broadcast_topics": next(50),
            });
            let workers = |replicas: u32, concurrency: u64| {
                let mut n = notifications.clone();
                n["concurrency"] = concurrency.into();
                serde_json::json!({"app": {"replicas": 50}, "workers": [notifier("push", replicas, n)]})
            };
            let before = estimate(&phase(workers(replicas, concurrency)));
            binding += usize::from(before.bottleneck == Resource::Notifications);
            for (r, c) in [
                (replicas + next(10) as u32, concurrency),
                (replicas, concurrency + next(100)),
                (replicas + next(3) as u32, concurrency + next(20)),
            ] {
                let after = estimate(&phase(workers(r, c)));
                let row = |e: &Estimate| users_of(e, Resource::Notifications);
                assert!(
                    row(&after) >= row(&before) && after.capacity >= before.capacity,
                    "{replicas} x {concurrency} -> {r} x {c}: row {:?} -> {:?}, capacity {} -> {} for {notifications}",
                    row(&before),
                    row(&after),
                    before.capacity,
                    after.capacity
                );
            }
        }
        // The sweep is worth something only where the workers bind.
        assert!(
            binding > 100,
            "the workers were the bottleneck {binding} times of 500"
        );
    }

    fn users_of(e: &Estimate, r: Resource) -> Option<u64> {
        e.line(r).and_then(|l| l.users)
    }

    /// Property: more of any resource never lowers capacity, over a
    /// deterministic sweep of phases.
    #[test]
    fn more_of_any_resource_never_lowers_capacity() {
        let mut seed: u64 = 0x5eed;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            1 + (seed >> 33) % n
        };
        for _ in 0..500 {
            let app = next(20);
            let read = next(8) - 1;
            let instances = next(6);
            let pool = next(60);
            let conns = 3 + instances * pool * 2 + next(200);
            let cpu = next(16);
            let app_pool = next(30);
            let shards = next(6);
            let maxmemory = 64 * next(64);
            let base = serde_json::json!({
                "app": {"replicas": app, "db_pool_size": app_pool},
                "postgres": {"read_replicas": read, "primary": {"cpu": cpu, "max_connections": conns}},
                "pgbouncer": {"instances": instances, "default_pool_size": pool, "max_client_conn": next(5000)},
                "redis": {"mode": "cluster", "cluster": {"shards": shards}, "maxmemory_mb": maxmemory, "memory_mb": null},
                "workload": {"read_ratio": (next(11) - 1) as f64 / 10.0, "db_query_ms": next(20) as f64},
            });
            let before = estimate(&phase(base.clone()));
            for more in [
                serde_json::json!({"app": {"replicas": app + next(5)}}),
                serde_json::json!({"app": {"cpu": 1.0 + next(4) as f64}}),
                serde_json::json!({"app": {"processes": 1 + next(4)}}),
                serde_json::json!({"app": {"db_pool_size": app_pool + next(5)}}),
                serde_json::json!({"postgres": {"read_replicas": read + next(4)}}),
                serde_json::json!({"postgres": {"primary": {"cpu": cpu + next(8)}}}),
                serde_json::json!({"pgbouncer": {"instances": instances + next(3)}}),
                serde_json::json!({"pgbouncer": {"default_pool_size": pool + next(10)}}),
                serde_json::json!({"redis": {"cluster": {"shards": shards + next(3)}}}),
                serde_json::json!({"redis": {"maxmemory_mb": maxmemory + 64 * next(8)}}),
            ] {
                let mut bigger = base.clone();
                crate::spec::testing::merge(&mut bigger, more);
                let after = estimate(&phase(bigger.clone()));
                assert!(
                    after.capacity >= before.capacity,
                    "{} -> {} for {bigger}",
                    before.capacity,
                    after.capacity
                );
            }
        }
    }
}
