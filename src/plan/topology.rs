//! The nodes of a phase on one target: names, addresses, roles and
//! per-node settings. Templates only format what is decided here, and every
//! node name is built here and nowhere else.

use super::images::{self, ComposeImages};
use super::names;
use super::pgconf::{self, Setting};
use super::pools::{self, PoolBudget};
use super::ports::{self, EdgeListener, HostPorts, Listener, ProxyListener, Role};
use super::target::{COMPOSE_PGBOUNCER_RUNNING, Target};
use crate::spec::images::{pgbouncer_image, postgres_image, redis_image};
use crate::spec::types::{Dependency, Phase, PoolMode, Redis, RedisMode, Service};
use serde::Serialize;

pub use super::ports::Endpoint;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resources {
    pub cpu: f64,
    pub memory_mb: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Topology {
    #[serde(skip)]
    pub target: Target,
    pub project: String,
    pub phase: String,
    pub title: String,
    pub order: u32,
    pub postgres: PostgresCluster,
    pub pgbouncer: PgbouncerTier,
    pub proxy: PgProxy,
    pub redis: RedisLayout,
    /// BullMQ's own Redis, where the spec names one (`queue_redis`).
    pub queue_redis: Option<QueueRedis>,
    pub app: AppTier,
    pub services: Vec<ServiceTier>,
    pub workers: Vec<ServiceTier>,
    /// The notification workers' BullMQ queues (the app contract gives
    /// each its prefix: `contract::queue_prefixes`).
    pub queues: Vec<String>,
    /// BullMQ runs on this phase's Redis (`runs_queues`).
    pub bullmq: bool,
    /// Prometheus and the exporters that watch this topology.
    pub monitor: MonitorNodes,
    /// What Compose publishes on the machine's 127.0.0.1 (Compose only).
    pub host_ports: Option<HostPorts>,
    /// Where each Compose service's image comes from (Compose only).
    pub images: Option<ComposeImages>,
}

/// Prometheus and the exporters on a target: on the local target beside
/// the nodes (ports from `ports`), in Compose each its own service on the
/// exporter's usual port.
#[derive(Clone, Debug, Serialize)]
pub struct MonitorNodes {
    pub prometheus: Endpoint,
    pub redis_exporter: Endpoint,
    pub pgbouncer_exporter: Endpoint,
    /// One per PostgreSQL node, in node order (the primary first).
    pub postgres_exporters: Vec<PostgresExporter>,
}

impl MonitorNodes {
    /// Every monitoring service (Compose) or process (local), Grafana
    /// aside: the exporters, then Prometheus.
    pub fn services(&self) -> Vec<String> {
        self.postgres_exporters
            .iter()
            .map(|e| e.name.clone())
            .chain(
                [
                    &self.pgbouncer_exporter,
                    &self.redis_exporter,
                    &self.prometheus,
                ]
                .map(|e| e.host.clone()),
            )
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PostgresExporter {
    /// The exporter's own name (a Compose service, a local process).
    pub name: String,
    /// The PostgreSQL node it watches.
    pub node: String,
    /// That node's address.
    pub target: Endpoint,
    pub endpoint: Endpoint,
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
    pub backup: super::backup::BackupPlan,
}

#[derive(Clone, Debug, Serialize)]
pub struct PostgresNode {
    pub name: String,
    pub endpoint: Endpoint,
    /// Replication slot this standby streams from, when slots are on.
    pub slot: Option<String>,
    /// In Compose, the data directory is the volume's root (postgres-
    /// primary's, as scaleplan has always created it) rather than a
    /// directory inside it (a replica's, so that a clone can be renamed
    /// into place). Fixed per node whatever its role: a promoted replica
    /// keeps its data where it is.
    pub data_is_volume_root: bool,
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
    /// Hand out idle server connections in turn rather than the most
    /// recently used first: where a read route spreads over a host list,
    /// LIFO reuse would keep a quiet pool on one replica.
    pub server_round_robin: bool,
    /// Seconds a server connection lives before PgBouncer closes it. Where
    /// reads spread over a host list, a replica back from a restart gets
    /// its share only as connections to the others are replaced: five
    /// minutes bounds that; elsewhere an hour.
    pub server_lifetime_s: u32,
    /// The server names PgBouncer dials by their current address (Compose):
    /// None on one machine (addresses only) and in the cloud (RDS's
    /// endpoints, whose DNS answers live seconds).
    pub follow: Option<FollowNames>,
    /// Open files one instance needs: every client and server socket plus
    /// slack for logs and the listener.
    pub nofile: u32,
    /// The server connections the tier may open, per destination.
    pub budget: PoolBudget,
    pub resources: Resources,
}

/// One endpoint per role in front of PostgreSQL (HAProxy, TCP): writes
/// and reads each balanced over every PgBouncer, and the replicas, which
/// PgBouncer's read pools reach through it. Each backend is health-checked
/// with a real PostgreSQL startup, so a PgBouncer or replica that is down
/// leaves the rotation within seconds.
#[derive(Clone, Debug, Serialize)]
pub struct PgProxy {
    pub name: String,
    pub write: Endpoint,
    pub read: Endpoint,
    pub replicas: Endpoint,
    pub stats: Endpoint,
    /// Client connections it holds at most: every PgBouncer's clients
    /// (each also takes a connection to a PgBouncer, so twice as many open
    /// files). On one machine, capped where a process's open files are.
    pub maxconn: u32,
    /// Open files it needs for that.
    pub nofile: u32,
}

/// PgBouncer resolves server names with c-ares, which since 1.31 keeps an
/// answer for as long as its TTL says whatever PgBouncer's dns_max_ttl is,
/// and Docker's DNS answers with 600 s: a service recreated at a new
/// address (the proxy, a promoted node) was dialled at its old one for up
/// to ten minutes. So in Compose PgBouncer runs from a copy of its file
/// that names each server by the address Docker's DNS gives now,
/// looked up again every second; where one moves, the copy is rewritten
/// and PgBouncer reloads (no client dropped).
#[derive(Clone, Debug, Serialize)]
pub struct FollowNames {
    /// Where the running copy lives: in memory, beside the auth file.
    pub running_config: String,
    /// Seconds PgBouncer keeps a name it resolves itself (one not yet up
    /// when PgBouncer starts), and that name's absence.
    pub dns_ttl_s: u32,
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
    /// How PgBouncer picks among several hosts, where the route spreads
    /// over a host list and the version has the setting (1.24; before it,
    /// round-robin was the only behaviour).
    pub load_balance_hosts: Option<&'static str>,
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
        /// Every node, shard by shard, each shard's master first.
        nodes: Vec<RedisNode>,
        shards: Vec<ClusterShard>,
        replicas_per_shard: u32,
        node_timeout_ms: u32,
    },
}

/// The queue Redis as it runs: one standalone node whose policy is
/// always noeviction and whose every write is appended to its file (the
/// spec has no field that could say otherwise).
#[derive(Clone, Debug, Serialize)]
pub struct QueueRedis {
    pub common: RedisCommon,
    pub node: RedisNode,
}

impl QueueRedis {
    /// As a standalone layout, which redis.conf, start.sh and the probes
    /// already know how to run.
    pub fn layout(&self) -> RedisLayout {
        RedisLayout::Standalone {
            common: self.common.clone(),
            node: self.node.clone(),
        }
    }
}

/// One shard of a Redis Cluster as planned: its initial master and the
/// replicas that follow it.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterShard {
    /// From 1.
    pub index: u32,
    pub master: RedisNode,
    pub replicas: Vec<RedisNode>,
}

/// How redis/start.sh runs a node (its first argument): a `Replicated`
/// node keeps the master Sentinel last gave it across restarts; a
/// `Server` node runs its file as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisStart {
    Server,
    Replicated,
    Sentinel,
}

