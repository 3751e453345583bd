//! Rules between consecutive phases: a later phase keeps or grows what the
//! one before it runs. Redis never moves back (standalone -> Sentinel ->
//! Cluster) and no size shrinks, unless the later phase says
//! `allow_downgrade: true`.

use crate::diag::{Code, Diagnostic};
use crate::spec::SourceMap;
use crate::spec::types::{Phase, RedisMode};

/// A size that a later phase may not shrink: where it sits in the spec and
/// what it measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    AppReplicas,
    AppCpu,
    AppMemory,
    PostgresReplicas,
    PostgresCpu,
    PostgresMemory,
    PostgresStorage,
    PostgresMaxConnections,
    PgbouncerInstances,
    PgbouncerPoolSize,
    PgbouncerMaxClientConn,
    RedisMaxmemory,
    RedisNodeMemory,
    RedisReplicas,
    RedisShards,
}

impl Measure {
    /// Every measure, in the order its diagnostics are reported.
    pub const ALL: [Measure; 15] = [
        Measure::AppReplicas,
        Measure::AppCpu,
        Measure::AppMemory,
        Measure::PostgresReplicas,
        Measure::PostgresCpu,
        Measure::PostgresMemory,
        Measure::PostgresStorage,
        Measure::PostgresMaxConnections,
        Measure::PgbouncerInstances,
        Measure::PgbouncerPoolSize,
        Measure::PgbouncerMaxClientConn,
        Measure::RedisMaxmemory,
        Measure::RedisNodeMemory,
        Measure::RedisReplicas,
        Measure::RedisShards,
    ];

    /// The size of a PostgreSQL node (max_connections is a setting, not a
    /// size: it is planned with the other settings).
    pub const POSTGRES_NODE: [Measure; 3] = [
        Measure::PostgresCpu,
        Measure::PostgresMemory,
        Measure::PostgresStorage,
    ];

    pub fn pointer(self) -> &'static str {
        match self {
            Measure::AppReplicas => "/app/replicas",
            Measure::AppCpu => "/app/cpu",
            Measure::AppMemory => "/app/memory_mb",
            Measure::PostgresReplicas => "/postgres/read_replicas",
            Measure::PostgresCpu => "/postgres/primary/cpu",
            Measure::PostgresMemory => "/postgres/primary/memory_mb",
            Measure::PostgresStorage => "/postgres/primary/storage_gb",
            Measure::PostgresMaxConnections => "/postgres/primary/max_connections",
            Measure::PgbouncerInstances => "/pgbouncer/instances",
            Measure::PgbouncerPoolSize => "/pgbouncer/default_pool_size",
            Measure::PgbouncerMaxClientConn => "/pgbouncer/max_client_conn",
            Measure::RedisMaxmemory => "/redis/maxmemory_mb",
            Measure::RedisNodeMemory => "/redis/memory_mb",
            Measure::RedisReplicas => "/redis/replicas",
            Measure::RedisShards => "/redis/cluster/shards",
        }
    }

    pub fn what(self) -> &'static str {
        match self {
            Measure::AppReplicas => "app replicas",
            Measure::AppCpu => "app cpu per replica",
            Measure::AppMemory => "app memory per replica",
            Measure::PostgresReplicas => "PostgreSQL read replicas",
            Measure::PostgresCpu => "PostgreSQL cpu",
            Measure::PostgresMemory => "PostgreSQL memory",
            Measure::PostgresStorage => "PostgreSQL storage",
            Measure::PostgresMaxConnections => "PostgreSQL max_connections",
            Measure::PgbouncerInstances => "PgBouncer instances",
            Measure::PgbouncerPoolSize => "PgBouncer pool size",
            Measure::PgbouncerMaxClientConn => "PgBouncer max_client_conn",
            Measure::RedisMaxmemory => "Redis maxmemory",
            Measure::RedisNodeMemory => "Redis node memory",
            Measure::RedisReplicas => "Redis replicas",
            Measure::RedisShards => "Redis Cluster shards",
        }
    }

    /// The value in a phase; None where the phase has no such thing (Redis
    /// replicas outside Sentinel mode, shards outside Cluster mode).
    pub fn of(self, p: &Phase) -> Option<f64> {
        let r = &p.redis;
        Some(match self {
            Measure::AppReplicas => p.app.replicas.into(),
            Measure::AppCpu => p.app.cpu,
            Measure::AppMemory => p.app.memory_mb.into(),
            Measure::PostgresReplicas => p.postgres.read_replicas.into(),
            Measure::PostgresCpu => p.postgres.primary.cpu,
            Measure::PostgresMemory => p.postgres.primary.memory_mb.into(),
            Measure::PostgresStorage => p.postgres.primary.storage_gb.into(),
            Measure::PostgresMaxConnections => p.postgres.primary.max_connections.into(),
            Measure::PgbouncerInstances => p.pgbouncer.instances.into(),
            Measure::PgbouncerPoolSize => p.pgbouncer.default_pool_size.into(),
            Measure::PgbouncerMaxClientConn => p.pgbouncer.max_client_conn.into(),
            Measure::RedisMaxmemory => r.maxmemory_mb.into(),
            Measure::RedisNodeMemory => r.memory_mb.into(),
            Measure::RedisReplicas => {
                return (r.mode == RedisMode::Sentinel).then(|| r.replicas.unwrap_or(0).into());
            }
            Measure::RedisShards => {
                return r
                    .cluster
                    .as_ref()
                    .filter(|_| r.mode == RedisMode::Cluster)
                    .map(|c| c.shards.into());
            }
        })
    }
}

