//! The one port allocator: every listener of every target gets its port
//! here and nowhere else.
//!
//! In Compose and the cloud each node is a host of its own, so a node
//! listens on its component's usual port; what can collide there is what
//! Compose publishes on the machine's 127.0.0.1 (`HostPorts`). On the
//! local target every node shares 127.0.0.1 and gets a port counted from
//! the base port, in blocks laid end to end (`LAYOUT`).
//!
//! Why the blocks are sized from the schema's bounds and not from the
//! phase: the phases of a project are one deployment at different sizes,
//! and `migrate` grows it while it serves. A node must keep its port in
//! every phase (its peers, its replicas and the app know it by that port),
//! so the block of every stateful kind is as large as the schema lets a
//! phase make it, and a phase with more replicas fills its block without
//! moving the next one. The app's replicas have a block too, for when the
//! local target runs them; PORT002 refuses two listeners on one address.

use super::target::Target;
use serde::Serialize;

/// The most streaming replicas a phase may have (schema: read_replicas).
pub const MAX_READ_REPLICAS: u16 = 15;
/// The most PgBouncer processes (schema: pgbouncer.instances).
pub const MAX_PGBOUNCERS: u16 = 64;
/// The most sentinels (schema: redis.sentinel.count).
pub const MAX_SENTINELS: u16 = 15;
/// The most Redis replicas in Sentinel mode (schema: redis.replicas).
pub const MAX_REDIS_REPLICAS: u16 = 15;
/// The most cluster shards (schema: redis.cluster.shards).
pub const MAX_SHARDS: u16 = 100;
/// Ports each cluster shard may use: a master and up to five replicas
/// (schema: redis.cluster.replicas_per_shard).
pub const CLUSTER_PORTS_PER_SHARD: u16 = 6;
/// The most app replicas (schema: app.replicas).
pub const MAX_APP_REPLICAS: u16 = 1000;
/// The highest base port the schema allows (targets.local.base_port).
pub const MAX_BASE_PORT: u16 = 40000;
/// Redis Cluster's bus listens this far above a node's port (Redis's
/// default; `cluster-port` exists only from Redis 7 and the schema takes 6).
pub const CLUSTER_BUS_OFFSET: u16 = 10000;

/// Each kind of listener that gets a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Postgres,
    Pgbouncer,
    /// The TCP proxy in front of PostgreSQL: its write, read, replicas and
    /// stats listeners, in that order (`ProxyListener`).
    Proxy,
    Sentinel,
    /// A standalone or Sentinel-mode Redis node.
    Redis,
    /// A Redis Cluster node: a block of its own, so a cluster can run
    /// beside the Sentinel group it replaces while the data moves.
    ClusterNode,
    Prometheus,
    RedisExporter,
    PgbouncerExporter,
    /// One postgres_exporter per PostgreSQL node, in node order.
    PostgresExporter,
    /// The app's replicas.
    App,
    /// The HTTP edge in front of the app's replicas on the local target:
    /// its listener, then its stats page (`EdgeListener`).
    Edge,
    /// BullMQ's own Redis (`queue_redis`): a block after every other, so
    /// adding it moved no running node.
    QueueRedis,
}

/// The local edge's listeners, each its index in the edge's block.
#[derive(Clone, Copy, Debug)]
pub enum EdgeListener {
    Http = 0,
    Stats = 1,
}

/// The proxy's listeners, each its index in the proxy's block.
#[derive(Clone, Copy, Debug)]
pub enum ProxyListener {
    Write = 0,
    Read = 1,
    Replicas = 2,
    Stats = 3,
}

/// The local target's blocks in the order they are laid out from the base
/// port, each with room for the most the schema allows of its kind.
/// Appending a kind at the end moves nobody's port; inserting one moves
/// every later block, which a running deployment cannot follow.
pub const LAYOUT: [(Role, u16); 13] = [
    (Role::Postgres, 1 + MAX_READ_REPLICAS),
    (Role::Pgbouncer, MAX_PGBOUNCERS),
    (Role::Proxy, 4),
    (Role::Sentinel, MAX_SENTINELS),
    (Role::Redis, 1 + MAX_REDIS_REPLICAS),
    (Role::ClusterNode, MAX_SHARDS * CLUSTER_PORTS_PER_SHARD),
    (Role::Prometheus, 1),
    (Role::RedisExporter, 1),
    (Role::PgbouncerExporter, 1),
    (Role::PostgresExporter, 1 + MAX_READ_REPLICAS),
    (Role::App, MAX_APP_REPLICAS),
    (Role::Edge, 2),
    (Role::QueueRedis, 1),
];

