//! The spec contract: the shape of one phase file after `extends` is merged.
//!
//! These types are the single source of the JSON Schema (schemars), of
//! deserialization (serde) and of `inspect`'s output. Field names are part of
//! the public contract (docs/spec.md, docs/reference.md): renaming one breaks
//! users' files.
//!
//! String newtypes validate themselves on deserialization as well as through
//! the schema, so a `Label` in memory is always a DNS label, whichever path
//! built it.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Patterns the schema uses; `validate::schema` maps each to its own code
/// and help line, so keep these in sync with the checks below.
pub const LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
pub const IDENT_PATTERN: &str = "^[a-z_][a-z0-9_]{0,62}$";
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u001f\\u007f]*$";
pub const IMAGE_PATTERN: &str = "^[a-z0-9][a-z0-9._/:@-]{0,254}$";
pub const CLOUD_REGION_PATTERN: &str = "^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$";
pub const BACKUP_WINDOW_PATTERN: &str =
    "^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$";
pub const PGBOUNCER_VERSION_PATTERN: &str = "^1\\.[0-9]{1,2}$";
pub const DB_CLASS_PATTERN: &str = "^db\\.[a-z0-9]+\\.[a-z0-9]+$";
pub const CACHE_CLASS_PATTERN: &str = "^cache\\.[a-z0-9]+\\.[a-z0-9]+$";

macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $check:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok($name(s))
                } else {
                    Err(format!("'{s}' is not {}", $what))
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": $pattern,
                    "description": $what,
                })
            }
        }
    };
}

pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && inner(&b[0])
        && inner(&b[b.len() - 1])
        && b.iter().all(|c| inner(c) || *c == b'-')
}

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

pub fn is_text(s: &str) -> bool {
    !s.chars().any(|c| c.is_control())
}

fn is_image(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=255).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._/:@-".contains(c))
}

fn is_cloud_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase()))
        && (1..=2).contains(&parts[parts.len() - 1].len())
        && parts[parts.len() - 1].bytes().all(|c| c.is_ascii_digit())
}

fn is_pgbouncer_version(s: &str) -> bool {
    s.strip_prefix("1.")
        .is_some_and(|m| (1..=2).contains(&m.len()) && m.bytes().all(|c| c.is_ascii_digit()))
}

checked_string!(
    /// A DNS label (RFC 1123): phase, project, region and service names become
    /// host names, Compose service names and directories under out/.
    Label, LABEL_PATTERN, is_label,
    "a DNS label: lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit"
);
checked_string!(
    /// A PostgreSQL identifier that needs no quoting anywhere it is written.
    Ident, IDENT_PATTERN, is_ident,
    "a lowercase PostgreSQL identifier: letters, digits and '_', not starting with a digit, at most 63 characters"
);
checked_string!(
    /// Free text that never contains a line break or control character, so
    /// it can sit in a comment or a quoted value without adding a line.
    Text, TEXT_PATTERN, is_text,
    "text on one line, without control characters"
);
checked_string!(
    /// A container image reference.
    Image, IMAGE_PATTERN, is_image,
    "a container image reference such as ghcr.io/org/app:1.2.3 (lowercase, no spaces)"
);
checked_string!(
    /// A cloud provider region such as eu-west-1.
    CloudRegion, CLOUD_REGION_PATTERN, is_cloud_region,
    "a cloud region name such as eu-west-1"
);
fn is_class(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            })
    })
}

checked_string!(
    /// An RDS instance class such as db.r6g.xlarge.
    DbClass, DB_CLASS_PATTERN, |s| is_class(s, "db."),
    "an RDS instance class such as db.r6g.xlarge"
);
checked_string!(
    /// An ElastiCache node type such as cache.r7g.large.
    CacheClass, CACHE_CLASS_PATTERN, |s| is_class(s, "cache."),
    "an ElastiCache node type such as cache.r7g.large"
);
checked_string!(
    /// A daily window in UTC such as 03:00-04:00.
    BackupWindow, BACKUP_WINDOW_PATTERN, |s| BackupWindow::minutes(s).is_some(),
    "a daily window in UTC as HH:MM-HH:MM, such as 03:00-04:00"
);