impl RedisStart {
    pub fn as_arg(self) -> &'static str {
        match self {
            RedisStart::Server => "server",
            RedisStart::Replicated => "replicated",
            RedisStart::Sentinel => "sentinel",
        }
    }
}

impl RedisLayout {
    /// How this layout's data nodes start: Sentinel rewrites a node's
    /// master, which a restart must keep.
    pub fn data_start(&self) -> RedisStart {
        match self {
            RedisLayout::Sentinel { .. } => RedisStart::Replicated,
            RedisLayout::Standalone { .. } | RedisLayout::Cluster { .. } => RedisStart::Server,
        }
    }

    /// The settings SENTINEL SET changes on a running sentinel, by the
    /// names Sentinel knows them: what a transition sets and a migration
    /// reads back. Empty outside Sentinel mode.
    pub fn sentinel_settings(&self) -> Vec<(&'static str, u32)> {
        match self {
            RedisLayout::Sentinel {
                quorum,
                down_after_ms,
                failover_timeout_ms,
                parallel_syncs,
                ..
            } => vec![
                ("quorum", *quorum),
                ("down-after-milliseconds", *down_after_ms),
                ("failover-timeout", *failover_timeout_ms),
                ("parallel-syncs", *parallel_syncs),
            ],
            RedisLayout::Standalone { .. } | RedisLayout::Cluster { .. } => Vec::new(),
        }
    }