/// What identifies the deployment every phase is a size of: changing one
/// makes the next phase another deployment beside the first, so no
/// waiver allows it.
fn identity(from: &Phase, to: &Phase) -> Vec<(&'static str, &'static str, String, String)> {
    let primary_region = |p: &Phase| {
        p.regions
            .iter()
            .find(|r| r.role == crate::spec::types::RegionRole::Primary)
            .map_or_else(
                || p.targets.terraform.region.as_str().to_owned(),
                |r| r.cloud_region.as_str().to_owned(),
            )
    };
    let primary_pointer = if to.regions.is_empty() {
        "/targets/terraform/region"
    } else {
        "/regions"
    };
    [
        (
            "/project",
            "project (the Compose project, the Terraform names)",
            from.project.as_str().to_owned(),
            to.project.as_str().to_owned(),
        ),
        (
            "/targets/local/base_port",
            "targets.local.base_port (every local node's port)",
            from.targets.local.base_port.to_string(),
            to.targets.local.base_port.to_string(),
        ),
        (
            primary_pointer,
            "the primary region (where the writer and its data live)",
            primary_region(from),
            primary_region(to),
        ),
    ]
    .into_iter()
    .filter(|(_, _, a, b)| a != b)
    .collect()
}

/// TRN004: on AWS a move into cluster mode converts the ElastiCache group
/// in place (mode compatible, then enabled, then the shards: three applies,
/// one change each). ElastiCache converts only a group of Redis 7.0 or
/// later with a replica and automatic failover; any other would need a new
/// group, with every key lost, or one apply that changes the mode and the
/// shards together, which ElastiCache refuses.
fn cluster_conversion(from: &Phase, to: &Phase, to_src: &SourceMap, out: &mut Vec<Diagnostic>) {
    if !to.targets.terraform.enabled
        || !from.targets.terraform.enabled
        || from.redis.mode == RedisMode::Cluster
        || to.redis.mode != RedisMode::Cluster
    {
        return;
    }
    let lone = from.redis.mode == RedisMode::Standalone && !from.targets.terraform.redis_replica;
    let old = from.redis.version < 7;
    if !lone && !old {
        return;
    }
    let why = if old {
        format!(
            "phase {}'s Redis is version {} and ElastiCache converts a group into cluster mode from Redis 7.0",
            from.name, from.redis.version
        )
    } else {
        format!(
            "phase {}'s Redis has no replica, and ElastiCache converts only a group with a replica and automatic failover",
            from.name
        )
    };
    out.push(Diagnostic::error(
        Code::Trn004,
        to_src.value_at("/redis/mode"),
        format!(
            "phase {} takes Redis into cluster mode on AWS, but {why}: the group cannot change mode in place, so the mode and the shards would change in one step",
            to.name
        ),
        format!(
            "give phase {}'s Redis what the conversion needs (redis.version 7 or later; a replica: targets.terraform.redis_replica: true or sentinel mode), or add a phase between them that does",
            from.name
        ),
    ));
}