impl Phase {
    /// The phase runs BullMQ queues on its Redis: the app says it does
    /// (`app.queues`), or a worker uses Redis. That Redis must not evict
    /// (RED012), and only then does the contract name a BullMQ prefix.
    pub fn runs_queues(&self) -> bool {
        self.app.queues
            || self
                .workers
                .iter()
                .any(|w| w.uses.contains(&Dependency::Redis))
    }

    /// The read replicas of the region that has the most: a phase without
    /// `regions` is one region with `postgres.read_replicas`; with regions
    /// each names its own.
    pub fn most_read_replicas_in_a_region(&self) -> u32 {
        if self.regions.is_empty() {
            self.postgres.read_replicas
        } else {
            self.regions
                .iter()
                .map(|r| r.read_replicas)
                .max()
                .unwrap_or(0)
        }
    }
}

impl BackupWindow {
    /// Start and end, in minutes after midnight UTC.
    fn minutes(s: &str) -> Option<(u32, u32)> {
        let clock = |t: &str| -> Option<u32> {
            let (h, m) = t.split_once(':')?;
            if h.len() != 2 || m.len() != 2 || !t.bytes().all(|c| c.is_ascii_digit() || c == b':') {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (a, b) = s.split_once('-')?;
        Some((clock(a)?, clock(b)?))
    }

    /// Its length in minutes; a window may cross midnight.
    pub fn length_minutes(&self) -> u32 {
        let (a, b) = BackupWindow::minutes(&self.0).unwrap_or((0, 0));
        (b + 24 * 60 - a) % (24 * 60)
    }

    /// The clock time `minutes` after the window's start.
    pub fn plus_minutes(&self, minutes: u32) -> String {
        let (a, _) = BackupWindow::minutes(&self.0).unwrap_or((0, 0));
        let t = (a + minutes) % (24 * 60);
        format!("{:02}:{:02}", t / 60, t % 60)
    }

    pub fn start(&self) -> &str {
        self.0.split_once('-').map_or("", |(a, _)| a)
    }
}

checked_string!(
    /// A PgBouncer major.minor version such as 1.23.
    PgbouncerVersion, PGBOUNCER_VERSION_PATTERN, is_pgbouncer_version,
    "a PgBouncer version as major.minor, such as 1.23"
);

impl PgbouncerVersion {
    /// The minor version (PgBouncer has been 1.x for its whole life).
    pub fn minor(&self) -> u32 {
        self.0[2..].parse().unwrap_or(0)
    }
}

/// One scaling phase, as written after `extends` is resolved.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "scaleplan phase spec")]
pub struct Phase {
    /// The spec this one overlays: a file name in the same directory, without
    /// extension (`base` for base.yaml).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// An abstract spec only holds defaults for others to extend; it is not
    /// rendered. Not inherited.
    #[serde(rename = "abstract", default, skip_serializing_if = "is_false")]
    pub is_abstract: bool,
    /// The system's name; prefixes resources and the Redis master name.
    pub project: Label,
    /// The phase's name; the directory under out/. Defaults to the file name.
    pub name: Label,
    /// A human title for summaries and diagrams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Text>,
    /// Position in the scaling plan: phases are rolled out in this order.
    #[schemars(range(min = 1))]
    pub order: u32,
    /// The concurrent users this phase is planned for.
    pub users: Users,
    /// Allows this phase to shrink capacity or move Redis back relative to
    /// the phase before it (TRN001, TRN002). Not inherited.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_downgrade: bool,
    #[serde(default)]
    pub workload: Workload,
    pub app: App,
    pub postgres: Postgres,
    #[serde(default)]
    pub pgbouncer: Pgbouncer,
    #[serde(default)]
    pub redis: Redis,
    #[serde(default)]
    pub targets: Targets,
    #[serde(default)]
    pub capacity: CapacityOptions,
    /// Regions, for phases that span more than one (exactly one primary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<Region>,
    /// Further services beside the main app (microservices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Background workers (notification fan-out and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<Service>,
    /// A Redis of its own for BullMQ's queues, beside the phase's Redis:
    /// the queues then live here, and `redis` may evict as a cache does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_redis: Option<QueueRedis>,
}

/// A standalone Redis that holds only BullMQ's queues. It has no eviction
/// policy to set: it never evicts (a full queue Redis refuses new jobs
/// instead of dropping old ones), and on the local target and in Compose
/// it appends every write to its file (synced each second), so a restart
/// keeps every job; on AWS a replica in another zone is its copy. Its
/// version and password are the phase's Redis's.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRedis {
    /// Memory for queued jobs, their results and their events.
    #[serde(default = "default_queue_maxmemory")]
    #[schemars(range(min = 16, max = 1_048_576))]
    pub maxmemory_mb: u32,
    /// Memory of the node (container limit). Unset, it follows
    /// maxmemory_mb as the phase's Redis does: 1.5 times it, and at least
    /// 256 MB more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 32, max = 4_194_304))]
    pub memory_mb: Option<u32>,
    #[serde(default = "half")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 64.0))]
    pub cpu: f64,
}

impl QueueRedis {
    /// The node's memory: the spec's, or what maxmemory needs beside it.
    pub fn memory_mb(&self) -> u32 {
        self.memory_mb
            .unwrap_or_else(|| redis_memory_for(self.maxmemory_mb))
    }
}

fn default_queue_maxmemory() -> u32 {
    256
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[schemars(range(min = 1))]
    pub min: u32,
    #[schemars(range(min = 1))]
    pub max: u32,
}

/// What one concurrent user costs. Used by the capacity estimate.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Requests one user sends per minute (HTTP and WebSocket messages).
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub requests_per_user_per_min: f64,
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub db_queries_per_request: f64,
    /// Share of database queries that are reads, 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub read_ratio: f64,
    /// Mean time a query holds its server connection.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub db_query_ms: f64,
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub redis_ops_per_request: f64,
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub redis_memory_kb_per_user: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            requests_per_user_per_min: 6.0,
            db_queries_per_request: 3.0,
            read_ratio: 0.8,
            db_query_ms: 4.0,
            redis_ops_per_request: 4.0,
            redis_memory_kb_per_user: 16.0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub image: Image,
    #[serde(default = "default_app_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: u32,
    /// CPU cores per replica.
    #[serde(default = "one_f")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 256.0))]
    pub cpu: f64,
    #[serde(default = "default_app_memory")]
    #[schemars(range(min = 64))]
    pub memory_mb: u32,
    #[serde(default = "default_rps_per_core")]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub requests_per_core_per_sec: f64,
    /// Processes serving requests in each replica (Node's cluster module or
    /// PM2 workers). Node runs JavaScript on one thread, so a replica uses
    /// at most this many of its `cpu` for requests.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 256))]
    pub processes: u32,
    #[serde(default)]
    pub websocket: Websocket,
    /// Connections each replica's database pool holds, per database URL
    /// (one pool for writes, one for reads): what the replica asks of
    /// PgBouncer, whatever the number of users.
    #[serde(default = "default_app_pool")]
    #[schemars(range(min = 1, max = 1000))]
    pub db_pool_size: u32,
    /// HTTP path that answers 2xx or 3xx when a replica is healthy; the
    /// Compose health check requests it with the image's node.
    #[serde(default = "default_health_path")]
    pub health_path: Text,
    /// The app runs BullMQ queues itself (it adds jobs, or processes them)
    /// on the phase's Redis. Its contract then carries BULLMQ_PREFIX, and
    /// that Redis must not evict (RED012): an evicted job, or its lock, is
    /// a job lost or run twice.
    #[serde(default)]
    pub queues: bool,
}