    pub fn mode(&self) -> RedisMode {
        match self {
            RedisLayout::Standalone { .. } => RedisMode::Standalone,
            RedisLayout::Sentinel { .. } => RedisMode::Sentinel,
            RedisLayout::Cluster { .. } => RedisMode::Cluster,
        }
    }

    /// Masters that take writes: one per shard in a cluster, one
    /// otherwise.
    pub fn masters(&self) -> u32 {
        match self {
            RedisLayout::Cluster { shards, .. } => shards.len() as u32,
            RedisLayout::Standalone { .. } | RedisLayout::Sentinel { .. } => 1,
        }
    }

    /// Replicas in a cluster (0 in the other modes).
    pub fn cluster_replicas(&self) -> usize {
        match self {
            RedisLayout::Cluster { shards, .. } => shards.iter().map(|s| s.replicas.len()).sum(),
            _ => 0,
        }
    }

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
    /// Where each replica listens: one address per replica on the local
    /// target; the service's name on the app's port in Compose and the
    /// cloud, where every replica is a host of its own.
    pub endpoints: Vec<Endpoint>,
    pub health_path: String,
    pub replicas: u32,
    pub resources: Resources,
    /// On the local target: its edge, and how its replicas run when the
    /// spec says (`targets.local.app`).
    pub local: Option<LocalApp>,
}

/// The app on the local target.
#[derive(Clone, Debug, Serialize)]
pub struct LocalApp {
    /// The HTTP edge in front of the replicas (HAProxy, sticky by cookie).
    pub edge: Endpoint,
    pub edge_stats: Endpoint,
    /// The replicas' command; None when the team runs its app itself.
    pub process: Option<AppProcess>,
}

/// How `up --native` runs one replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppProcess {
    /// Program first; run without a shell.
    pub command: Vec<String>,
    /// Relative to the phase files' directory.
    pub workdir: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceTier {
    pub name: String,
    pub image: String,
    pub port: Option<u16>,
    /// Where each replica listens, for a service with a port (see
    /// `AppTier::endpoints`); on the local target counted after every
    /// fixed block, in spec order.
    pub endpoints: Vec<Endpoint>,
    pub health_path: String,
    pub replicas: u32,
    pub resources: Resources,
    pub uses_postgres: bool,
    pub uses_redis: bool,
}

/// The templatefile() variables the cloud's PgBouncer config names its
/// databases by: the region's writer and its readers (the writer where the
/// region has no replica).
pub const CLOUD_WRITER: &str = "${writer_address}";
pub const CLOUD_READERS: &str = "${reader_hosts}";

/// The most a node may have on a target: one machine's worth for Compose
/// and the local target (spec `targets.compose.max_*`), the spec's sizes in
/// the cloud.
#[derive(Clone, Copy, Debug)]
struct Caps {
    cpu: f64,
    memory_mb: u32,
}

impl Caps {
    fn of(phase: &Phase, target: Target) -> Caps {
        match target {
            Target::Compose | Target::Local { .. } => Caps {
                cpu: phase.targets.compose.max_cpus,
                memory_mb: phase.targets.compose.max_memory_mb,
            },
            Target::Cloud => Caps {
                cpu: f64::INFINITY,
                memory_mb: u32::MAX,
            },
        }
    }

    fn size(self, cpu: f64, memory_mb: u32) -> Resources {
        Resources {
            cpu: cpu.min(self.cpu),
            memory_mb: memory_mb.min(self.memory_mb),
        }
    }
}

/// The nodes of `phase` on `target`.
pub fn build(phase: &Phase, target: Target) -> Topology {
    build_with_writer(phase, target, 0)
}