/// Ports the stateful blocks and the monitoring take from the base port
/// (everything before the app's block). A deployment that runs its app or
/// a queue Redis holds ports up to SERVICES_OFFSET: two deployments on one
/// machine need base ports that far apart (docs/generated-files.md).
pub const STATEFUL_SPAN: u16 = offset(Role::App);

/// Where the fixed blocks end: the services' replicas, once the local
/// target runs them, take their ports from here, in spec order.
pub const SERVICES_OFFSET: u16 = offset(Role::QueueRedis) + block_size(Role::QueueRedis);

// The cluster's bus ports lie above every fixed block, and the highest of
// them, at the highest base port, fits below 65536; what runs today (every
// block before the app's) fits in 1,000 ports. Checked when the crate
// compiles. Two deployments on one machine need base ports at least
// STATEFUL_SPAN apart, and not 10,000 apart when both run a cluster (its
// bus ports lie 10,000 above its nodes').
const _: () = assert!(offset(Role::ClusterNode) + CLUSTER_BUS_OFFSET > SERVICES_OFFSET);
const _: () = assert!(
    MAX_BASE_PORT as u32
        + (offset(Role::ClusterNode) + block_size(Role::ClusterNode)) as u32
        + CLUSTER_BUS_OFFSET as u32
        <= 65535
);
const _: () = assert!(STATEFUL_SPAN <= 1000);

/// A block's first port, counted from the base port.
pub const fn offset(role: Role) -> u16 {
    let mut sum = 0;
    let mut i = 0;
    while i < LAYOUT.len() {
        if LAYOUT[i].0 as u8 == role as u8 {
            return sum;
        }
        sum += LAYOUT[i].1;
        i += 1;
    }
    sum
}

/// How many ports a block holds.
pub const fn block_size(role: Role) -> u16 {
    let mut i = 0;
    while i < LAYOUT.len() {
        if LAYOUT[i].0 as u8 == role as u8 {
            return LAYOUT[i].1;
        }
        i += 1;
    }
    0
}

impl Role {
    /// The port a node of this kind listens on where it has a host of its
    /// own (Compose, the cloud): the component's usual one.
    pub const fn standard_port(self) -> u16 {
        match self {
            Role::Postgres | Role::Proxy => 5432,
            Role::Pgbouncer => 6432,
            Role::Sentinel => 26379,
            Role::Redis | Role::ClusterNode | Role::QueueRedis => 6379,
            Role::Prometheus => 9090,
            Role::RedisExporter => 9121,
            Role::PgbouncerExporter => 9127,
            Role::PostgresExporter => 9187,
            Role::App => 3000,
            Role::Edge => EDGE_PORT,
        }
    }
}

pub const POSTGRES_PORT: u16 = Role::Postgres.standard_port();
pub const PGBOUNCER_PORT: u16 = Role::Pgbouncer.standard_port();
pub const REDIS_PORT: u16 = Role::Redis.standard_port();
pub const SENTINEL_PORT: u16 = Role::Sentinel.standard_port();
/// Grafana's port inside its container.
pub const GRAFANA_PORT: u16 = 3000;
/// The HTTP edge's port inside its container (Compose).
pub const EDGE_PORT: u16 = 8080;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The loopback address every local node and every published port uses.
pub const LOOPBACK: &str = "127.0.0.1";

impl Target {
    /// The address of a node of `role`, the `index`th of its kind (from 0),
    /// named `name`.
    pub fn endpoint(self, role: Role, index: u16, name: &str) -> Endpoint {
        match self {
            // In the cloud, nodes are managed services and ECS tasks whose
            // addresses Terraform knows only at apply time; names stand in.
            // The proxy's listeners share its host, one port each.
            Target::Compose | Target::Cloud if role == Role::Proxy => Endpoint {
                host: name.to_owned(),
                port: role.standard_port() + index,
            },
            Target::Compose | Target::Cloud => Endpoint {
                host: name.to_owned(),
                port: role.standard_port(),
            },
            Target::Local { base_port } => Endpoint {
                host: LOOPBACK.to_owned(),
                // The schema keeps the base port at most MAX_BASE_PORT and
                // every index inside its block, so this stays below 65536
                // (a test checks the largest phase); saturating keeps an
                // out-of-schema plan from panicking.
                port: base_port
                    .saturating_add(offset(role))
                    .saturating_add(index.min(block_size(role).saturating_sub(1))),
            },
        }
    }
}

/// The cluster bus port of a cluster node listening on `port`.
pub fn cluster_bus_port(port: u16) -> u16 {
    port.saturating_add(CLUSTER_BUS_OFFSET)
}