fn default_app_pool() -> u32 {
    10
}

fn default_service_pool() -> u32 {
    5
}

fn default_health_path() -> Text {
    Text("/health".to_owned())
}

fn default_app_port() -> u16 {
    3000
}
fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_app_memory() -> u32 {
    1024
}
fn default_rps_per_core() -> f64 {
    250.0
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Websocket {
    #[schemars(range(min = 1))]
    pub max_connections_per_replica: u32,
    /// How often the server pings each socket (Socket.IO's `pingInterval`,
    /// 25,000 ms by default). The cloud's load balancer keeps an idle
    /// connection for twice this, and at least 60 s.
    #[schemars(range(min = 1000, max = 1_800_000))]
    pub ping_interval_ms: u32,
}

impl Default for Websocket {
    fn default() -> Self {
        Websocket {
            max_connections_per_replica: 2000,
            ping_interval_ms: 25_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Postgres {
    /// PostgreSQL major version; picks the image and the settings rendered.
    #[serde(default = "default_pg_version")]
    #[schemars(range(min = 13, max = 17))]
    pub version: u8,
    pub database: Ident,
    /// The application's role; PgBouncer pools connect as this role.
    #[serde(default = "default_pg_user")]
    pub user: Ident,
    pub primary: PostgresNode,
    /// Streaming read replicas of the primary.
    #[serde(default)]
    #[schemars(range(max = 15))]
    pub read_replicas: u32,
    /// Each replica holds a replication slot on the primary, so the primary
    /// keeps the WAL a lagging replica still needs (bounded by
    /// max_slot_wal_keep_size).
    #[serde(default = "yes")]
    pub replication_slots: bool,
    /// A standby in another availability zone with automatic failover (cloud
    /// targets).
    #[serde(default)]
    pub multi_az: bool,
    /// Overrides of postgresql.conf keys, checked against the known keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, ParamValue>,
    /// Backups and point-in-time recovery: pgBackRest's WAL archive and
    /// base backups on the local target, RDS's automated backups in the
    /// cloud.
    #[serde(default)]
    pub backup: Backup,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Backup {
    /// How far back a restore can go: full backups (and the WAL after
    /// them) are kept this many days; RDS's backup retention period.
    #[schemars(range(min = 1, max = 35))]
    pub retention_days: u32,
    /// When the daily backup runs, in UTC (HH:MM-HH:MM, at least 30
    /// minutes): RDS's backup window, and the time a scheduled
    /// `scaleplan backup` should run.
    pub window: BackupWindow,
    /// The longest a committed write waits before its WAL segment is
    /// archived on a quiet server: the recovery point objective when the
    /// primary's disk is lost.
    #[schemars(range(min = 10, max = 3600))]
    pub archive_timeout_s: u32,
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            retention_days: 7,
            window: BackupWindow("03:00-04:00".to_owned()),
            archive_timeout_s: 60,
        }
    }
}

fn default_pg_version() -> u8 {
    16
}
fn default_pg_user() -> Ident {
    Ident("app".to_owned())
}
fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresNode {
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 256.0))]
    pub cpu: f64,
    #[schemars(range(min = 256))]
    pub memory_mb: u32,
    #[schemars(range(min = 1))]
    pub storage_gb: u32,
    #[schemars(range(min = 10, max = 10000))]
    pub max_connections: u32,
}