/// The same, with node `writer` as the primary (0: postgres-primary, as
/// the spec lays it out; `i`: postgres-replica-i, promoted). Each node
/// keeps its name, port and data whatever its role, so a promotion moves
/// only the role: the write route, the standbys' upstream and the slots
/// follow it.
pub fn build_with_writer(phase: &Phase, target: Target, writer: u32) -> Topology {
    let caps = Caps::of(phase, target);
    let pg = &phase.postgres;
    let pg_resources = caps.size(pg.primary.cpu, pg.primary.memory_mb);
    let mut nodes: Vec<PostgresNode> = (0..=pg.read_replicas)
        .map(|i| {
            let name = match i {
                0 => names::POSTGRES_PRIMARY.to_owned(),
                i => names::postgres_replica(i),
            };
            PostgresNode {
                endpoint: target.endpoint(Role::Postgres, i as u16, &name),
                slot: pg.replication_slots.then(|| format!("replica_{i}")),
                data_is_volume_root: i == 0,
                name,
                resources: pg_resources.clone(),
            }
        })
        .collect();
    let writer = if (writer as usize) < nodes.len() {
        writer as usize
    } else {
        0
    };
    let mut primary = nodes.remove(writer);
    primary.slot = None;
    let replicas = nodes;

    let pgb = &phase.pgbouncer;
    let database = pg.database.as_str().to_owned();
    // In the cloud the managed database's addresses exist only once
    // Terraform has applied: the routes name templatefile() variables,
    // filled per region.
    let cloud = target == Target::Cloud;
    let write_db = DatabaseRoute {
        alias: database.clone(),
        hosts: vec![if cloud {
            CLOUD_WRITER.to_owned()
        } else {
            primary.endpoint.host.clone()
        }],
        port: primary.endpoint.port,
        dbname: database.clone(),
        load_balance_hosts: None,
    };
    let read_alias = format!("{database}_ro");
    let clients = pgb.instances * pgb.max_client_conn;
    // A process on a shared machine gets only so many files (often 20,000
    // at most, and a container no more than its engine has): on one
    // machine, the local target's or Compose's, the proxy carries up to
    // 8,000 clients. The engine refused scale's 41,000 (`error setting
    // rlimit type 7`).
    let proxy_maxconn = match target {
        Target::Local { .. } | Target::Compose => clients.min(LOCAL_PROXY_MAXCONN),
        Target::Cloud => clients,
    };
    let proxy = PgProxy {
        name: PROXY.to_owned(),
        write: target.endpoint(Role::Proxy, ProxyListener::Write as u16, PROXY),
        read: target.endpoint(Role::Proxy, ProxyListener::Read as u16, PROXY),
        replicas: target.endpoint(Role::Proxy, ProxyListener::Replicas as u16, PROXY),
        stats: target.endpoint(Role::Proxy, ProxyListener::Stats as u16, PROXY),
        maxconn: proxy_maxconn,
        nofile: 2 * proxy_maxconn + 1000,
    };
    // In the cloud every task lists every replica of its region and
    // PgBouncer dials them in turn: one that does not answer is passed
    // over (a failed login is retried after server_login_retry, on the
    // next host), so reads spread evenly and survive a sick replica
    // (engine test `the_cloud_read_route_spreads_and_skips_a_stopped_replica`).
    let spreads = cloud;
    let read_route = |_instance: usize| -> DatabaseRoute {
        let (hosts, port) = if cloud {
            (vec![CLOUD_READERS.to_owned()], primary.endpoint.port)
        } else if replicas.is_empty() {
            (vec![primary.endpoint.host.clone()], primary.endpoint.port)
        } else {
            // Through the proxy, which checks the replicas' health and
            // shows each one's share on its stats page. PgBouncer takes one
            // port for every host of a list, and the local target's
            // replicas differ by port.
            (vec![proxy.replicas.host.clone()], proxy.replicas.port)
        };
        DatabaseRoute {
            alias: read_alias.clone(),
            hosts,
            port,
            dbname: database.clone(),
            load_balance_hosts: (spreads && pgb.version.minor() >= 24).then_some("round-robin"),
        }
    };
    let budget = pools::budget(phase);
    let instances: Vec<PgbouncerNode> = (1..=pgb.instances)
        .map(|i| {
            let name = names::pgbouncer(i);
            PgbouncerNode {
                endpoint: target.endpoint(Role::Pgbouncer, (i - 1) as u16, &name),
                read_db: read_route(i as usize - 1),
                name,
            }
        })
        .collect();
    let follow = (target == Target::Compose).then(|| FollowNames {
        running_config: COMPOSE_PGBOUNCER_RUNNING.to_owned(),
        dns_ttl_s: 1,
    });
    let pgbouncer = PgbouncerTier {
        version: pgb.version.as_str().to_owned(),
        minor: pgb.version.minor(),
        image: pgb
            .image
            .as_ref()
            .map(|i| i.as_str().to_owned())
            .or_else(|| pgbouncer_image(pgb.version.minor()).map(str::to_owned))
            .unwrap_or_default(),
        instances,
        pool_mode: pgb.pool_mode,
        default_pool_size: pgb.default_pool_size,
        reserve_pool_size: pgb.reserve_pool_size,
        max_client_conn: pgb.max_client_conn,
        // Protocol-level prepared statements (node-postgres named
        // statements, Prisma, TypeORM) through transaction pooling: on by
        // default where the image's PgBouncer knows them. The local target
        // runs the installed PgBouncer (Debian 12's 1.18 does not), so
        // there only an explicit setting renders, and `up` refuses a
        // PgBouncer too old for it.
        max_prepared_statements: pgb
            .max_prepared_statements
            .or(match target {
                Target::Compose | Target::Cloud => Some(DEFAULT_PREPARED_STATEMENTS),
                Target::Local { .. } => None,
            })
            .filter(|_| pgb.version.minor() >= 21),
        write_db,
        read_alias,
        server_round_robin: spreads,
        server_lifetime_s: if spreads { 300 } else { 3600 },
        follow,
        nofile: pgb.max_client_conn
            + budget.databases * (pgb.default_pool_size + pgb.reserve_pool_size)
            + 100,
        resources: caps.size(pgb.cpu, pgb.memory_mb),
        budget,
    };

    let pg_nodes: Vec<(String, Endpoint)> = std::iter::once(&primary)
        .chain(&replicas)
        .map(|n| (n.name.clone(), n.endpoint.clone()))
        .collect();
    Topology {
        target,
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
            settings: pgconf::settings_for(phase, pg_resources.memory_mb),
            storage_gb: pg.primary.storage_gb,
            backup: super::backup::plan(phase, target),
        },
        pgbouncer,
        proxy,
        redis: plan_redis(&phase.redis, phase.project.as_str(), target, caps),
        // Only where something queues (RED014 warns of one that would
        // hold nothing: none runs).
        queue_redis: phase
            .queue_redis
            .as_ref()
            .filter(|_| phase.runs_queues())
            .map(|q| plan_queue_redis(q, phase.redis.version, target, caps)),
        queues: queue_names(phase),
        bullmq: phase.runs_queues(),
        monitor: monitor_nodes(target, &pg_nodes),
        host_ports: (target == Target::Compose).then(|| HostPorts::plan(phase.app.port)),
        images: (target == Target::Compose).then(|| images::plan(phase)),
        app: AppTier {
            name: APP.to_owned(),
            image: phase.app.image.as_str().to_owned(),
            port: phase.app.port,
            endpoints: replica_endpoints(target, APP, phase.app.port, phase.app.replicas, |i| {
                Some(target.endpoint(Role::App, i as u16, APP))
            }),
            health_path: phase.app.health_path.as_str().to_owned(),
            replicas: phase.app.replicas,
            resources: caps.size(phase.app.cpu, phase.app.memory_mb),
            local: matches!(target, Target::Local { .. }).then(|| LocalApp {
                edge: target.endpoint(Role::Edge, EdgeListener::Http as u16, EDGE),
                edge_stats: target.endpoint(Role::Edge, EdgeListener::Stats as u16, EDGE),
                process: phase.targets.local.app.as_ref().map(|a| AppProcess {
                    command: a.command.iter().map(|c| c.as_str().to_owned()).collect(),
                    workdir: a.workdir.as_str().to_owned(),
                }),
            }),
        },
        services: phase
            .services
            .iter()
            .map(|s| service(s, caps, target))
            .collect(),
        workers: phase
            .workers
            .iter()
            .map(|s| service(s, caps, target))
            .collect(),
    }
}

