//! The cloud target's plan: which AWS sizes a phase maps to, the RDS
//! parameter group derived from the same settings as postgresql.conf, and
//! the regions the phase runs in.

use super::pgconf::Setting;
use super::topology::Topology;
use crate::spec::params::{self, Apply};
use crate::spec::types::{ParamValue, Phase, Redis, RedisMode, RegionRole};
use serde::Serialize;

/// The cloud target of a phase: its regions and every size and setting the
/// Terraform templates write.
#[derive(Clone, Debug, Serialize)]
pub struct CloudPlan {
    /// The primary region first.
    pub regions: Vec<RegionPlan>,
    pub postgres_class: String,
    pub parameters: Vec<DbParameter>,
    pub multi_az: bool,
    /// RDS Performance Insights (7 days, the free tier): on once the phase
    /// is past one writer (replicas or Multi-AZ, growth onwards), where a
    /// slow query is worth finding before it is worth a bigger class.
    pub performance_insights: bool,
    /// Fargate CPU units and MiB of each PgBouncer task.
    pub pgbouncer_size: [u32; 2],
    /// The app, then the services and workers, sized for Fargate.
    pub services: Vec<CloudService>,
    /// The load balancer's idle timeout (s): past the app's WebSocket ping
    /// interval, so a quiet socket is never cut between two pings.
    pub edge_idle_timeout: u32,
    /// The app's WebSocket ping interval (s, rounded up), which the idle
    /// timeout outlasts.
    pub ping_interval_s: u32,
    /// The workers' BullMQ queues; each region's module gives them their
    /// prefixes by its own Redis's mode.
    pub queues: Vec<String>,
    /// The phase runs BullMQ queues (`runs_queues`): only then do the
    /// services get BullMQ's variables, as on Compose and locally.
    pub runs_queues: bool,
    /// Terraform's S3 backend, when the spec names a bucket.
    pub state: Option<StateBackend>,
    /// The image of the one-shot task that creates the app's role on the
    /// writer: PostgreSQL's Alpine image, for psql and a TLS-capable wget
    /// (the Debian one has neither wget nor curl).
    pub bootstrap_image: String,
}

/// Terraform's S3 backend: one state per project (every phase is the same
/// deployment), encrypted, locked by a lock file in the bucket.
#[derive(Clone, Debug, Serialize)]
pub struct StateBackend {
    pub bucket: String,
    pub key: String,
    pub region: String,
}

fn websocket_connections(phase: &Phase, replicas: u32) -> u64 {
    u64::from(replicas) * u64::from(phase.app.websocket.max_connections_per_replica)
}

/// ALB's own default idle timeout (s), the floor of ours.
pub const ALB_IDLE_TIMEOUT: u32 = 60;

/// An idle timeout that outlasts two ping intervals: one ping late or lost
/// in transit still does not cut the socket.
pub fn edge_idle_timeout(ping_interval_s: u32) -> u32 {
    (2 * ping_interval_s).max(ALB_IDLE_TIMEOUT)
}

/// One ECS service that runs application code.
#[derive(Clone, Debug, Serialize)]
pub struct CloudService {
    pub name: String,
    pub image: String,
    pub replicas: u32,
    /// Fargate CPU units and MiB.
    pub cpu: u32,
    pub memory: u32,
    pub port: Option<u16>,
    /// The load balancer's health check path, for a service with a port.
    pub health_path: String,
    pub uses_postgres: bool,
    pub uses_redis: bool,
}