/// A postgresql.conf value: written quoted, so it can never end the line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Text),
}

crate::keyword! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum PoolMode {
        Session = "session",
        Transaction = "transaction",
        Statement = "statement",
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Pgbouncer {
    /// PgBouncer version; settings it does not know are never rendered.
    pub version: PgbouncerVersion,
    /// Container image; defaults to a pinned image of `version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[schemars(range(min = 1, max = 64))]
    pub instances: u32,
    pub pool_mode: PoolMode,
    /// Server connections per (user, database) pool.
    #[schemars(range(min = 1, max = 10000))]
    pub default_pool_size: u32,
    /// Extra server connections a pool may open when clients wait too long.
    #[schemars(range(max = 10000))]
    pub reserve_pool_size: u32,
    /// Client connections one instance accepts.
    #[schemars(range(min = 1, max = 1000000))]
    pub max_client_conn: u32,
    /// Protocol-level prepared statements in transaction mode (PgBouncer
    /// 1.21+): prepared statements each server connection keeps. Unset:
    /// 200 in Compose and the cloud; the local target renders only an
    /// explicit value (it runs the installed PgBouncer).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100000))]
    pub max_prepared_statements: Option<u32>,
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 64.0))]
    pub cpu: f64,
    #[schemars(range(min = 32))]
    pub memory_mb: u32,
}

