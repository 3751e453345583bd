//! The plan: a phase spec turned into the concrete nodes that run it, with
//! names, addresses, roles and per-node settings. Templates only format
//! what is decided here; a second target (local processes, a cloud) plans
//! the same nodes with other addresses.

use crate::pgconf::{self, Setting};
use crate::spec::types::{Dependency, Phase, PoolMode, Redis, RedisMode, Service};
use serde::Serialize;

/// Where the nodes of a phase run, which decides their addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Docker Compose: each node is a service, addressed by its name on the
    /// Compose network, on the component's standard port.
    Compose,
    /// Processes on one machine: every node on 127.0.0.1, each on its own
    /// port counted from `base_port` (see `Role::offset`).
    Local { base_port: u16 },
}

/// The kinds of node that get an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Postgres,
    Pgbouncer,
    Sentinel,
    Redis,
}

impl Role {
    fn standard_port(self) -> u16 {
        match self {
            Role::Postgres => POSTGRES_PORT,
            Role::Pgbouncer => PGBOUNCER_PORT,
            Role::Sentinel => SENTINEL_PORT,
            Role::Redis => REDIS_PORT,
        }
    }

    /// The local target's port scheme: base + offset + index (from 0).
    /// PostgreSQL base+0 (primary) and base+1.. (replicas, at most 15),
    /// PgBouncer base+100.. (at most 64), sentinels base+180.. (at most 15),
    /// Redis data nodes base+200.. (at most 600). A cluster node's bus port
    /// is its port + 10000.
    pub fn offset(self) -> u16 {
        match self {
            Role::Postgres => 0,
            Role::Pgbouncer => 100,
            Role::Sentinel => 180,
            Role::Redis => 200,
        }
    }
}

/// The local target's default base port.
pub const DEFAULT_BASE_PORT: u16 = 17000;