/// Plans the cloud target from the phase and its cloud topology.
pub fn plan(phase: &Phase, topo: &Topology) -> CloudPlan {
    let pgb = &topo.pgbouncer.resources;
    let (cpu, memory) = fargate(pgb.cpu, pgb.memory_mb);
    let ping_interval_s = phase.app.websocket.ping_interval_ms.div_ceil(1000);
    CloudPlan {
        regions: regions(phase),
        postgres_class: db_class(phase),
        parameters: db_parameters(&topo.postgres.settings),
        multi_az: phase.postgres.multi_az,
        performance_insights: phase.postgres.multi_az
            || super::pgconf::replicas_everywhere(phase) > 0,
        pgbouncer_size: [cpu, memory],
        services: topo
            .workloads()
            .into_iter()
            .map(|s| {
                let (cpu, memory) = fargate(s.resources.cpu, s.resources.memory_mb);
                CloudService {
                    name: s.name,
                    image: s.image,
                    replicas: s.replicas,
                    cpu,
                    memory,
                    port: s.port,
                    health_path: s.health_path,
                    uses_postgres: s.uses_postgres,
                    uses_redis: s.uses_redis,
                }
            })
            .collect(),
        queues: super::topology::queue_names(phase),
        runs_queues: phase.runs_queues(),
        state: phase
            .targets
            .terraform
            .state
            .as_ref()
            .map(|st| StateBackend {
                bucket: st.bucket.as_str().to_owned(),
                key: st.key.as_ref().map_or_else(
                    || format!("{}/terraform.tfstate", phase.project),
                    |k| k.as_str().to_owned(),
                ),
                region: st
                    .region
                    .as_ref()
                    .unwrap_or(&phase.targets.terraform.region)
                    .as_str()
                    .to_owned(),
            }),
        edge_idle_timeout: edge_idle_timeout(ping_interval_s),
        ping_interval_s,
        bootstrap_image: format!("postgres:{}-alpine", phase.postgres.version),
    }
}

/// RDS instance classes by (vCPU, GiB of memory), smallest first. The
/// first that has at least the spec's cpu and memory is chosen;
/// `targets.terraform.instance_classes.postgres` overrides the choice.
pub const DB_CLASSES: &[(&str, u32, u32)] = &[
    ("db.t4g.medium", 2, 4),
    ("db.m6g.large", 2, 8),
    ("db.r6g.large", 2, 16),
    ("db.m6g.xlarge", 4, 16),
    ("db.r6g.xlarge", 4, 32),
    ("db.m6g.2xlarge", 8, 32),
    ("db.r6g.2xlarge", 8, 64),
    ("db.m6g.4xlarge", 16, 64),
    ("db.r6g.4xlarge", 16, 128),
    ("db.r6g.8xlarge", 32, 256),
    ("db.r6g.16xlarge", 64, 512),
];

/// ElastiCache node types by (vCPU, MiB of memory), smallest first, chosen
/// by the node's `redis.memory_mb`; `instance_classes.redis` overrides.
pub const CACHE_CLASSES: &[(&str, u32, u32)] = &[
    ("cache.t4g.small", 2, 1_370),
    ("cache.t4g.medium", 2, 3_090),
    ("cache.m7g.large", 2, 6_380),
    ("cache.r7g.large", 2, 13_070),
    ("cache.r7g.xlarge", 4, 26_320),
    ("cache.r7g.2xlarge", 8, 52_820),
    ("cache.r7g.4xlarge", 16, 105_810),
    ("cache.r7g.8xlarge", 32, 209_550),
];

pub fn db_class(phase: &Phase) -> String {
    if let Some(c) = &phase.targets.terraform.instance_classes.postgres {
        return c.as_str().to_owned();
    }
    let p = &phase.postgres.primary;
    let gib = p.memory_mb.div_ceil(1024);
    DB_CLASSES
        .iter()
        .find(|(_, cpu, mem)| f64::from(*cpu) >= p.cpu && *mem >= gib)
        .map_or(DB_CLASSES[DB_CLASSES.len() - 1].0, |(c, _, _)| *c)
        .to_owned()
}

pub fn cache_class(phase: &Phase, redis: &Redis) -> String {
    if let Some(c) = &phase.targets.terraform.instance_classes.redis {
        return c.as_str().to_owned();
    }
    // A global datastore takes no burstable (cache.t*) node.
    let global = phase.targets.terraform.redis_global_datastore;
    CACHE_CLASSES
        .iter()
        .filter(|(class, _, _)| !(global && class.starts_with("cache.t")))
        .find(|(_, cpu, mem)| f64::from(*cpu) >= redis.cpu && *mem >= redis.memory_mb)
        .map_or(CACHE_CLASSES[CACHE_CLASSES.len() - 1].0, |(c, _, _)| *c)
        .to_owned()
}