impl Default for Pgbouncer {
    fn default() -> Self {
        Pgbouncer {
            version: PgbouncerVersion("1.25".to_owned()),
            image: None,
            instances: 1,
            pool_mode: PoolMode::Transaction,
            default_pool_size: 20,
            reserve_pool_size: 0,
            max_client_conn: 100,
            max_prepared_statements: None,
            cpu: 0.5,
            memory_mb: 256,
        }
    }
}

// Ordered as a deployment grows (standalone, then Sentinel, then Cluster):
// a later phase may not go back (TRN001).
crate::keyword! {
    #[derive(
        Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
    )]
    pub enum RedisMode {
        Standalone = "standalone",
        Sentinel = "sentinel",
        Cluster = "cluster",
    }
}

crate::keyword! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum EvictionPolicy {
        Noeviction = "noeviction",
        AllkeysLru = "allkeys-lru",
        AllkeysLfu = "allkeys-lfu",
        AllkeysRandom = "allkeys-random",
        VolatileLru = "volatile-lru",
        VolatileLfu = "volatile-lfu",
        VolatileRandom = "volatile-random",
        VolatileTtl = "volatile-ttl",
    }
}

/// Redis as written in the file. Which of `replicas`, `sentinel` and
/// `cluster` apply depends on `mode`; the rules check that and the planner
/// turns it into `topology::RedisLayout`, where each mode carries exactly
/// its own settings.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Redis {
    /// Redis major version; picks the image (8: what Debian 13 ships).
    #[schemars(range(min = 6, max = 8))]
    pub version: u8,
    pub mode: RedisMode,
    /// Data memory per node (per master in cluster mode).
    #[schemars(range(min = 16))]
    pub maxmemory_mb: u32,
    pub maxmemory_policy: EvictionPolicy,
    /// Memory of each Redis node (container limit); maxmemory must leave room
    /// for fork copy-on-write and fragmentation. Unset, it follows
    /// maxmemory_mb: 1.5 times it, and at least 256 MB more.
    #[schemars(range(min = 32))]
    pub memory_mb: u32,
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 64.0))]
    pub cpu: f64,
    /// Append-only file persistence.
    pub appendonly: bool,
    /// Sentinel mode: replicas of the master.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 15))]
    pub replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<Sentinel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Cluster>,
    /// Refuse writes unless this many replicas are connected, bounding what a
    /// failover can lose.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 15))]
    pub min_replicas_to_write: Option<u32>,
}

/// A Redis node's memory when the spec leaves it out: room for a fork's
/// copy-on-write and fragmentation beside maxmemory.
pub fn redis_memory_for(maxmemory_mb: u32) -> u32 {
    (maxmemory_mb.saturating_mul(3) / 2).max(maxmemory_mb.saturating_add(256))
}