/// What Compose publishes on the machine's 127.0.0.1, so tools and an app
/// run on the machine reach the deployment: one port each, all distinct
/// (PORT002 checks the ones the spec can move).
#[derive(Clone, Debug, Serialize)]
pub struct HostPorts {
    /// PgBouncer's write and read databases, through the proxy.
    pub proxy_write: u16,
    pub proxy_read: u16,
    /// The HTTP edge in front of the app replicas: the app's own port, so
    /// a client uses the same URL as without Compose.
    pub edge: u16,
    /// A standalone Redis.
    pub redis: u16,
    /// The queue Redis (`queue_redis`).
    pub queue_redis: u16,
    pub prometheus: u16,
    pub grafana: u16,
}

impl HostPorts {
    pub fn plan(app_port: u16) -> HostPorts {
        HostPorts {
            proxy_write: PGBOUNCER_PORT,
            proxy_read: PGBOUNCER_PORT + 1,
            edge: app_port,
            redis: REDIS_PORT,
            queue_redis: REDIS_PORT + 1,
            prometheus: Role::Prometheus.standard_port(),
            grafana: 3001,
        }
    }
}

/// One listener of a planned topology, for the check that no two share
/// an address (PORT002).
#[derive(Clone, Debug)]
pub struct Listener {
    /// What listens, as a user reads it: `postgres-primary`, `redis-shard1-1
    /// (cluster bus)`, `Compose's published prometheus`.
    pub what: String,
    pub endpoint: Endpoint,
    /// The spec field that sets this port, for a listener the spec can
    /// move (`/app/port`); None for one whose port is the plan's.
    pub field: Option<String>,
}

impl Listener {
    pub fn fixed(what: impl Into<String>, endpoint: &Endpoint) -> Listener {
        Listener {
            what: what.into(),
            endpoint: endpoint.clone(),
            field: None,
        }
    }
}

/// The pairs of listeners that share an address and port, each pair once,
/// the first-listed first.
pub fn clashes(listeners: &[Listener]) -> Vec<(&Listener, &Listener)> {
    let mut seen: std::collections::HashMap<&Endpoint, &Listener> = Default::default();
    let mut out = Vec::new();
    for l in listeners {
        match seen.get(&l.endpoint) {
            Some(first) => out.push((*first, l)),
            None => {
                seen.insert(&l.endpoint, l);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema's bounds are the blocks' sizes: a bound raised in the
    /// types without the block here would let two kinds share ports.
    #[test]
    fn blocks_are_sized_by_the_schema() {
        let schema =
            serde_json::to_value(schemars::schema_for!(crate::spec::types::Phase)).unwrap();
        let defs = &schema["$defs"];
        let max = |def: &str, field: &str| defs[def]["properties"][field]["maximum"].as_u64();
        assert_eq!(
            max("Postgres", "read_replicas"),
            Some(u64::from(MAX_READ_REPLICAS))
        );
        assert_eq!(
            max("Pgbouncer", "instances"),
            Some(u64::from(MAX_PGBOUNCERS))
        );
        assert_eq!(max("Sentinel", "count"), Some(u64::from(MAX_SENTINELS)));
        assert_eq!(
            max("Redis", "replicas"),
            Some(u64::from(MAX_REDIS_REPLICAS))
        );
        assert_eq!(max("Cluster", "shards"), Some(u64::from(MAX_SHARDS)));
        assert_eq!(
            max("Cluster", "replicas_per_shard"),
            Some(u64::from(CLUSTER_PORTS_PER_SHARD - 1))
        );
        assert_eq!(max("App", "replicas"), Some(u64::from(MAX_APP_REPLICAS)));
        assert_eq!(
            max("LocalTarget", "base_port"),
            Some(u64::from(MAX_BASE_PORT))
        );
    }

    /// Every kind of listener has a block of its own.
    #[test]
    fn every_role_has_a_block() {
        for role in [
            Role::Postgres,
            Role::Pgbouncer,
            Role::Proxy,
            Role::Sentinel,
            Role::Redis,
            Role::ClusterNode,
            Role::Prometheus,
            Role::RedisExporter,
            Role::PgbouncerExporter,
            Role::PostgresExporter,
            Role::App,
            Role::Edge,
        ] {
            assert!(block_size(role) > 0, "{role:?}");
            assert_eq!(
                LAYOUT.iter().filter(|(r, _)| *r == role).count(),
                1,
                "{role:?}"
            );
        }
    }

    /// Blocks never overlap, the cluster's bus ports lie above everything
    /// fixed, and the highest fixed port of the highest base fits.
    #[test]
    fn blocks_are_laid_end_to_end() {
        let mut next = 0;
        for (role, size) in LAYOUT {
            assert_eq!(offset(role), next, "{role:?}");
            assert_eq!(block_size(role), size);
            next += size;
        }
        assert_eq!(SERVICES_OFFSET, next);
    }
}