/// The BullMQ queues a worker consumes: `push-<worker>` for its
/// notifications to users, and `broadcast-<worker>` when it sends
/// broadcasts (topic messages), so a broadcast never waits behind a
/// backlog of pushes. None for a worker without notifications.
pub fn worker_queues(worker: &Service) -> Vec<String> {
    let Some(n) = &worker.notifications else {
        return Vec::new();
    };
    let mut out = vec![format!("push-{}", worker.name)];
    if n.broadcasts_per_hour.is_some() {
        out.push(format!("broadcast-{}", worker.name));
    }
    out
}

/// Every BullMQ queue of a phase, worker by worker in spec order.
pub fn queue_names(phase: &Phase) -> Vec<String> {
    phase.workers.iter().flat_map(worker_queues).collect()
}

/// The app's service.
pub const APP: &str = "app";
/// Prepared statements each server connection keeps (what recent
/// PgBouncer releases default to).
pub const DEFAULT_PREPARED_STATEMENTS: u32 = 200;
/// The Compose service that creates a Redis Cluster once its nodes run.
pub const CLUSTER_CREATE: &str = "redis-cluster-create";
/// The proxy in front of PostgreSQL.
pub const PROXY: &str = "pg-proxy";
/// The most clients the proxy takes on one machine, the local target's or
/// Compose's (see `PgProxy`).
pub const LOCAL_PROXY_MAXCONN: u32 = 8000;
/// The HTTP edge in front of the app replicas (Compose).
pub const EDGE: &str = "edge";

impl RedisLayout {
    /// What every mode shares: version, memory, policy.
    pub fn common(&self) -> &RedisCommon {
        match self {
            RedisLayout::Standalone { common, .. }
            | RedisLayout::Sentinel { common, .. }
            | RedisLayout::Cluster { common, .. } => common,
        }
    }
}