/// Defaults that follow another value of the merged spec, filled in before
/// it is read into the types (whose own defaults are constants).
pub fn derive_defaults(spec: &mut serde_json::Value) {
    let Some(redis) = spec.get_mut("redis").and_then(|r| r.as_object_mut()) else {
        let maxmemory = Redis::default().maxmemory_mb;
        if let Some(map) = spec.as_object_mut() {
            map.insert(
                "redis".to_owned(),
                serde_json::json!({ "memory_mb": redis_memory_for(maxmemory) }),
            );
        }
        return;
    };
    if redis
        .get("memory_mb")
        .is_none_or(serde_json::Value::is_null)
    {
        let maxmemory = redis
            .get("maxmemory_mb")
            .and_then(serde_json::Value::as_u64)
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(Redis::default().maxmemory_mb);
        redis.insert("memory_mb".to_owned(), redis_memory_for(maxmemory).into());
    }
}

impl Default for Redis {
    fn default() -> Self {
        Redis {
            version: 7,
            mode: RedisMode::Standalone,
            maxmemory_mb: 256,
            maxmemory_policy: EvictionPolicy::Noeviction,
            memory_mb: redis_memory_for(256),
            cpu: 1.0,
            appendonly: true,
            replicas: None,
            sentinel: None,
            cluster: None,
            min_replicas_to_write: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sentinel {
    #[schemars(range(min = 1, max = 15))]
    pub count: u32,
    #[schemars(range(min = 1, max = 15))]
    pub quorum: u32,
    #[serde(default = "default_down_after")]
    #[schemars(range(min = 100, max = 600000))]
    pub down_after_ms: u32,
    #[serde(default = "default_failover_timeout")]
    #[schemars(range(min = 1000, max = 3600000))]
    pub failover_timeout_ms: u32,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 15))]
    pub parallel_syncs: u32,
}

fn default_down_after() -> u32 {
    5000
}
fn default_failover_timeout() -> u32 {
    60000
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    #[schemars(range(min = 1, max = 100))]
    pub shards: u32,
    #[serde(default = "one")]
    #[schemars(range(max = 5))]
    pub replicas_per_shard: u32,
    #[serde(default = "default_node_timeout")]
    #[schemars(range(min = 100, max = 600000))]
    pub node_timeout_ms: u32,
}

fn default_node_timeout() -> u32 {
    5000
}

/// Figures and switches of the capacity estimate (see docs/capacity.md).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CapacityOptions {
    /// Lowers CAP001 (capacity below users.max) to a warning for this
    /// phase. Not inherited.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_below_target: bool,
    /// Operations per second one Redis node serves; unset, it follows the
    /// node type (see docs/capacity.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub redis_ops_per_sec_per_node: Option<u32>,
    /// Queries per second one PostgreSQL vCPU serves for this app's
    /// queries: the CPU bound of the database, beside its connections.
    #[schemars(range(min = 1))]
    pub db_queries_per_core_per_sec: u32,
}

impl Default for CapacityOptions {
    fn default() -> Self {
        CapacityOptions {
            allow_below_target: false,
            redis_ops_per_sec_per_node: None,
            db_queries_per_core_per_sec: 1000,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    pub compose: ComposeTarget,
    pub local: LocalTarget,
    pub terraform: TerraformTarget,
}

/// The local target's default base port.
pub const DEFAULT_BASE_PORT: u16 = 17000;

/// Processes on one machine (`scaleplan up --native`): every node on
/// 127.0.0.1, on ports counted from `base_port`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LocalTarget {
    pub enabled: bool,
    /// First port of the phase's local target: every node's port is counted
    /// from it in fixed blocks (docs/generated-files.md), the same in every
    /// phase of the project.
    #[schemars(range(min = 1024, max = 40000))]
    pub base_port: u16,
    /// How `up --native` runs the app's replicas, each on a port of its
    /// own behind a local edge. Without it the local target runs the data
    /// tier only and the app runs wherever the team runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<LocalApp>,
}

impl Default for LocalTarget {
    fn default() -> Self {
        LocalTarget {
            enabled: true,
            base_port: DEFAULT_BASE_PORT,
            app: None,
        }
    }
}

/// The app as a process on the machine: each replica runs `command` in
/// `workdir` with the contract's variables, `PORT`, `HOST=127.0.0.1` and
/// `SCALEPLAN_SCALING_FILE` in its environment.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalApp {
    /// The program and its arguments, run without a shell
    /// (`["node", "dist/main.js"]`).
    #[schemars(length(min = 1, max = 64))]
    pub command: Vec<Text>,
    /// The directory it runs in, relative to the phase files' directory.
    #[serde(default = "here")]
    pub workdir: Text,
}

