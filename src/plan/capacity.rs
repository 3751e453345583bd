//! The capacity model: how many concurrent users each resource of a phase
//! carries, which one runs out first, and the headroom over the plan.
//!
//! Every figure comes from the spec: `workload` says what one user costs,
//! the components say what each node serves. Each resource is a throughput
//! or a hard limit divided by one user's use of it; the phase carries the
//! smallest. A resource the workload does not use (a read ratio of 1 means
//! no writes) has no limit, never a division by zero.

use crate::spec::params;
use crate::spec::types::{Phase, RedisMode};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Websocket,
    System,
    DatabaseWrites,
    DatabaseReads,
    PgbouncerClients,
    RedisThroughput,
    RedisMemory,
}

impl Resource {
    pub fn label(self) -> &'static str {
        match self {
            Resource::Websocket => "WebSocket",
            Resource::System => "system (app CPU)",
            Resource::DatabaseWrites => "database writes",
            Resource::DatabaseReads => "database reads",
            Resource::PgbouncerClients => "PgBouncer clients",
            Resource::RedisThroughput => "Redis throughput",
            Resource::RedisMemory => "Redis memory",
        }
    }

    /// What to raise when this resource is the bottleneck.
    pub fn remedy(self) -> &'static str {
        match self {
            Resource::Websocket => {
                "raise app.replicas or app.websocket.max_connections_per_replica"
            }
            Resource::System => "raise app.replicas or app.cpu",
            Resource::DatabaseWrites => {
                "raise pgbouncer.default_pool_size or instances (within postgres.primary.max_connections), or make queries faster"
            }
            Resource::DatabaseReads => {
                "raise postgres.read_replicas (and PgBouncer pools to reach them)"
            }
            Resource::PgbouncerClients => "raise pgbouncer.max_client_conn or pgbouncer.instances",
            Resource::RedisThroughput => {
                "shard Redis: redis.mode cluster with more redis.cluster.shards"
            }
            Resource::RedisMemory => {
                "raise redis.maxmemory_mb (and memory_mb), or add cluster shards"
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub resource: Resource,
    /// Concurrent users it carries; None when the workload does not use it.
    pub users: Option<u64>,
    /// The arithmetic, for the table.
    pub work: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub phase: String,
    pub lines: Vec<Line>,
    /// The smallest of the lines: what the phase carries.
    pub capacity: u64,
    pub bottleneck: Resource,
    pub users_max: u32,
    /// capacity / users.max.
    pub headroom: f64,
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
        format!("{x}")
    }
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
    let available = pg
        .primary
        .max_connections
        .saturating_sub(params::superuser_reserved(pg));

    let mut lines = Vec::new();
    let replicas = f64::from(app.replicas);
    let ws = f64::from(app.websocket.max_connections_per_replica);
    lines.push(Line {
        resource: Resource::Websocket,
        users: Some((replicas * ws) as u64),
        work: format!("{} app replicas x {} connections", app.replicas, num(ws)),
    });
    let rps = replicas * app.cpu * app.requests_per_core_per_sec;
    lines.push(Line {
        resource: Resource::System,
        users: users(rps, requests),
        work: format!(
            "{} replicas x {} cpu x {} req/s per core = {} req/s, at {:.3} req/s per user",
            app.replicas,
            num(app.cpu),
            num(app.requests_per_core_per_sec),
            num(rps),
            requests
        ),
    });

    // Write pools sit on the primary; without replicas the read pools do
    // too, and both share what max_connections leaves.
    let pools = f64::from(pgb.instances * pgb.default_pool_size);
    let write_connections = if pg.read_replicas > 0 {
        pools.min(available.into())
    } else {
        pools.min(f64::from(available) / 2.0)
    };
    lines.push(Line {
        resource: Resource::DatabaseWrites,
        users: users(write_connections * per_connection, writes),
        work: format!(
            "{} pooled connections on the primary x {} queries/s each, at {:.3} writes/s per user",
            num(write_connections),
            num(per_connection),
            writes
        ),
    });
    let (read_connections, read_where) = if pg.read_replicas > 0 {
        (
            pools.min(f64::from(available * pg.read_replicas)),
            format!("on {} replicas", pg.read_replicas),
        )
    } else {
        (write_connections, "on the primary".to_owned())
    };
    lines.push(Line {
        resource: Resource::DatabaseReads,
        users: users(read_connections * per_connection, reads),
        work: format!(
            "{} pooled connections {read_where} x {} queries/s each, at {:.3} reads/s per user",
            num(read_connections),
            num(per_connection),
            reads
        ),
    });
    let clients = f64::from(pgb.instances) * f64::from(pgb.max_client_conn);
    lines.push(Line {
        resource: Resource::PgbouncerClients,
        users: users(clients, w.db_clients_per_user),
        work: format!(
            "{} instances x {} max_client_conn, at {} client connections per user",
            pgb.instances,
            pgb.max_client_conn,
            num(w.db_clients_per_user)
        ),
    });
    let masters = match (redis.mode, &redis.cluster) {
        (RedisMode::Cluster, Some(c)) => c.shards,
        _ => 1,
    };
    let ops = f64::from(masters) * f64::from(phase.capacity.redis_ops_per_sec_per_node);
    lines.push(Line {
        resource: Resource::RedisThroughput,
        users: users(ops, requests * w.redis_ops_per_request),
        work: format!(
            "{masters} master(s) x {} ops/s, at {:.3} ops/s per user",
            phase.capacity.redis_ops_per_sec_per_node,
            requests * w.redis_ops_per_request
        ),
    });
    let memory_kb = f64::from(masters) * f64::from(redis.maxmemory_mb) * 1024.0;
    lines.push(Line {
        resource: Resource::RedisMemory,
        users: users(memory_kb, w.redis_memory_kb_per_user),
        work: format!(
            "{masters} master(s) x {} MB maxmemory, at {} KB per user",
            redis.maxmemory_mb,
            num(w.redis_memory_kb_per_user)
        ),
    });

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
        e.lines.iter().find(|l| l.resource == r).unwrap().users
    }

    /// The default workload: 6 requests/min = 0.1 req/s per user; 3 queries
    /// each = 0.3 q/s, 80% reads = 0.24 reads/s and 0.06 writes/s; 4 ms per
    /// query = 250 queries/s per connection; 4 Redis ops per request = 0.4
    /// ops/s; 16 KB of Redis per user; one PgBouncer client per user.
    #[test]
    fn each_formula_matches_hand_computed_figures() {
        let e = estimate(&phase(serde_json::json!({})));
        // 4 replicas x 2000.
        assert_eq!(users(&e, Resource::Websocket), Some(8000));
        // 4 x 1 cpu x 250 = 1000 req/s / 0.1.
        assert_eq!(users(&e, Resource::System), Some(10_000));
        // 2 x 40 = 80 connections x 250 = 20,000 q/s / 0.06 writes.
        assert_eq!(users(&e, Resource::DatabaseWrites), Some(333_333));
        // 80 connections over 2 replicas x 250 = 20,000 / 0.24 reads.
        assert_eq!(users(&e, Resource::DatabaseReads), Some(83_333));
        // 2 x 3000 clients / 1 per user.
        assert_eq!(users(&e, Resource::PgbouncerClients), Some(6000));
        // 1 master x 100,000 ops/s / 0.4.
        assert_eq!(users(&e, Resource::RedisThroughput), Some(250_000));
        // 1024 MB x 1024 KB / 16 KB.
        assert_eq!(users(&e, Resource::RedisMemory), Some(65_536));
        assert_eq!(
            (e.capacity, e.bottleneck),
            (6000, Resource::PgbouncerClients)
        );
        assert!((e.headroom - 6.0).abs() < 1e-9);
    }

    #[test]
    fn without_replicas_reads_and_writes_share_the_primary() {
        let e = estimate(&phase(
            serde_json::json!({"postgres": {"read_replicas": 0, "primary": {"max_connections": 103}}}),
        ));
        // 100 left after the superuser reserve, half for each pool: 50 x 250.
        assert_eq!(users(&e, Resource::DatabaseWrites), Some(208_333));
        assert_eq!(users(&e, Resource::DatabaseReads), Some(52_083));
    }

    #[test]
    fn cluster_shards_multiply_redis() {
        let e = estimate(&phase(
            serde_json::json!({"redis": {"mode": "cluster", "cluster": {"shards": 3}}}),
        ));
        assert_eq!(users(&e, Resource::RedisThroughput), Some(750_000));
        assert_eq!(users(&e, Resource::RedisMemory), Some(196_608));
    }

    #[test]
    fn an_unused_resource_has_no_limit_and_no_division_by_zero() {
        let e = estimate(&phase(serde_json::json!({"workload": {"read_ratio": 1.0}})));
        assert_eq!(users(&e, Resource::DatabaseWrites), None);
        assert!(e.capacity > 0);
        let e = estimate(&phase(serde_json::json!({"workload": {"read_ratio": 0.0}})));
        assert_eq!(users(&e, Resource::DatabaseReads), None);
    }

    /// Property: adding replicas of any kind never lowers capacity, over a
    /// deterministic sweep of phases.
    #[test]
    fn adding_replicas_never_lowers_capacity() {
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
            let base = serde_json::json!({
                "app": {"replicas": app},
                "postgres": {"read_replicas": read, "primary": {"max_connections": conns}},
                "pgbouncer": {"instances": instances, "default_pool_size": pool, "max_client_conn": next(5000)},
                "workload": {"read_ratio": (next(11) - 1) as f64 / 10.0, "db_query_ms": next(20) as f64},
            });
            let before = estimate(&phase(base.clone())).capacity;
            for more in [
                serde_json::json!({"app": {"replicas": app + next(5)}}),
                serde_json::json!({"postgres": {"read_replicas": read + next(4)}}),
                serde_json::json!({"pgbouncer": {"instances": instances + next(3)}}),
            ] {
                let mut bigger = base.clone();
                for (k, v) in more.as_object().unwrap() {
                    for (kk, vv) in v.as_object().unwrap() {
                        bigger[k][kk] = vv.clone();
                    }
                }
                let after = estimate(&phase(bigger.clone())).capacity;
                assert!(after >= before, "{before} -> {after} for {bigger}");
            }
        }
    }
}
