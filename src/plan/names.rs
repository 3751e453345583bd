//! Every node name scaleplan generates, built here and nowhere else. A
//! name is the node's identity in every phase and target (a Compose
//! service and volume, a local process and its directory, a host name),
//! so a node keeps it as a phase grows: names count from 1 and adding
//! replicas, shards or instances only adds names.

pub const POSTGRES_PRIMARY: &str = "postgres-primary";
/// BullMQ's own Redis (`queue_redis`).
pub const QUEUE_REDIS: &str = "redis-queues";

/// The `i`th streaming replica, from 1.
pub fn postgres_replica(i: u32) -> String {
    format!("postgres-replica-{i}")
}

/// The PostgreSQL node a name names: 0 for the primary, `i` for the
/// `i`th replica (as the spec lays them out, whatever role each has now).
pub fn postgres_node_index(name: &str) -> Option<u32> {
    if name == POSTGRES_PRIMARY {
        return Some(0);
    }
    let i: u32 = name.strip_prefix("postgres-replica-")?.parse().ok()?;
    (i > 0 && postgres_replica(i) == name).then_some(i)
}

/// The `i`th PgBouncer, from 1.
pub fn pgbouncer(i: u32) -> String {
    format!("pgbouncer-{i}")
}

/// The `i`th standalone or Sentinel-mode Redis node, from 1: the first is
/// launch's node and a Sentinel group's initial master.
pub fn redis(i: u32) -> String {
    format!("redis-{i}")
}

/// The `i`th sentinel, from 1.
pub fn sentinel(i: u32) -> String {
    format!("sentinel-{i}")
}

/// Node `n` (from 1; the first is the shard's initial master) of cluster
/// shard `s` (from 1).
pub fn cluster_node(s: u32, n: u32) -> String {
    format!("redis-shard{s}-{n}")
}

/// The container Compose runs for a one-replica `service` of `project`
/// (Compose names a container project-service-index).
pub fn compose_container(project: &str, service: &str) -> String {
    format!("{project}-{service}-1")
}

/// The postgres_exporter that watches `node`.
pub fn postgres_exporter(node: &str) -> String {
    format!("{node}-exporter")
}