/// Fargate task sizes: CPU units and the memory (MiB) each allows.
const FARGATE: &[(u32, u32, u32, u32)] = &[
    // cpu, min memory, max memory, step
    (256, 512, 2048, 512),
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// The smallest Fargate size with at least `cpu` cores and `memory_mb`.
pub fn fargate(cpu: f64, memory_mb: u32) -> (u32, u32) {
    for (units, min, max, step) in FARGATE {
        if f64::from(*units) + 1e-9 < cpu * 1024.0 || memory_mb > *max {
            continue;
        }
        let mut memory = *min;
        while memory < memory_mb {
            memory += step;
        }
        return (*units, memory);
    }
    (16384, 122880)
}

/// Settings RDS manages itself, which a parameter group cannot set: they
/// stay in postgresql.conf only.
pub const RDS_MANAGED: &[&str] = &[
    "archive_command",
    "archive_mode",
    "config_file",
    "data_directory",
    "hba_file",
    "hot_standby",
    "listen_addresses",
    "logging_collector",
    "log_destination",
    "port",
    "ssl_cert_file",
    "ssl_key_file",
    "superuser_reserved_connections",
    "wal_level",
];

/// The unit PostgreSQL (and so RDS) counts a setting in, when it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Bytes per unit.
    Memory(u64),
    /// Milliseconds per unit.
    Time(u64),
}

pub fn unit_of(name: &str) -> Option<Unit> {
    const KB: u64 = 1024;
    Some(match name {
        "shared_buffers" | "effective_cache_size" | "wal_buffers" => Unit::Memory(8 * KB),
        "work_mem"
        | "maintenance_work_mem"
        | "autovacuum_work_mem"
        | "temp_file_limit"
        | "log_temp_files" => Unit::Memory(KB),
        "max_slot_wal_keep_size" | "wal_keep_size" | "min_wal_size" | "max_wal_size" => {
            Unit::Memory(KB * KB)
        }
        "statement_timeout"
        | "lock_timeout"
        | "idle_in_transaction_session_timeout"
        | "idle_session_timeout"
        | "log_min_duration_statement"
        | "log_autovacuum_min_duration"
        | "deadlock_timeout"
        | "wal_sender_timeout"
        | "wal_receiver_timeout"
        | "max_standby_streaming_delay"
        | "max_standby_archive_delay"
        | "bgwriter_delay"
        | "wal_writer_delay"
        | "autovacuum_vacuum_cost_delay" => Unit::Time(1),
        "checkpoint_timeout"
        | "authentication_timeout"
        | "archive_timeout"
        | "autovacuum_naptime"
        | "tcp_keepalives_idle"
        | "tcp_keepalives_interval" => Unit::Time(1000),
        _ => return None,
    })
}