/// TRN005: the queues move onto a queue Redis (or back) only in a step of
/// their own. A Redis mode change moves the app onto its new clients, and
/// with them onto the new contract, before the queues' drain is checked:
/// the jobs left behind would be counted where no worker runs any more.
fn queues_and_mode(from: &Phase, to: &Phase, to_src: &SourceMap, out: &mut Vec<Diagnostic>) {
    let moves = from.queue_redis.is_some() != to.queue_redis.is_some();
    if !moves || from.redis.mode == to.redis.mode {
        return;
    }
    let (at, what) = if to.queue_redis.is_some() {
        ("/queue_redis", "gives the queues a Redis of their own")
    } else {
        (
            "/redis/mode",
            "moves the queues back onto the phase's Redis",
        )
    };
    out.push(Diagnostic::error(
        Code::Trn005,
        to_src.value_at(at),
        format!(
            "phase {} {what} and takes redis.mode from {} to {} in the same transition: the app would move to its new Redis clients before the queues are drained, and the jobs left behind would be lost",
            to.name,
            from.redis.mode.as_str(),
            to.redis.mode.as_str()
        ),
        format!(
            "add a phase between {} and {} that changes one of the two",
            from.name, to.name
        ),
    ));
}

/// Rules between consecutive phases: the deployment keeps its identity;
/// Redis never moves backwards and no capacity is lost, unless the later
/// phase says `allow_downgrade: true`.
pub fn check(from: &Phase, to: &Phase, to_src: &SourceMap) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (pointer, what, a, b) in identity(from, to) {
        out.push(Diagnostic::error(
            Code::Trn003,
            to_src.value_at(pointer),
            format!(
                "{what} changes from {a} in phase {} to {b} in phase {}: the next phase would be a second deployment, not this one grown",
                from.name, to.name
            ),
            format!("keep {a}, best by setting it once in a parent spec both phases extend"),
        ));
    }
    cluster_conversion(from, to, to_src, &mut out);
    queues_and_mode(from, to, to_src, &mut out);
    if to.allow_downgrade {
        return out;
    }
    let help = "if the downgrade is intended, set `allow_downgrade: true` in this phase";
    if to.redis.mode < from.redis.mode {
        out.push(Diagnostic::error(
            Code::Trn001,
            to_src.value_at("/redis/mode"),
            format!(
                "redis.mode goes back from {} in phase {} to {} in phase {}",
                from.redis.mode.as_str(),
                from.name,
                to.redis.mode.as_str(),
                to.name
            ),
            format!("a later phase keeps or grows the Redis topology; {help}"),
        ));
    }
    for m in Measure::ALL {
        if let (Some(a), Some(b)) = (m.of(from), m.of(to)) {
            if b < a {
                out.push(Diagnostic::error(
                    Code::Trn002,
                    to_src.value_at(m.pointer()),
                    format!(
                        "{} shrinks from {a} in phase {} to {b} in phase {}: capacity loss",
                        m.what(),
                        from.name,
                        to.name
                    ),
                    format!("keep at least {a}, or {help}"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(overlay: serde_json::Value) -> Phase {
        crate::spec::testing::phase(&[overlay])
    }

    #[test]
    fn transition_rules_need_allow_downgrade() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}, "app": {"replicas": 4}}),
        );
        let b = phase(serde_json::json!({"app": {"replicas": 2}}));
        let (_, src) = crate::spec::node::Node::new(
            crate::spec::node::Kind::Map(vec![]),
            crate::diag::Location::start_of(&std::sync::Arc::new("b.yaml".into())),
        )
        .into_json();
        let codes: Vec<&str> = check(&a, &b, &src)
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        assert_eq!(codes, ["TRN001", "TRN002"]);
        let allowed = phase(serde_json::json!({"app": {"replicas": 2}, "allow_downgrade": true}));
        assert!(check(&a, &allowed, &src).is_empty());
    }

    #[test]
    fn a_cluster_conversion_needs_redis_7_and_a_replica_on_aws() {
        let (_, src) = crate::spec::node::Node::new(
            crate::spec::node::Kind::Map(vec![]),
            crate::diag::Location::start_of(&std::sync::Arc::new("b.yaml".into())),
        )
        .into_json();
        let aws = |redis: serde_json::Value, replica: bool| {
            phase(serde_json::json!({
                "redis": redis,
                "targets": {"terraform": {"enabled": true, "redis_replica": replica}},
            }))
        };
        let cluster = aws(
            serde_json::json!({"mode": "cluster", "replicas": null, "sentinel": null, "cluster": {"shards": 3, "replicas_per_shard": 1}}),
            false,
        );
        let codes = |from: &Phase| -> Vec<String> {
            check(from, &cluster, &src)
                .iter()
                .map(|d| d.code.as_str().to_owned())
                .collect()
        };
        let lone = aws(serde_json::json!({"mode": "standalone"}), false);
        assert_eq!(codes(&lone), ["TRN004"]);
        let paired = aws(serde_json::json!({"mode": "standalone"}), true);
        assert!(codes(&paired).is_empty());
        let sentinel = aws(
            serde_json::json!({"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}),
            false,
        );
        assert!(codes(&sentinel).is_empty());
        let six = aws(
            serde_json::json!({"version": 6, "mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}),
            false,
        );
        assert_eq!(codes(&six), ["TRN004"]);
        // Off AWS the cluster is built beside the old Redis: nothing to convert.
        let mut local = cluster.clone();
        local.targets.terraform.enabled = false;
        assert!(check(&lone, &local, &src).is_empty());
    }

    #[test]
    fn queues_move_in_a_transition_of_their_own() {
        let (_, src) = crate::spec::node::Node::new(
            crate::spec::node::Kind::Map(vec![]),
            crate::diag::Location::start_of(&std::sync::Arc::new("b.yaml".into())),
        )
        .into_json();
        let sentinel = serde_json::json!({"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}});
        let standalone = phase(serde_json::json!({"app": {"queues": true}}));
        let moved_and_sentinel = phase(serde_json::json!({
            "app": {"queues": true},
            "redis": sentinel.clone(),
            "queue_redis": {"maxmemory_mb": 64},
        }));
        let codes = |a: &Phase, b: &Phase| -> Vec<String> {
            check(a, b, &src)
                .iter()
                .map(|d| d.code.as_str().to_owned())
                .collect()
        };
        let both = check(&standalone, &moved_and_sentinel, &src);
        assert_eq!(both.len(), 1, "{both:?}");
        assert_eq!(both[0].code.as_str(), "TRN005");
        assert!(
            both[0].help.contains("add a phase between"),
            "{}",
            both[0].help
        );
        // One at a time: the queues first, then the mode (or the other way).
        let moved = phase(serde_json::json!({
            "app": {"queues": true},
            "queue_redis": {"maxmemory_mb": 64},
        }));
        assert!(codes(&standalone, &moved).is_empty());
        assert!(codes(&moved, &moved_and_sentinel).is_empty());
    }
}