fn endpoint(target: Target, role: Role, index: u32, name: &str) -> Endpoint {
    match target {
        Target::Compose => Endpoint {
            host: name.to_owned(),
            port: role.standard_port(),
        },
        Target::Local { base_port } => Endpoint {
            host: "127.0.0.1".to_owned(),
            // Schema bounds keep every index inside its block, and the base
            // port below 40000, so this cannot overflow.
            port: base_port + role.offset() + index as u16,
        },
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, Serialize)]
pub struct Resources {
    pub cpu: f64,
    pub memory_mb: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    pub project: String,
    pub phase: String,
    pub title: String,
    pub order: u32,
    pub postgres: PostgresCluster,
    pub pgbouncer: PgbouncerTier,
    pub redis: RedisLayout,
    pub app: AppTier,
    pub services: Vec<ServiceTier>,
    pub workers: Vec<ServiceTier>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PostgresCluster {
    pub version: u8,
    pub image: String,
    pub database: String,
    pub user: String,
    pub primary: PostgresNode,
    pub replicas: Vec<PostgresNode>,
    pub settings: Vec<Setting>,
    pub storage_gb: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct PostgresNode {
    pub name: String,
    pub endpoint: Endpoint,
    /// Replication slot this standby streams from, when slots are on.
    pub slot: Option<String>,
    pub resources: Resources,
}

#[derive(Clone, Debug, Serialize)]
pub struct PgbouncerTier {
    pub version: String,
    pub minor: u32,
    pub image: String,
    pub instances: Vec<PgbouncerNode>,
    pub pool_mode: PoolMode,
    pub default_pool_size: u32,
    pub reserve_pool_size: u32,
    pub max_client_conn: u32,
    pub max_prepared_statements: Option<u32>,
    /// Database entry for writes: the primary.
    pub write_db: DatabaseRoute,
    /// Name of the database entry for reads.
    pub read_alias: String,
    /// Open files one instance needs: every client and server socket plus
    /// slack for logs and the listener.
    pub nofile: u32,
    pub resources: Resources,
}

#[derive(Clone, Debug, Serialize)]
pub struct PgbouncerNode {
    pub name: String,
    pub endpoint: Endpoint,
    /// Database entry for reads: the replicas, or the primary without any.
    pub read_db: DatabaseRoute,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatabaseRoute {
    /// Name clients connect to through PgBouncer.
    pub alias: String,
    pub hosts: Vec<String>,
    pub port: u16,
    pub dbname: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RedisNode {
    pub name: String,
    pub endpoint: Endpoint,
    /// The master this node replicates at start (Sentinel moves it later).
    pub replica_of: Option<Endpoint>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RedisCommon {
    pub version: u8,
    pub image: String,
    pub maxmemory_mb: u32,
    pub maxmemory_policy: &'static str,
    pub appendonly: bool,
    pub resources: Resources,
}

/// Redis as it runs: each mode carries exactly the settings it uses, so a
/// template cannot reach for a sentinel quorum in cluster mode.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum RedisLayout {
    Standalone {
        common: RedisCommon,
        node: RedisNode,
    },
    Sentinel {
        common: RedisCommon,
        master_name: String,
        /// The first node is the initial master.
        nodes: Vec<RedisNode>,
        sentinels: Vec<RedisNode>,
        quorum: u32,
        down_after_ms: u32,
        failover_timeout_ms: u32,
        parallel_syncs: u32,
        min_replicas_to_write: Option<u32>,
    },
    Cluster {
        common: RedisCommon,
        /// Masters first, then replicas; `redis-cli --cluster create` pairs
        /// them in that order.
        nodes: Vec<RedisNode>,
        shards: u32,
        replicas_per_shard: u32,
        node_timeout_ms: u32,
    },
}

impl RedisLayout {
    /// Every data node (not sentinels).
    pub fn data_nodes(&self) -> Vec<&RedisNode> {
        match self {
            RedisLayout::Standalone { node, .. } => vec![node],
            RedisLayout::Sentinel { nodes, .. } | RedisLayout::Cluster { nodes, .. } => {
                nodes.iter().collect()
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AppTier {
    pub name: String,
    pub image: String,
    pub port: u16,
    pub health_path: String,
    pub replicas: u32,
    pub resources: Resources,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceTier {
    pub name: String,
    pub image: String,
    pub port: Option<u16>,
    pub health_path: String,
    pub replicas: u32,
    pub resources: Resources,
    pub uses_postgres: bool,
    pub uses_redis: bool,
}

pub const POSTGRES_PORT: u16 = 5432;
pub const PGBOUNCER_PORT: u16 = 6432;
pub const REDIS_PORT: u16 = 6379;
pub const SENTINEL_PORT: u16 = 26379;

/// Container images per version. Pinned to a major (Postgres, Redis) or an
/// exact release (PgBouncer, which has no official image), so a rebuild
/// never jumps a version the settings were not rendered for.
pub fn postgres_image(version: u8) -> String {
    format!("postgres:{version}-bookworm")
}

pub fn redis_image(version: u8) -> String {
    format!("redis:{version}-bookworm")
}

/// PgBouncer has no official image; these are the pinned community images
/// scaleplan knows, by minor version. Any other version needs
/// `pgbouncer.image` (rule PGB005), rather than a guessed tag that may not
/// exist.
pub const PGBOUNCER_IMAGES: &[(u32, &str)] = &[(23, "edoburu/pgbouncer:1.23.1-p2")];

pub fn pgbouncer_image(minor: u32) -> Option<&'static str> {
    PGBOUNCER_IMAGES
        .iter()
        .find(|(m, _)| *m == minor)
        .map(|(_, image)| *image)
}

/// Server connections the PgBouncer tier may open, per destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolBudget {
    /// Databases (pools) per instance: writes and reads.
    pub databases: u32,
    /// Pools of one instance that land on the primary.
    pub primary_pools: u32,
    pub primary_per_instance: u32,
    pub primary_total: u32,
    /// Worst case on one replica: every instance's read pool on it.
    pub replica_total: u32,
}

pub fn pool_budget(phase: &Phase) -> PoolBudget {
    let pgb = &phase.pgbouncer;
    let per_pool = pgb.default_pool_size + pgb.reserve_pool_size;
    let has_replicas = phase.postgres.read_replicas > 0;
    let primary_pools = if has_replicas { 1 } else { 2 };
    PoolBudget {
        databases: 2,
        primary_pools,
        primary_per_instance: primary_pools * per_pool,
        primary_total: primary_pools * per_pool * pgb.instances,
        replica_total: if has_replicas {
            per_pool * pgb.instances
        } else {
            0
        },
    }
}

/// Service names scaleplan generates for a phase, which user services must
/// not take.
pub fn reserved_service_names(phase: &Phase) -> Vec<String> {
    let mut names = vec![
        "app".to_owned(),
        "postgres-primary".to_owned(),
        "redis-cluster-create".to_owned(),
    ];
    names.extend((1..=phase.postgres.read_replicas).map(|i| format!("postgres-replica-{i}")));
    names.extend((1..=phase.pgbouncer.instances).map(|i| format!("pgbouncer-{i}")));
    let r = &phase.redis;
    match r.mode {
        RedisMode::Standalone => names.push("redis".to_owned()),
        RedisMode::Sentinel => {
            names.extend((1..=1 + r.replicas.unwrap_or(0)).map(|i| format!("redis-{i}")));
            names.extend(
                (1..=r.sentinel.as_ref().map_or(0, |s| s.count)).map(|i| format!("sentinel-{i}")),
            );
        }
        RedisMode::Cluster => {
            let c = r.cluster.as_ref();
            let n = c.map_or(0, |c| c.shards * (1 + c.replicas_per_shard));
            names.extend((1..=n).map(|i| format!("redis-node-{i}")));
        }
    }
    names
}

pub fn plan(phase: &Phase, target: Target) -> Topology {
    let pg = &phase.postgres;
    let pg_resources = Resources {
        cpu: pg.primary.cpu,
        memory_mb: pg.primary.memory_mb,
    };
    let primary = PostgresNode {
        name: "postgres-primary".to_owned(),
        endpoint: endpoint(target, Role::Postgres, 0, "postgres-primary"),
        slot: None,
        resources: pg_resources.clone(),
    };
    let replicas: Vec<PostgresNode> = (1..=pg.read_replicas)
        .map(|i| {
            let name = format!("postgres-replica-{i}");
            PostgresNode {
                endpoint: endpoint(target, Role::Postgres, i, &name),
                slot: pg.replication_slots.then(|| format!("replica_{i}")),
                name,
                resources: pg_resources.clone(),
            }
        })
        .collect();

    let pgb = &phase.pgbouncer;
    let database = pg.database.as_str().to_owned();
    let write_db = DatabaseRoute {
        alias: database.clone(),
        hosts: vec![primary.endpoint.host.clone()],
        port: primary.endpoint.port,
        dbname: database.clone(),
    };
    let read_alias = format!("{database}_ro");
    // PgBouncer takes a list of hosts but one port for them all. Where the
    // replicas share a port (Compose: one host each) every instance spreads
    // reads over all of them; where they differ (local: one host, a port
    // each) instance i reads from replica i mod n, so the instances together
    // still cover every replica.
    let read_route = |instance: usize| -> DatabaseRoute {
        let (hosts, port) = if replicas.is_empty() {
            (vec![primary.endpoint.host.clone()], primary.endpoint.port)
        } else if replicas
            .iter()
            .all(|r| r.endpoint.port == replicas[0].endpoint.port)
        {
            (
                replicas.iter().map(|r| r.endpoint.host.clone()).collect(),
                replicas[0].endpoint.port,
            )
        } else {
            let r = &replicas[instance % replicas.len()];
            (vec![r.endpoint.host.clone()], r.endpoint.port)
        };
        DatabaseRoute {
            alias: read_alias.clone(),
            hosts,
            port,
            dbname: database.clone(),
        }
    };
    let budget = pool_budget(phase);
    let pgbouncer = PgbouncerTier {
        version: pgb.version.as_str().to_owned(),
        minor: pgb.version.minor(),
        image: pgb
            .image
            .as_ref()
            .map(|i| i.as_str().to_owned())
            .or_else(|| pgbouncer_image(pgb.version.minor()).map(str::to_owned))
            .unwrap_or_default(),
        instances: (1..=pgb.instances)
            .map(|i| {
                let name = format!("pgbouncer-{i}");
                PgbouncerNode {
                    endpoint: endpoint(target, Role::Pgbouncer, i - 1, &name),
                    read_db: read_route(i as usize - 1),
                    name,
                }
            })
            .collect(),
        pool_mode: pgb.pool_mode,
        default_pool_size: pgb.default_pool_size,
        reserve_pool_size: pgb.reserve_pool_size,
        max_client_conn: pgb.max_client_conn,
        max_prepared_statements: pgb
            .max_prepared_statements
            .filter(|_| pgb.version.minor() >= 21),
        write_db,
        read_alias,
        nofile: pgb.max_client_conn
            + budget.databases * (pgb.default_pool_size + pgb.reserve_pool_size)
            + 100,
        resources: Resources {
            cpu: pgb.cpu,
            memory_mb: pgb.memory_mb,
        },
    };

    Topology {
        project: phase.project.as_str().to_owned(),
        phase: phase.name.as_str().to_owned(),
        title: phase
            .title
            .as_ref()
            .map_or_else(|| phase.name.as_str().to_owned(), |t| t.as_str().to_owned()),
        order: phase.order,
        postgres: PostgresCluster {
            version: pg.version,
            image: postgres_image(pg.version),
            database,
            user: pg.user.as_str().to_owned(),
            primary,
            replicas,
            settings: pgconf::settings(pg),
            storage_gb: pg.primary.storage_gb,
        },
        pgbouncer,
        redis: plan_redis(&phase.redis, phase.project.as_str(), target),
        app: AppTier {
            name: "app".to_owned(),
            image: phase.app.image.as_str().to_owned(),
            port: phase.app.port,
            health_path: phase.app.health_path.as_str().to_owned(),
            replicas: phase.app.replicas,
            resources: Resources {
                cpu: phase.app.cpu,
                memory_mb: phase.app.memory_mb,
            },
        },
        services: phase.services.iter().map(service).collect(),
        workers: phase.workers.iter().map(service).collect(),
    }
}

impl Topology {
    /// Everything that runs application code: the app first, then the
    /// services and workers. Every target deploys this one list.
    pub fn workloads(&self) -> Vec<ServiceTier> {
        let app = &self.app;
        let mut out = vec![ServiceTier {
            name: app.name.clone(),
            image: app.image.clone(),
            port: Some(app.port),
            health_path: app.health_path.clone(),
            replicas: app.replicas,
            resources: app.resources.clone(),
            uses_postgres: true,
            uses_redis: true,
        }];
        out.extend(self.services.iter().chain(self.workers.iter()).cloned());
        out
    }
}

fn service(s: &Service) -> ServiceTier {
    ServiceTier {
        name: s.name.as_str().to_owned(),
        image: s.image.as_str().to_owned(),
        port: s.port,
        health_path: s.health_path.as_str().to_owned(),
        replicas: s.replicas,
        resources: Resources {
            cpu: s.cpu,
            memory_mb: s.memory_mb,
        },
        uses_postgres: s.uses.contains(&Dependency::Postgres),
        uses_redis: s.uses.contains(&Dependency::Redis),
    }
}

fn plan_redis(r: &Redis, project: &str, target: Target) -> RedisLayout {
    let common = RedisCommon {
        version: r.version,
        image: redis_image(r.version),
        maxmemory_mb: r.maxmemory_mb,
        maxmemory_policy: r.maxmemory_policy.as_str(),
        appendonly: r.appendonly,
        resources: Resources {
            cpu: r.cpu,
            memory_mb: r.memory_mb,
        },
    };
    let node = |role: Role, index: u32, name: String, replica_of: Option<Endpoint>| RedisNode {
        endpoint: endpoint(target, role, index, &name),
        name,
        replica_of,
    };
    // The rules guarantee the block of the chosen mode exists; a missing one
    // falls back to the smallest valid layout rather than panicking.
    match (r.mode, &r.sentinel, &r.cluster) {
        (RedisMode::Sentinel, Some(s), _) => {
            let master = node(Role::Redis, 0, "redis-1".to_owned(), None);
            let mut nodes = vec![master.clone()];
            nodes.extend((2..=1 + r.replicas.unwrap_or(1)).map(|i| {
                node(
                    Role::Redis,
                    i - 1,
                    format!("redis-{i}"),
                    Some(master.endpoint.clone()),
                )
            }));
            RedisLayout::Sentinel {
                common,
                master_name: project.to_owned(),
                nodes,
                sentinels: (1..=s.count)
                    .map(|i| node(Role::Sentinel, i - 1, format!("sentinel-{i}"), None))
                    .collect(),
                quorum: s.quorum,
                down_after_ms: s.down_after_ms,
                failover_timeout_ms: s.failover_timeout_ms,
                parallel_syncs: s.parallel_syncs,
                min_replicas_to_write: r.min_replicas_to_write,
            }
        }
        (RedisMode::Cluster, _, Some(c)) => {
            let total = c.shards * (1 + c.replicas_per_shard);
            RedisLayout::Cluster {
                common,
                nodes: (1..=total)
                    .map(|i| node(Role::Redis, i - 1, format!("redis-node-{i}"), None))
                    .collect(),
                shards: c.shards,
                replicas_per_shard: c.replicas_per_shard,
                node_timeout_ms: c.node_timeout_ms,
            }
        }
        _ => RedisLayout::Standalone {
            common,
            node: node(Role::Redis, 0, "redis".to_owned(), None),
        },
    }
}