/// "4096MB" -> bytes, "60s" -> ms; a bare number is in the setting's unit.
pub fn to_base(value: &str, unit: Unit) -> Option<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(split);
    let n: u64 = number.parse().ok()?;
    let scale = match (unit, suffix.trim()) {
        (Unit::Memory(base), "") => base,
        (Unit::Time(base), "") => base,
        (Unit::Memory(_), "B") => 1,
        (Unit::Memory(_), "kB") => 1024,
        (Unit::Memory(_), "MB") => 1024 * 1024,
        (Unit::Memory(_), "GB") => 1024 * 1024 * 1024,
        (Unit::Memory(_), "TB") => 1024_u64.pow(4),
        (Unit::Time(_), "us") => return Some(n / 1000),
        (Unit::Time(_), "ms") => 1,
        (Unit::Time(_), "s") => 1000,
        (Unit::Time(_), "min") => 60_000,
        (Unit::Time(_), "h") => 3_600_000,
        (Unit::Time(_), "d") => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DbParameter {
    pub name: String,
    /// In the setting's own unit, as RDS expects (shared_buffers in 8kB
    /// pages, work_mem in kB, timeouts in ms ...).
    pub value: String,
    /// `pending-reboot` for settings that need a restart, else `immediate`.
    pub apply_method: &'static str,
}

/// The parameter group: the settings of postgresql.conf, less those RDS
/// manages, converted to the units RDS takes.
pub fn db_parameters(settings: &[Setting]) -> Vec<DbParameter> {
    let mut out = Vec::new();
    for s in settings.iter().cloned() {
        if RDS_MANAGED.contains(&s.name.as_str()) {
            continue;
        }
        let value = match (&s.value, unit_of(&s.name)) {
            (ParamValue::Text(t), Some(unit)) => match to_base(t.as_str(), unit) {
                Some(base) => {
                    let per = match unit {
                        Unit::Memory(b) | Unit::Time(b) => b,
                    };
                    (base / per).to_string()
                }
                None => t.as_str().to_owned(),
            },
            (ParamValue::Text(t), None) => t.as_str().to_owned(),
            (ParamValue::Bool(b), _) => if *b { "1" } else { "0" }.to_owned(),
            (ParamValue::Int(i), _) => i.to_string(),
            (ParamValue::Float(f), _) => f.to_string(),
        };
        let restart = s.name == "max_connections" || params::known(&s.name) == Some(Apply::Restart);
        out.push(DbParameter {
            name: s.name,
            value,
            apply_method: if restart {
                "pending-reboot"
            } else {
                "immediate"
            },
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One region of a phase in the cloud.
#[derive(Clone, Debug, Serialize)]
pub struct RegionPlan {
    /// The region's name in the spec (or "main" for a single-region phase).
    pub name: String,
    /// The Terraform module name: `primary` for the region that holds the
    /// writer in every phase, `region_<name>` ('_' for '-') for the others.
    /// The running deployment is the primary region of a phase that adds
    /// regions, so its resources keep their addresses.
    pub module: String,
    /// The module's address in scaleplan's earlier releases, which a
    /// `moved` block carries over.
    pub module_before: String,
    /// What AWS keys the region's resources on: the project for the
    /// primary region in every phase, project-region for the others. Never
    /// the phase's name, so no phase change renames or replaces them.
    pub resource_name: String,
    pub aws_region: String,
    pub primary: bool,
    pub read_replicas: u32,
    pub app_replicas: u32,
    /// The WebSocket connections the region's app replicas hold at most
    /// (replicas x `app.websocket.max_connections_per_replica`): the
    /// capacity model's supply, which the load balancer's alarm watches.
    pub websocket_connections: u64,
    pub redis: RedisPlan,
    /// BullMQ's own ElastiCache group (`queue_redis`): two nodes in two
    /// zones with automatic failover, since ElastiCache keeps no file
    /// that a lone node's replacement could start from.
    pub queue_redis: Option<QueueRedisPlan>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueRedisPlan {
    pub node_type: String,
}

/// The queue Redis, where the phase names one and runs queues to put
/// there (RED014 warns of one that would hold nothing: none is built).
fn queue_redis(phase: &Phase) -> Option<QueueRedisPlan> {
    phase
        .queue_redis
        .as_ref()
        .filter(|_| phase.runs_queues())
        .map(queue_redis_plan)
}

/// The queue Redis's node type: the smallest that holds its memory and
/// CPU (a burstable one is fine: queues are not a global datastore).
fn queue_redis_plan(q: &crate::spec::types::QueueRedis) -> QueueRedisPlan {
    let memory = q.memory_mb();
    QueueRedisPlan {
        node_type: CACHE_CLASSES
            .iter()
            .find(|(_, cpu, mem)| f64::from(*cpu) >= q.cpu && *mem >= memory)
            .map_or(CACHE_CLASSES[CACHE_CLASSES.len() - 1].0, |(c, _, _)| *c)
            .to_owned(),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct RedisPlan {
    pub mode: &'static str,
    pub node_type: String,
    pub cluster_mode: &'static str,
    pub num_cache_clusters: Option<u32>,
    pub num_node_groups: Option<u32>,
    pub replicas_per_node_group: Option<u32>,
    pub automatic_failover: bool,
    pub multi_az: bool,
    pub maxmemory_policy: &'static str,
    pub engine_version: String,
    pub family: String,
    /// A member of the phase's ElastiCache global datastore: the primary
    /// region's Redis takes the writes, the others hold copies.
    pub global: bool,
}

fn redis_plan(phase: &Phase, r: &Redis) -> RedisPlan {
    let (cluster_mode, clusters, groups, per_group, failover) = match (r.mode, &r.cluster) {
        (RedisMode::Cluster, Some(c)) => (
            "enabled",
            None,
            Some(c.shards),
            Some(c.replicas_per_shard),
            c.replicas_per_shard > 0,
        ),
        (RedisMode::Sentinel, _) => (
            "disabled",
            Some(1 + r.replicas.unwrap_or(0)),
            None,
            None,
            true,
        ),
        // A replica with automatic failover where the spec asks for one
        // (targets.terraform.redis_replica).
        _ if phase.targets.terraform.redis_replica => ("disabled", Some(2), None, None, true),
        _ => ("disabled", Some(1), None, None, false),
    };
    RedisPlan {
        mode: r.mode.as_str(),
        node_type: cache_class(phase, r),
        cluster_mode,
        num_cache_clusters: clusters,
        num_node_groups: groups,
        replicas_per_node_group: per_group,
        automatic_failover: failover,
        multi_az: failover,
        maxmemory_policy: r.maxmemory_policy.as_str(),
        engine_version: if r.version >= 7 {
            "7.1".to_owned()
        } else {
            "6.2".to_owned()
        },
        family: if r.version >= 7 {
            "redis7".to_owned()
        } else {
            "redis6.x".to_owned()
        },
        global: phase.targets.terraform.redis_global_datastore,
    }
}

/// The regions of a phase: its `regions`, or one region from
/// `targets.terraform.region`. The primary region comes first, since the
/// others replicate from it.
pub fn regions(phase: &Phase) -> Vec<RegionPlan> {
    let project = phase.project.as_str();
    if phase.regions.is_empty() {
        return vec![RegionPlan {
            name: "main".to_owned(),
            module: "primary".to_owned(),
            module_before: "region_main".to_owned(),
            resource_name: project.to_owned(),
            aws_region: phase.targets.terraform.region.as_str().to_owned(),
            primary: true,
            read_replicas: phase.postgres.read_replicas,
            app_replicas: phase.app.replicas,
            websocket_connections: websocket_connections(phase, phase.app.replicas),
            redis: redis_plan(phase, &phase.redis),
            queue_redis: queue_redis(phase),
        }];
    }
    let mut out: Vec<RegionPlan> = phase
        .regions
        .iter()
        .map(|r| {
            let primary = r.role == RegionRole::Primary;
            let label = r.name.as_str().replace('-', "_");
            RegionPlan {
                name: r.name.as_str().to_owned(),
                module: if primary {
                    "primary".to_owned()
                } else {
                    format!("region_{label}")
                },
                module_before: format!("region_{label}"),
                resource_name: if primary {
                    project.to_owned()
                } else {
                    format!("{project}-{}", r.name)
                },
                aws_region: r.cloud_region.as_str().to_owned(),
                primary,
                read_replicas: r.read_replicas,
                app_replicas: r.app_replicas.unwrap_or(phase.app.replicas),
                websocket_connections: websocket_connections(
                    phase,
                    r.app_replicas.unwrap_or(phase.app.replicas),
                ),
                redis: redis_plan(phase, r.redis.as_ref().unwrap_or(&phase.redis)),
                queue_redis: queue_redis(phase),
            }
        })
        .collect();
    out.sort_by_key(|r| !r.primary);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_the_smallest_that_fit() {
        let fit = |cpu: f64, gib: u32| {
            DB_CLASSES
                .iter()
                .find(|(_, c, m)| f64::from(*c) >= cpu && *m >= gib)
                .map(|(n, _, _)| *n)
        };
        assert_eq!(fit(2.0, 8), Some("db.m6g.large"));
        assert_eq!(fit(4.0, 16), Some("db.m6g.xlarge"));
        assert_eq!(fit(4.0, 17), Some("db.r6g.xlarge"));
        assert_eq!(fit(16.0, 64), Some("db.m6g.4xlarge"));
    }

    #[test]
    fn fargate_sizes_are_valid_combinations() {
        assert_eq!(fargate(0.5, 256), (512, 1024));
        assert_eq!(fargate(1.0, 1024), (1024, 2048));
        assert_eq!(fargate(2.0, 2048), (2048, 4096));
        assert_eq!(fargate(0.25, 4000), (512, 4096));
        assert_eq!(fargate(1.0, 9000), (2048, 9216));
    }

    #[test]
    fn units_convert_like_postgresql() {
        assert_eq!(
            to_base("4096MB", Unit::Memory(8192)),
            Some(4096 * 1024 * 1024)
        );
        assert_eq!(to_base("60s", Unit::Time(1)), Some(60_000));
        assert_eq!(to_base("500", Unit::Time(1)), Some(500));
        assert_eq!(to_base("5min", Unit::Time(1000)), Some(300_000));
        assert_eq!(to_base("12 parsecs", Unit::Time(1)), None);
    }
}