fn here() -> Text {
    Text(".".to_owned())
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ComposeTarget {
    pub enabled: bool,
    /// The most CPUs any one service may have in Compose and the local
    /// target, which run on one machine (Docker refuses a limit above the
    /// host's count); production sizes stay in Terraform.
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 256.0))]
    pub max_cpus: f64,
    /// The most memory any one service may have in Compose and the local
    /// target; settings derived from memory follow the capped value.
    #[schemars(range(min = 256))]
    pub max_memory_mb: u32,
    /// Where the servers' images come from: `official` pulls the
    /// components' published images; `debian` builds each from Debian's
    /// packages (compose/images/), for machines that reach a Debian mirror
    /// but not Docker Hub. The versions must be Debian's then (CMP001).
    pub images: ImageSource,
}

impl Default for ComposeTarget {
    fn default() -> Self {
        // A laptop: 4 cores and 8 GB.
        ComposeTarget {
            enabled: true,
            max_cpus: 4.0,
            max_memory_mb: 8192,
            images: ImageSource::Official,
        }
    }
}

crate::keyword! {
    /// Where Compose's server images come from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
    pub enum ImageSource {
        /// The components' published images, pulled.
        Official = "official",
        /// Built from Debian's packages (compose/images/<family>/Dockerfile).
        Debian = "debian",
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Aws,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TerraformTarget {
    pub enabled: bool,
    pub provider: Provider,
    pub region: CloudRegion,
    /// Instance classes instead of the ones chosen from cpu and memory.
    #[serde(skip_serializing_if = "InstanceClasses::is_empty")]
    pub instance_classes: InstanceClasses,
    /// With regions: one Redis for all of them, an ElastiCache global
    /// datastore. The primary region's Redis takes every write (the app
    /// in a secondary region writes to it over the peering) and each
    /// secondary region holds a read-only copy, which the app reads
    /// through `REDIS_READ_*`. Off: each region has its own Redis.
    #[serde(skip_serializing_if = "is_false")]
    pub redis_global_datastore: bool,
    /// A standalone phase's Redis gets a replica with automatic failover on
    /// AWS (a second ElastiCache node in another zone), so the jobs queued
    /// on it survive a node replacement. Sentinel and cluster modes have
    /// their replicas already.
    #[serde(skip_serializing_if = "is_false")]
    pub redis_replica: bool,
    /// Where Terraform keeps its state, which holds every generated
    /// password: an S3 bucket, encrypted, locked with a lock file beside
    /// the state. Unset: a local terraform.tfstate, unencrypted and
    /// unlocked (TF001 warns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<TerraformState>,
}

/// Terraform's S3 backend. Every phase of a project is the same
/// deployment at another size, so they share one state.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TerraformState {
    /// The bucket, created once before the first apply (docs/terraform.md).
    pub bucket: Label,
    /// The state's key in the bucket; `<project>/terraform.tfstate` when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Text>,
    /// The bucket's region; `targets.terraform.region` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<CloudRegion>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceClasses {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres: Option<DbClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<CacheClass>,
}

impl InstanceClasses {
    pub fn is_empty(&self) -> bool {
        self.postgres.is_none() && self.redis.is_none()
    }
}

impl Default for TerraformTarget {
    fn default() -> Self {
        TerraformTarget {
            enabled: false,
            provider: Provider::Aws,
            region: CloudRegion("eu-west-1".to_owned()),
            instance_classes: InstanceClasses::default(),
            redis_global_datastore: false,
            redis_replica: false,
            state: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RegionRole {
    Primary,
    Secondary,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub name: Label,
    pub role: RegionRole,
    /// The provider's region, e.g. eu-west-1.
    pub cloud_region: CloudRegion,
    /// Read replicas in this region (cross-region for a secondary).
    #[serde(default)]
    #[schemars(range(max = 15))]
    pub read_replicas: u32,
    /// This region's own Redis; defaults to the phase's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Redis>,
    /// App replicas serving this region; defaults to app.replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub app_replicas: Option<u32>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Dependency {
    Postgres,
    Redis,
}

/// A microservice or worker beside the main app.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Label,
    pub image: Image,
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: u32,
    #[serde(default = "half")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 64.0))]
    pub cpu: f64,
    #[serde(default = "default_service_memory")]
    #[schemars(range(min = 32))]
    pub memory_mb: u32,
    /// Port it serves on, for services that take requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// What it connects to.
    #[serde(default)]
    pub uses: Vec<Dependency>,
    /// For a service that uses postgres: connections each replica's pool
    /// holds, per database URL.
    #[serde(default = "default_service_pool")]
    #[schemars(range(min = 1, max = 1000))]
    pub db_pool_size: u32,
    /// For a service with a port: the HTTP path of its health check.
    #[serde(default = "default_health_path")]
    pub health_path: Text,
    /// Workers only (NTF001): the push notifications this worker sends
    /// through BullMQ queues on Redis. Gives the capacity model its
    /// `notifications` and `push_quota` resources and the app contract its
    /// queues (BULLMQ_QUEUES).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// What a notification worker sends. The model counts one BullMQ job per
/// provider message: a notification to a user with 1.5 devices is 1.5
/// jobs on average (or one job whose sends take that much longer).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Push notifications per hour per concurrent user: all pushes an hour
    /// divided by the concurrent users (most go to users who are not
    /// connected, so this is more than one connected user receives).
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 100000.0))]
    pub per_user_per_hour: f64,
    /// Provider messages per notification: the user's devices (FCM sends
    /// one message per registration token). At least 1.
    #[serde(default = "one_f")]
    #[schemars(range(min = 1.0, max = 1000.0))]
    pub fan_out: f64,
    /// The 95th percentile of one send to the push provider (FCM's HTTP v1
    /// API), in milliseconds: how long a message holds one of the worker's
    /// concurrency slots.
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 600000.0))]
    pub p95_latency_ms: f64,
    /// Jobs each replica of the worker processes at once (BullMQ Worker's
    /// `concurrency` option).
    #[schemars(range(min = 1, max = 10000))]
    pub concurrency: u32,
    /// Broadcasts to every user per hour, sent as FCM topic messages: one
    /// message per topic, whatever the number of users (the provider fans
    /// it out to the subscribed devices), so a broadcast never grows with
    /// users. Unset: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 100000.0))]
    pub broadcasts_per_hour: Option<f64>,
    /// Topics each broadcast is sent to (one message each), e.g. one per
    /// language or platform.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1000))]
    pub broadcast_topics: u32,
}

impl Notifications {
    /// Provider messages per second one concurrent user causes.
    pub fn per_user_per_sec(&self) -> f64 {
        self.per_user_per_hour * self.fan_out / 3600.0
    }

    /// Topic messages per second the broadcasts send, whatever the users.
    pub fn broadcast_per_sec(&self) -> f64 {
        self.broadcasts_per_hour.unwrap_or(0.0) * f64::from(self.broadcast_topics) / 3600.0
    }
}

fn half() -> f64 {
    0.5
}
fn default_service_memory() -> u32 {
    512
}