impl Topology {
    /// BullMQ's queues live in a Redis Cluster: the phase's Redis is one,
    /// and no queue Redis of their own takes them. Their prefixes then
    /// carry hash tags.
    pub fn queues_on_cluster(&self) -> bool {
        matches!(self.redis, RedisLayout::Cluster { .. }) && self.queue_redis.is_none()
    }

    /// The named volumes Compose keeps: each PostgreSQL node's, each Redis
    /// node's and sentinel's, and monitoring's. A volume's name is its
    /// node's, so it survives every phase that keeps the node.
    pub fn volumes(&self) -> Vec<String> {
        let pg = &self.postgres;
        let mut names: Vec<&str> = std::iter::once(&pg.primary)
            .chain(&pg.replicas)
            .map(|n| n.name.as_str())
            .collect();
        names.extend(self.redis.data_nodes().into_iter().map(|n| n.name.as_str()));
        if let RedisLayout::Sentinel { sentinels, .. } = &self.redis {
            names.extend(sentinels.iter().map(|n| n.name.as_str()));
        }
        names.extend(self.queue_redis.iter().map(|q| q.node.name.as_str()));
        names.extend([PROMETHEUS, GRAFANA]);
        // pgBackRest's repository: the WAL archive and the backups.
        if pg.backup.archive.is_some() {
            names.push("pgbackrest");
        }
        names.into_iter().map(|n| format!("{n}-data")).collect()
    }

    /// Every listener of this topology: each node's, the cluster's bus
    /// ports, the monitoring's, the app's and services' replicas and,
    /// in Compose, what is published on 127.0.0.1.
    pub fn listeners(&self) -> Vec<Listener> {
        let pg = &self.postgres;
        let mut out: Vec<Listener> = std::iter::once(&pg.primary)
            .chain(&pg.replicas)
            .map(|n| Listener::fixed(&n.name, &n.endpoint))
            .collect();
        out.extend(
            self.pgbouncer
                .instances
                .iter()
                .map(|n| Listener::fixed(&n.name, &n.endpoint)),
        );
        let p = &self.proxy;
        for (what, e) in [
            ("writes", &p.write),
            ("reads", &p.read),
            ("replicas", &p.replicas),
            ("stats", &p.stats),
        ] {
            out.push(Listener::fixed(format!("{} ({what})", p.name), e));
        }
        for n in self.redis.data_nodes() {
            out.push(Listener::fixed(&n.name, &n.endpoint));
            if matches!(self.redis, RedisLayout::Cluster { .. }) {
                out.push(Listener::fixed(
                    format!("{} (cluster bus)", n.name),
                    &Endpoint {
                        host: n.endpoint.host.clone(),
                        port: ports::cluster_bus_port(n.endpoint.port),
                    },
                ));
            }
        }
        if let RedisLayout::Sentinel { sentinels, .. } = &self.redis {
            out.extend(
                sentinels
                    .iter()
                    .map(|n| Listener::fixed(&n.name, &n.endpoint)),
            );
        }
        if let Some(q) = &self.queue_redis {
            out.push(Listener::fixed(&q.node.name, &q.node.endpoint));
        }
        let m = &self.monitor;
        out.push(Listener::fixed(PROMETHEUS, &m.prometheus));
        out.push(Listener::fixed(REDIS_EXPORTER, &m.redis_exporter));
        out.push(Listener::fixed(PGBOUNCER_EXPORTER, &m.pgbouncer_exporter));
        out.extend(
            m.postgres_exporters
                .iter()
                .map(|x| Listener::fixed(&x.name, &x.endpoint)),
        );
        let local = matches!(self.target, Target::Local { .. });
        for (i, e) in self.app.endpoints.iter().enumerate() {
            out.push(Listener {
                what: format!("{} replica {}", self.app.name, i + 1),
                endpoint: e.clone(),
                // Locally the plan places the replicas; elsewhere they
                // listen on the spec's port.
                field: (!local).then(|| "/app/port".to_owned()),
            });
        }
        if let Some(l) = &self.app.local {
            out.push(Listener::fixed(EDGE, &l.edge));
            out.push(Listener::fixed(format!("{EDGE} (stats)"), &l.edge_stats));
        }
        for (i, s) in self.services.iter().enumerate() {
            for (r, e) in s.endpoints.iter().enumerate() {
                out.push(Listener {
                    what: format!("{} replica {}", s.name, r + 1),
                    endpoint: e.clone(),
                    field: Some(if local {
                        format!("/services/{i}/replicas")
                    } else {
                        format!("/services/{i}/port")
                    }),
                });
            }
        }
        if let Some(h) = &self.host_ports {
            let published = |what: &str, port: u16, field: Option<&str>| Listener {
                what: format!("Compose's published {what}"),
                endpoint: Endpoint {
                    host: ports::LOOPBACK.to_owned(),
                    port,
                },
                field: field.map(str::to_owned),
            };
            out.push(published("database writes", h.proxy_write, None));
            out.push(published("database reads", h.proxy_read, None));
            out.push(published(EDGE, h.edge, Some("/app/port")));
            if matches!(self.redis, RedisLayout::Standalone { .. }) {
                out.push(published("redis", h.redis, None));
            }
            if self.queue_redis.is_some() {
                out.push(published(names::QUEUE_REDIS, h.queue_redis, None));
            }
            out.push(published(PROMETHEUS, h.prometheus, None));
            out.push(published(GRAFANA, h.grafana, None));
        }
        out
    }

    /// Every service name scaleplan generates for this topology, which a
    /// user's services and workers must not take.
    pub fn generated_names(&self) -> Vec<&str> {
        let pg = &self.postgres;
        let mut names = vec![self.app.name.as_str(), PROXY, EDGE];
        names.extend(
            std::iter::once(&pg.primary)
                .chain(&pg.replicas)
                .map(|n| n.name.as_str()),
        );
        names.extend(self.pgbouncer.instances.iter().map(|n| n.name.as_str()));
        names.extend(self.redis.data_nodes().into_iter().map(|n| n.name.as_str()));
        match &self.redis {
            RedisLayout::Sentinel { sentinels, .. } => {
                names.extend(sentinels.iter().map(|n| n.name.as_str()))
            }
            RedisLayout::Cluster { .. } => names.push(CLUSTER_CREATE),
            RedisLayout::Standalone { .. } => {}
        }
        names.extend(self.queue_redis.iter().map(|q| q.node.name.as_str()));
        let m = &self.monitor;
        names.extend([PROMETHEUS, GRAFANA, REDIS_EXPORTER, PGBOUNCER_EXPORTER]);
        names.extend(m.postgres_exporters.iter().map(|x| x.name.as_str()));
        names
    }

    /// Everything that runs application code: the app first, then the
    /// services and workers. Every target deploys this one list.
    pub fn workloads(&self) -> Vec<ServiceTier> {
        let app = &self.app;
        let mut out = vec![ServiceTier {
            name: app.name.clone(),
            image: app.image.clone(),
            port: Some(app.port),
            endpoints: app.endpoints.clone(),
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

/// Where each of `replicas` listens: `local(i)` on the local target, the
/// name on `port` elsewhere.
fn replica_endpoints(
    target: Target,
    name: &str,
    port: u16,
    replicas: u32,
    local: impl Fn(u32) -> Option<Endpoint>,
) -> Vec<Endpoint> {
    match target {
        Target::Local { .. } => (0..replicas).map_while(local).collect(),
        Target::Compose | Target::Cloud => vec![Endpoint {
            host: name.to_owned(),
            port,
        }],
    }
}

fn service(s: &Service, caps: Caps, target: Target) -> ServiceTier {
    ServiceTier {
        name: s.name.as_str().to_owned(),
        image: s.image.as_str().to_owned(),
        port: s.port,
        // The local target runs no service (yet): it gets no port there.
        endpoints: s.port.map_or_else(Vec::new, |port| {
            replica_endpoints(target, s.name.as_str(), port, s.replicas, |_| None)
        }),
        health_path: s.health_path.as_str().to_owned(),
        replicas: s.replicas,
        resources: caps.size(s.cpu, s.memory_mb),
        uses_postgres: s.uses.contains(&Dependency::Postgres),
        uses_redis: s.uses.contains(&Dependency::Redis),
    }
}

fn plan_redis(r: &Redis, project: &str, target: Target, caps: Caps) -> RedisLayout {
    let resources = caps.size(r.cpu, r.memory_mb);
    let common = RedisCommon {
        version: r.version,
        image: redis_image(r.version),
        // A capped node keeps maxmemory within three quarters of what it
        // has, as RED008 asks of the spec's own sizes.
        maxmemory_mb: if resources.memory_mb < r.memory_mb {
            r.maxmemory_mb.min(resources.memory_mb * 3 / 4)
        } else {
            r.maxmemory_mb
        },
        maxmemory_policy: r.maxmemory_policy.as_str(),
        appendonly: r.appendonly,
        resources,
    };
    let node = |role: Role, index: u16, name: String, replica_of: Option<Endpoint>| RedisNode {
        endpoint: target.endpoint(role, index, &name),
        name,
        replica_of,
    };
    // The rules guarantee the block of the chosen mode exists; a missing one
    // falls back to the smallest valid layout rather than panicking.
    match (r.mode, &r.sentinel, &r.cluster) {
        (RedisMode::Sentinel, Some(s), _) => {
            let master = node(Role::Redis, 0, names::redis(1), None);
            let mut nodes = vec![master.clone()];
            // RED001 makes a Sentinel phase without replicas invalid;
            // planned anyway, its master stands alone.
            nodes.extend((1..=r.replicas.unwrap_or(0)).map(|i| {
                node(
                    Role::Redis,
                    i as u16,
                    names::redis(i + 1),
                    Some(master.endpoint.clone()),
                )
            }));
            RedisLayout::Sentinel {
                common,
                master_name: project.to_owned(),
                nodes,
                sentinels: (1..=s.count)
                    .map(|i| node(Role::Sentinel, (i - 1) as u16, names::sentinel(i), None))
                    .collect(),
                quorum: s.quorum,
                down_after_ms: s.down_after_ms,
                failover_timeout_ms: s.failover_timeout_ms,
                parallel_syncs: s.parallel_syncs,
                min_replicas_to_write: r.min_replicas_to_write,
            }
        }
        (RedisMode::Cluster, _, Some(c)) => {
            // Named and numbered by shard, so adding shards or replicas
            // adds nodes and never renames one: shard s's first node is its
            // initial master, the others its replicas.
            let shards: Vec<ClusterShard> = (1..=c.shards)
                .map(|s| {
                    let member = |n: u32| {
                        node(
                            Role::ClusterNode,
                            ((s - 1) * u32::from(ports::CLUSTER_PORTS_PER_SHARD) + (n - 1)) as u16,
                            names::cluster_node(s, n),
                            None,
                        )
                    };
                    let master = member(1);
                    let replicas = (2..=1 + c.replicas_per_shard)
                        .map(|n| RedisNode {
                            replica_of: Some(master.endpoint.clone()),
                            ..member(n)
                        })
                        .collect();
                    ClusterShard {
                        index: s,
                        master,
                        replicas,
                    }
                })
                .collect();
            RedisLayout::Cluster {
                common,
                nodes: shards
                    .iter()
                    .flat_map(|s| std::iter::once(&s.master).chain(&s.replicas))
                    .cloned()
                    .collect(),
                shards,
                replicas_per_shard: c.replicas_per_shard,
                node_timeout_ms: c.node_timeout_ms,
            }
        }
        _ => RedisLayout::Standalone {
            common,
            // The first node of every mode but Cluster: launch's node is
            // the master a later Sentinel group starts from.
            node: node(Role::Redis, 0, names::redis(1), None),
        },
    }
}

fn plan_queue_redis(
    q: &crate::spec::types::QueueRedis,
    version: u8,
    target: Target,
    caps: Caps,
) -> QueueRedis {
    let memory_mb = q.memory_mb();
    let resources = caps.size(q.cpu, memory_mb);
    let name = names::QUEUE_REDIS.to_owned();
    QueueRedis {
        common: RedisCommon {
            version,
            image: redis_image(version),
            maxmemory_mb: if resources.memory_mb < memory_mb {
                q.maxmemory_mb.min(resources.memory_mb * 3 / 4)
            } else {
                q.maxmemory_mb
            },
            maxmemory_policy: crate::spec::types::EvictionPolicy::Noeviction.as_str(),
            appendonly: true,
            resources,
        },
        node: RedisNode {
            endpoint: target.endpoint(Role::QueueRedis, 0, &name),
            name,
            replica_of: None,
        },
    }
}

/// Prometheus and the exporters of `target`, for the PostgreSQL nodes
/// `pg_nodes` (name and address, the primary first).
fn monitor_nodes(target: Target, pg_nodes: &[(String, Endpoint)]) -> MonitorNodes {
    MonitorNodes {
        prometheus: target.endpoint(Role::Prometheus, 0, PROMETHEUS),
        redis_exporter: target.endpoint(Role::RedisExporter, 0, REDIS_EXPORTER),
        pgbouncer_exporter: target.endpoint(Role::PgbouncerExporter, 0, PGBOUNCER_EXPORTER),
        postgres_exporters: pg_nodes
            .iter()
            .enumerate()
            .map(|(i, (node, at))| {
                let name = names::postgres_exporter(node);
                PostgresExporter {
                    endpoint: target.endpoint(Role::PostgresExporter, i as u16, &name),
                    name,
                    node: node.clone(),
                    target: at.clone(),
                }
            })
            .collect(),
    }
}

/// Monitoring's services and processes.
pub const PROMETHEUS: &str = "prometheus";
pub const GRAFANA: &str = "grafana";
pub const REDIS_EXPORTER: &str = "redis-exporter";
pub const PGBOUNCER_EXPORTER: &str = "pgbouncer-exporter";
