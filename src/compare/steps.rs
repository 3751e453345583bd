//! Moving a running phase to the next: the ordered steps, each with its
//! risk, the reason, what it does (an `Action` the native target executes
//! and Compose names as commands), and where it cannot run. Node names
//! come from the two plans: a step names the nodes one phase has and the
//! other lacks. `diff`, out/transitions and `migrate` all read this one list.

pub use super::action::Action;
use super::action::{pgbouncers, postgres_replicas, sentinels};
use crate::plan::PlannedPhase;
use crate::plan::capacity::Resource;
use crate::plan::topology::{RedisLayout, Topology};
use crate::render::format::thousands;
use crate::spec::params::{self, Apply};
use crate::spec::types::{ParamValue, PoolMode, RedisMode, RegionRole};
use crate::validate::transition::Measure;
use serde::Serialize;

/// How much a step disturbs the running system, least first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    NoOp,
    Online,
    RollingRestart,
    BriefWriteUnavailability,
    DataMigration,
    ClientChangeRequired,
}

impl Risk {
    pub fn label(self) -> &'static str {
        match self {
            Risk::NoOp => "no-op",
            Risk::Online => "online",
            Risk::RollingRestart => "rolling restart",
            Risk::BriefWriteUnavailability => "brief write unavailability",
            Risk::DataMigration => "data migration",
            Risk::ClientChangeRequired => "client change required",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub title: String,
    pub risk: Risk,
    pub why: String,
    /// The step removes capacity the earlier phase had.
    pub capacity_loss: bool,
    pub action: Action,
    /// The commands that carry it out on Compose, from the directory of the
    /// new phase's docker-compose.yml.
    pub compose: Vec<String>,
    /// Why `migrate` cannot carry it out on the local target, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_native: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub from: String,
    pub to: String,
    /// Estimated concurrent users before and after, with the bottlenecks.
    pub capacity: CapacityChange,
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CapacityChange {
    pub before: u64,
    pub after: u64,
    pub bottleneck_before: Resource,
    pub bottleneck_after: Resource,
}

impl CapacityChange {
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) -> {} ({})",
            thousands(self.before),
            self.bottleneck_before.label(),
            thousands(self.after),
            self.bottleneck_after.label()
        )
    }
}

impl Plan {
    pub fn highest_risk(&self) -> Risk {
        self.steps
            .iter()
            .map(|s| s.risk)
            .max()
            .unwrap_or(Risk::NoOp)
    }
}

fn step(title: impl Into<String>, risk: Risk, why: impl Into<String>, action: Action) -> Step {
    Step {
        title: title.into(),
        risk,
        why: why.into(),
        capacity_loss: false,
        not_native: action.not_native().map(str::to_owned),
        compose: Vec::new(),
        action,
    }
}

fn loss(title: impl Into<String>, risk: Risk, why: impl Into<String>, action: Action) -> Step {
    Step {
        capacity_loss: true,
        ..step(title, risk, why, action)
    }
}

fn elsewhere(reason: &str) -> Action {
    Action::Elsewhere {
        reason: reason.to_owned(),
    }
}

fn manual(reason: &str) -> Action {
    Action::Manual {
        reason: reason.to_owned(),
    }
}

/// The names in `these` that `those` lacks.
fn only_in(these: &[&str], those: &[&str]) -> Vec<String> {
    these
        .iter()
        .filter(|n| !those.contains(n))
        .map(|n| (*n).to_owned())
        .collect()
}

/// The data nodes that are not the initial master.
fn redis_replicas(t: &Topology) -> Vec<&str> {
    match &t.redis {
        RedisLayout::Sentinel { nodes, .. } => nodes[1..].iter().map(|n| n.name.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn data_nodes(t: &Topology) -> Vec<&str> {
    t.redis
        .data_nodes()
        .into_iter()
        .map(|n| n.name.as_str())
        .collect()
}

/// Steps by the stage of a rollout they belong to; a plan lists the stages
/// in this order.
#[derive(Default)]
struct Stages {
    add: Vec<Step>,
    settings: Vec<Step>,
    routing: Vec<Step>,
    clients: Vec<Step>,
    remove: Vec<Step>,
}

/// The steps that take a running `from` to `to`, in the order to apply
/// them: add capacity, change settings, move traffic, change clients, and
/// only then remove what is no longer needed.
pub fn plan(from: &PlannedPhase, to: &PlannedPhase) -> Plan {
    let mut stages = Stages::default();
    postgres_steps(from, to, &mut stages);
    pgbouncer_steps(from, to, &mut stages);
    redis_steps(from, to, &mut stages);
    app_steps(from, to, &mut stages);
    let Stages {
        add,
        settings,
        routing,
        clients,
        remove,
    } = stages;
    let mut steps: Vec<Step> = [add, settings, routing, clients, remove]
        .into_iter()
        .flatten()
        .collect();
    if steps.is_empty() {
        steps.push(step(
            "Nothing to do",
            Risk::NoOp,
            "the two phases render the same topology and settings",
            Action::Nothing,
        ));
    }
    for s in &mut steps {
        s.compose = super::compose::commands(&s.action, &from.compose, &to.compose);
    }
    let (before, after) = (&from.capacity, &to.capacity);
    Plan {
        from: from.name().to_owned(),
        to: to.name().to_owned(),
        capacity: CapacityChange {
            before: before.capacity,
            after: after.capacity,
            bottleneck_before: before.bottleneck,
            bottleneck_after: after.bottleneck,
        },
        steps,
    }
}

/// Notes `name old -> new` when the value changed.
fn changed<T: PartialEq + std::fmt::Display>(out: &mut Vec<String>, name: &str, old: T, new: T) {
    if old != new {
        out.push(format!("{name} {old} -> {new}"));
    }
}

fn show(v: &ParamValue) -> String {
    match v {
        ParamValue::Bool(b) => if *b { "on" } else { "off" }.to_owned(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => f.to_string(),
        ParamValue::Text(t) => t.as_str().to_owned(),
    }
}

fn postgres_steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.spec().postgres, &to.spec().postgres);
    let (ta, tb) = (&from.compose, &to.compose);
    if b.version != a.version {
        s.settings.push(step(
            format!("Upgrade PostgreSQL {} -> {}", a.version, b.version),
            Risk::DataMigration,
            "a major version changes the on-disk format: pg_upgrade the primary (or replicate logically into a new cluster) and rebuild the replicas from it",
            elsewhere("a major upgrade needs pg_upgrade and both versions' binaries"),
        ));
    }
    let (sa, sb) = (&ta.postgres.settings, &tb.postgres.settings);
    let mut restart = Vec::new();
    let mut reload = Vec::new();
    let mut grows_standby_floor = false;
    for new in sb {
        let old = sa.iter().find(|s| s.name == new.name);
        if old.map(|o| &o.value) == Some(&new.value) {
            continue;
        }
        let change = format!(
            "{} {} -> {}",
            new.name,
            old.map_or_else(|| "(default)".to_owned(), |o| show(&o.value)),
            show(&new.value)
        );
        let apply = match new.name.as_str() {
            "max_connections" | "hot_standby" => Apply::Restart,
            name => params::known(name).unwrap_or(Apply::Restart),
        };
        if apply == Apply::Restart {
            if matches!(
                new.name.as_str(),
                "max_connections"
                    | "max_wal_senders"
                    | "max_worker_processes"
                    | "max_locks_per_transaction"
                    | "max_prepared_transactions"
            ) {
                grows_standby_floor |= matches!((old.map(|o| &o.value), &new.value), (Some(ParamValue::Int(x)), ParamValue::Int(y)) if y > x);
            }
            restart.push(change);
        } else {
            reload.push(change);
        }
    }
    for old in sa {
        if !sb.iter().any(|s| s.name == old.name) {
            reload.push(format!("{} {} -> (default)", old.name, show(&old.value)));
        }
    }
    // The settings change before new standbys are cloned: the clones
    // start under the primary's new limits, and their base backups' WAL
    // senders count against the new max_wal_senders, not the old one.
    if !reload.is_empty() {
        s.add.push(step(
            format!("Reload PostgreSQL settings: {}", reload.join(", ")),
            Risk::Online,
            "these settings apply on reload (pg_ctl reload or SELECT pg_reload_conf()) without dropping connections",
            Action::ReloadPostgres,
        ));
    }
    if !restart.is_empty() {
        let order = if grows_standby_floor {
            "restart the replicas first, then the primary: a standby refuses to start with a lower max_connections, max_wal_senders or max_worker_processes than its primary"
        } else {
            "restart the primary first, then the replicas one at a time"
        };
        s.add.push(step(
            format!("Restart PostgreSQL for {}", restart.join(", ")),
            Risk::BriefWriteUnavailability,
            format!("these settings apply only at server start; {order}; writes pause while the primary restarts (or fail over to a replica first)"),
            Action::RestartPostgres {
                replicas_first: grows_standby_floor,
            },
        ));
    }
    let added = only_in(&postgres_replicas(tb), &postgres_replicas(ta));
    if !added.is_empty() {
        s.add.push(step(
            format!("Add read replicas {}", added.join(", ")),
            Risk::Online,
            "clone each from the primary with pg_basebackup (with its replication slot) and wait until it streams and has caught up, before any read is routed to it",
            Action::AddPostgresReplicas { nodes: added },
        ));
    }
    if b.read_replicas != a.read_replicas {
        let targets = if b.read_replicas == 0 {
            "the primary".to_owned()
        } else {
            postgres_replicas(tb).join(", ")
        };
        s.routing.push(step(
            format!("Route reads through PgBouncer's read database to {targets}"),
            Risk::Online,
            "reload each PgBouncer's read database entry and the proxy's replicas, only after the new replicas stream (and before the removed ones stop)",
            Action::RouteReads,
        ));
    }
    let removed = only_in(&postgres_replicas(ta), &postgres_replicas(tb));
    if !removed.is_empty() {
        s.remove.push(loss(
            format!("Remove read replicas {}", removed.join(", ")),
            Risk::Online,
            "after reads no longer go to them: stop them and drop their replication slots on the primary, or it keeps WAL for them",
            Action::RemovePostgresReplicas { nodes: removed },
        ));
    }
    // Node size: cpu, memory, storage (max_connections is a setting above).
    let mut grow = Vec::new();
    let mut shrink = Vec::new();
    for m in Measure::POSTGRES_NODE {
        if let (Some(x), Some(y)) = (m.of(from.spec()), m.of(to.spec())) {
            let what = m.what().trim_start_matches("PostgreSQL ");
            if y > x {
                grow.push(format!("{what} {x} -> {y}"));
            } else if y < x {
                shrink.push(format!("{what} {x} -> {y}"));
            }
        }
    }
    let sizes = "machine sizes: on one machine the memory-derived settings change with them, in the steps above";
    if !grow.is_empty() {
        s.add.push(step(
            format!("Resize the PostgreSQL nodes: {}", grow.join(", ")),
            Risk::BriefWriteUnavailability,
            "resize the replicas first, then the primary (or fail over to a resized replica); the memory-derived settings change with it",
            elsewhere(sizes),
        ));
    }
    if !shrink.is_empty() {
        s.remove.push(loss(
            format!("Shrink the PostgreSQL nodes: {}", shrink.join(", ")),
            Risk::BriefWriteUnavailability,
            "a smaller primary carries less; storage usually cannot shrink in place and needs a new volume",
            elsewhere(sizes),
        ));
    }
}

fn pgbouncer_steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.spec().pgbouncer, &to.spec().pgbouncer);
    let (ta, tb) = (&from.compose, &to.compose);
    let added = only_in(&pgbouncers(tb), &pgbouncers(ta));
    if !added.is_empty() {
        // After PostgreSQL's settings: the new pools fit the new
        // max_connections, not always the old one.
        s.settings.push(step(
            format!("Start PgBouncer instances {}", added.join(", ")),
            Risk::Online,
            "new instances join beside the running ones; the proxy balances over them once they accept logins",
            Action::StartPgbouncers { nodes: added },
        ));
    }
    let mut pools = Vec::new();
    changed(
        &mut pools,
        "default_pool_size",
        a.default_pool_size,
        b.default_pool_size,
    );
    changed(
        &mut pools,
        "reserve_pool_size",
        a.reserve_pool_size,
        b.reserve_pool_size,
    );
    changed(
        &mut pools,
        "max_client_conn",
        a.max_client_conn,
        b.max_client_conn,
    );
    changed(
        &mut pools,
        "pool_mode",
        a.pool_mode.as_str(),
        b.pool_mode.as_str(),
    );
    changed(
        &mut pools,
        "version",
        a.version.as_str(),
        b.version.as_str(),
    );
    if !pools.is_empty() {
        // RELOAD takes pool sizes, the client limit and the pool mode; a
        // new version needs a new process.
        let restart = a.version != b.version;
        s.settings.push(step(
            format!(
                "{} PgBouncer: {}",
                if restart { "Roll" } else { "Reload" },
                pools.join(", ")
            ),
            if restart {
                Risk::RollingRestart
            } else {
                Risk::Online
            },
            if restart {
                "restart the instances one at a time while the others serve; the proxy sends clients to the others meanwhile"
            } else {
                "RELOAD each instance (its admin console, or SIGHUP): the new pools apply without dropping a client"
            },
            Action::RollPgbouncers { restart },
        ));
    }
    if a.pool_mode == PoolMode::Session && b.pool_mode != PoolMode::Session {
        s.clients.push(step(
            format!("Make clients safe for {} pooling", b.pool_mode.as_str()),
            Risk::ClientChangeRequired,
            "a server connection no longer belongs to one client: session state breaks (SET/RESET, LISTEN/NOTIFY, WITH HOLD cursors, SQL-level PREPARE, session advisory locks, temporary tables kept across transactions); move it into transactions first",
            Action::ClientCode,
        ));
    }
    if b.pool_mode == PoolMode::Statement && a.pool_mode == PoolMode::Transaction {
        s.clients.push(step(
            "Make clients safe for statement pooling",
            Risk::ClientChangeRequired,
            "multi-statement transactions are refused in statement mode",
            Action::ClientCode,
        ));
    }
    let removed = only_in(&pgbouncers(ta), &pgbouncers(tb));
    if !removed.is_empty() {
        s.remove.push(loss(
            format!("Stop PgBouncer instances {}", removed.join(", ")),
            Risk::RollingRestart,
            "take them out of the proxy's rotation first, let their clients finish, then stop them: fewer instances carry fewer clients",
            Action::StopPgbouncers { nodes: removed },
        ));
    }
}

fn redis_steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (a, b) = (&from.spec().redis, &to.spec().redis);
    let (ta, tb) = (&from.compose, &to.compose);
    let cluster_aware = "cluster-aware clients follow MOVED/ASK redirects; multi-key commands and transactions need all their keys in one slot (hash tags such as {user:42}); only database 0 exists";
    match (a.mode, b.mode) {
        (RedisMode::Standalone, RedisMode::Sentinel) => {
            s.add.push(step(
                format!(
                    "Start Redis replicas {} of the current master",
                    redis_replicas(tb).join(", ")
                ),
                Risk::Online,
                "replicas sync from the running standalone node, which becomes the Sentinel-watched master without a restart",
                Action::StartRedisReplicas {
                    nodes: redis_replicas(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            s.add.push(step(
                format!(
                    "Start {} sentinels",
                    b.sentinel.as_ref().map_or(0, |s| s.count)
                ),
                Risk::Online,
                "they discover the replicas and each other from the master",
                Action::StartSentinels {
                    nodes: sentinels(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            s.clients.push(step(
                "Make clients Sentinel-aware",
                Risk::ClientChangeRequired,
                format!("clients ask the sentinels for master '{}' instead of a fixed address, or a failover leaves them writing to a replica", to.spec().project),
                Action::SwitchRedisClients {
                    mode: "sentinel".to_owned(),
                },
            ));
        }
        (RedisMode::Standalone | RedisMode::Sentinel, RedisMode::Cluster) => {
            let c = b.cluster.as_ref();
            s.add.push(step(
                format!(
                    "Build the Redis Cluster: {} shards x {} replica(s), beside the running Redis",
                    c.map_or(0, |c| c.shards),
                    c.map_or(0, |c| c.replicas_per_shard)
                ),
                Risk::Online,
                "a cluster cannot be converted from a non-cluster node in place: start the nodes and create the cluster empty",
                Action::BuildCluster {
                    nodes: data_nodes(tb).iter().map(|n| (*n).to_owned()).collect(),
                },
            ));
            s.add.push(step(
                "On AWS: take the ElastiCache replication group into cluster mode in place",
                Risk::ClientChangeRequired,
                format!("AWS only. ElastiCache converts the group itself (Redis 7): apply {}'s Terraform with -var redis_cluster_mode_override=compatible, move clients to the configuration endpoint, then apply {}'s; the group, its data and its endpoints' names stay", from.name(), to.name()),
                elsewhere("AWS only: ElastiCache's own conversion"),
            ));
            s.add.push(step(
                "Migrate the data into the cluster's slots",
                Risk::DataMigration,
                "copy every key with its TTL into the master of its slot (DUMP, then RESTORE ... REPLACE; never MIGRATE or redis-cli --cluster import without --cluster-copy, which delete from the live source), then compare the key count and a checksum of the values; keys in databases other than 0 must be merged into 0 first. `scaleplan migrate` copies while clients still write and checks at the cut-over; `scaleplan up --native` copies a stopped deployment",
                Action::CopyIntoCluster,
            ));
            s.clients.push(step(
                "Switch clients to cluster-aware clients",
                Risk::ClientChangeRequired,
                format!("{cluster_aware}. The cut-over: writes to the old Redis stop, the keys written since the copy are copied and checked again, then the clients move"),
                Action::CutOverToCluster,
            ));
            let mut old: Vec<String> = data_nodes(ta).iter().map(|n| (*n).to_owned()).collect();
            old.extend(sentinels(ta).iter().map(|n| (*n).to_owned()));
            s.remove.push(step(
                format!("Retire the {} Redis: {}", a.mode.as_str(), old.join(", ")),
                Risk::Online,
                "once no client uses it and the copy is checked; their data stays (Compose: `docker compose up -d --remove-orphans` stops them and keeps their volumes until `docker volume rm`; the local target keeps their directories under retired/)",
                Action::RetireRedis { nodes: old },
            ));
        }
        (x, y) if y < x => {
            s.add.push(loss(
                format!("Move Redis back from {} to {}", x.as_str(), y.as_str()),
                Risk::DataMigration,
                "a smaller topology is a new deployment: build it, copy the data, switch clients, retire the old one; failover protection is lost",
                manual("moving Redis back is a new deployment beside this one"),
            ));
            s.clients.push(step(
                format!("Switch clients to {} Redis", y.as_str()),
                Risk::ClientChangeRequired,
                "the discovery method changes with the mode",
                Action::SwitchRedisClients {
                    mode: y.as_str().to_owned(),
                },
            ));
        }
        (RedisMode::Sentinel, RedisMode::Sentinel) => {
            let added = only_in(&redis_replicas(tb), &redis_replicas(ta));
            let removed = only_in(&redis_replicas(ta), &redis_replicas(tb));
            if !added.is_empty() {
                s.add.push(step(
                    format!("Start Redis replicas {}", added.join(", ")),
                    Risk::Online,
                    "they sync from the master; the sentinels discover them",
                    Action::StartRedisReplicas { nodes: added },
                ));
            } else if !removed.is_empty() {
                s.remove.push(loss(
                    format!("Stop Redis replicas {}", removed.join(", ")),
                    Risk::Online,
                    "fewer replicas, fewer failover candidates; then SENTINEL RESET on each sentinel",
                    Action::StopRedisReplicas { nodes: removed },
                ));
            }
            if let (Some(sa), Some(sb)) = (&a.sentinel, &b.sentinel) {
                if sb.count != sa.count {
                    let title = format!("Change sentinels {} -> {}", sa.count, sb.count);
                    let why = "add or remove one sentinel at a time, waiting for the others to see it; SENTINEL RESET after removing";
                    if sb.count > sa.count {
                        s.add.push(step(
                            title,
                            Risk::Online,
                            why,
                            Action::StartSentinels {
                                nodes: only_in(&sentinels(tb), &sentinels(ta)),
                            },
                        ))
                    } else {
                        s.remove.push(loss(
                            title,
                            Risk::Online,
                            why,
                            Action::StopSentinels {
                                nodes: only_in(&sentinels(ta), &sentinels(tb)),
                            },
                        ))
                    }
                }
                if (
                    sb.quorum,
                    sb.down_after_ms,
                    sb.failover_timeout_ms,
                    sb.parallel_syncs,
                ) != (
                    sa.quorum,
                    sa.down_after_ms,
                    sa.failover_timeout_ms,
                    sa.parallel_syncs,
                ) {
                    s.settings.push(step(
                        "Update Sentinel settings with SENTINEL SET on each sentinel",
                        Risk::Online,
                        "quorum and timeouts change at run time",
                        Action::SentinelSettings,
                    ));
                }
            }
        }
        (RedisMode::Cluster, RedisMode::Cluster) => {
            if let (Some(ca), Some(cb)) = (&a.cluster, &b.cluster) {
                let added = only_in(&data_nodes(tb), &data_nodes(ta));
                if cb.shards > ca.shards {
                    s.add.push(step(
                        format!("Add {} shards and rebalance slots", cb.shards - ca.shards),
                        Risk::DataMigration,
                        "add the masters (redis-cli --cluster add-node) and move slots to them (--cluster rebalance --cluster-use-empty-masters); keys migrate online, slot by slot",
                        Action::GrowCluster {
                            nodes: added.clone(),
                        },
                    ));
                } else if cb.shards < ca.shards {
                    s.remove.push(loss(
                        format!("Remove {} shards", ca.shards - cb.shards),
                        Risk::DataMigration,
                        "move their slots to the remaining masters (--cluster reshard) before removing the nodes",
                        manual("removing shards moves slots off them first: redis-cli --cluster reshard"),
                    ));
                }
                if cb.replicas_per_shard > ca.replicas_per_shard {
                    s.add.push(step(
                        "Add replicas to every shard",
                        Risk::Online,
                        "redis-cli --cluster add-node --cluster-slave for each",
                        Action::GrowCluster { nodes: added },
                    ));
                } else if cb.replicas_per_shard < ca.replicas_per_shard {
                    s.remove.push(loss(
                        "Remove replicas from every shard",
                        Risk::Online,
                        "fewer replicas, less failover protection",
                        manual("removing cluster replicas: redis-cli --cluster del-node for each"),
                    ));
                }
            }
        }
        _ => {}
    }
    let mut runtime = Vec::new();
    changed(
        &mut runtime,
        "maxmemory (MB)",
        a.maxmemory_mb,
        b.maxmemory_mb,
    );
    changed(
        &mut runtime,
        "maxmemory-policy",
        a.maxmemory_policy.as_str(),
        b.maxmemory_policy.as_str(),
    );
    if !runtime.is_empty() && a.mode == b.mode {
        let shrink = b.maxmemory_mb < a.maxmemory_mb;
        let apply = step(
            format!(
                "Apply Redis {} with CONFIG SET on every node",
                runtime.join(", ")
            ),
            Risk::Online,
            if shrink {
                "a lower maxmemory evicts (or refuses writes under noeviction) at once"
            } else {
                "takes effect without a restart"
            },
            Action::RedisSettings,
        );
        if shrink {
            s.remove.push(Step {
                capacity_loss: true,
                ..apply
            })
        } else {
            s.settings.push(apply)
        }
    }
    if a.version != b.version {
        s.settings.push(step(
            format!("Upgrade Redis {} -> {}", a.version, b.version),
            Risk::RollingRestart,
            "replicas first, then fail over and upgrade each old master",
            elsewhere("an upgrade needs the new version's binaries"),
        ));
    }
}

/// The app, services, workers and regions run outside the local target.
const NOT_LOCAL: &str = "the app, its services and the regions run outside the local target";

fn app_steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
    let (from, to) = (from.spec(), to.spec());
    let (a, b) = (&from.app, &to.app);
    if b.replicas > a.replicas {
        s.add.push(step(
            format!("Scale the app {} -> {} replicas", a.replicas, b.replicas),
            Risk::Online,
            "new replicas take traffic once healthy",
            elsewhere(NOT_LOCAL),
        ));
    }
    if a.image != b.image || a.cpu != b.cpu || a.memory_mb != b.memory_mb {
        s.settings.push(step(
            "Roll the app to its new image or size",
            Risk::RollingRestart,
            "replace replicas one at a time; WebSocket clients reconnect to the others",
            elsewhere(NOT_LOCAL),
        ));
    }
    for svc in to.services.iter().chain(&to.workers) {
        if !from
            .services
            .iter()
            .chain(&from.workers)
            .any(|o| o.name == svc.name)
        {
            s.add.push(step(
                format!("Deploy {} ({} replicas)", svc.name, svc.replicas),
                Risk::Online,
                "a new service beside the running ones",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
    // A single-region phase's deployment is the primary region of a phase
    // that names its regions: only the secondary ones are new.
    for r in to
        .regions
        .iter()
        .filter(|r| r.role == RegionRole::Secondary)
    {
        if !from.regions.iter().any(|o| o.name == r.name) {
            s.add.push(step(
                format!("Stand up region {} ({})", r.name, r.cloud_region),
                Risk::Online,
                "its read replicas stream across regions from the primary; its Redis starts empty",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
    if b.replicas < a.replicas {
        s.remove.push(loss(
            format!("Scale the app {} -> {} replicas", a.replicas, b.replicas),
            Risk::Online,
            "fewer replicas carry fewer users",
            elsewhere(NOT_LOCAL),
        ));
    }
    for svc in from.services.iter().chain(&from.workers) {
        if !to
            .services
            .iter()
            .chain(&to.workers)
            .any(|o| o.name == svc.name)
        {
            s.remove.push(loss(
                format!("Retire {}", svc.name),
                Risk::Online,
                "after no traffic reaches it",
                elsewhere(NOT_LOCAL),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(overlay: serde_json::Value) -> PlannedPhase {
        crate::plan::testing::planned(&[overlay])
    }

    fn titles(p: &Plan) -> Vec<String> {
        p.steps
            .iter()
            .map(|s| format!("[{}] {}", s.risk.label(), s.title))
            .collect()
    }

    fn position(p: &Plan, needle: &str) -> usize {
        p.steps
            .iter()
            .position(|s| s.title.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle:?} in {:#?}", titles(p)))
    }

    #[test]
    fn identical_phases_need_nothing() {
        let a = phase(serde_json::json!({}));
        let p = plan(&a, &a);
        assert_eq!(titles(&p), ["[no-op] Nothing to do"]);
    }

    #[test]
    fn replicas_are_added_before_reads_are_routed_to_them() {
        let a = phase(serde_json::json!({}));
        let b = phase(serde_json::json!({"postgres": {"read_replicas": 2}}));
        let p = plan(&a, &b);
        let added = position(
            &p,
            "Add read replicas postgres-replica-1, postgres-replica-2",
        );
        let routed = position(&p, "Route reads");
        assert!(added < routed, "{:#?}", titles(&p));
        assert_eq!(p.steps[added].risk, Risk::Online);
        // A RELOAD of each PgBouncer and of the proxy: no client dropped.
        assert_eq!(p.steps[routed].risk, Risk::Online);
        assert_eq!(p.steps[routed].action, Action::RouteReads);
    }

    #[test]
    fn pool_changes_reload_and_a_new_version_restarts() {
        let a = phase(serde_json::json!({}));
        let b = phase(serde_json::json!({"pgbouncer": {"default_pool_size": 40, "instances": 2}}));
        let p = plan(&a, &b);
        let start = &p.steps[position(&p, "Start PgBouncer instances pgbouncer-2")];
        assert_eq!(start.risk, Risk::Online);
        assert_eq!(
            start.action,
            Action::StartPgbouncers {
                nodes: vec!["pgbouncer-2".to_owned()]
            }
        );
        let reload = &p.steps[position(&p, "Reload PgBouncer: default_pool_size 20 -> 40")];
        assert_eq!(reload.risk, Risk::Online);
        assert_eq!(reload.action, Action::RollPgbouncers { restart: false });
        assert!(
            reload
                .compose
                .contains(&"docker compose kill -s HUP pgbouncer-1".to_owned()),
            "{:?}",
            reload.compose
        );
        let c = phase(serde_json::json!({"pgbouncer": {"version": "1.24"}}));
        let p = plan(&a, &c);
        let roll = &p.steps[position(&p, "Roll PgBouncer: version 1.23 -> 1.24")];
        assert_eq!(roll.risk, Risk::RollingRestart);
        assert_eq!(roll.action, Action::RollPgbouncers { restart: true });
    }

    #[test]
    fn steps_outside_the_local_target_say_why_and_manual_ones_are_marked() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "cluster", "replicas": null, "sentinel": null, "cluster": {"shards": 3, "replicas_per_shard": 1}}}),
        );
        let b = phase(serde_json::json!({"allow_downgrade": true, "app": {"replicas": 3}}));
        let p = plan(&a, &b);
        let back = &p.steps[position(&p, "Move Redis back")];
        assert!(matches!(back.action, Action::Manual { .. }), "{back:?}");
        assert!(back.not_native.is_some());
        let app = &p.steps[position(&p, "Scale the app")];
        assert!(matches!(app.action, Action::Elsewhere { .. }), "{app:?}");
        assert!(app.compose.is_empty());
    }

    #[test]
    fn restart_settings_are_told_from_reload_settings() {
        let a = phase(serde_json::json!({}));
        let b = phase(
            serde_json::json!({"postgres": {"parameters": {"work_mem": "64MB", "shared_preload_libraries": "pg_stat_statements"}}}),
        );
        let p = plan(&a, &b);
        let reload = &p.steps[position(&p, "Reload PostgreSQL settings")];
        assert!(
            reload.title.contains("work_mem 5MB -> 64MB"),
            "{}",
            reload.title
        );
        assert_eq!(reload.risk, Risk::Online);
        let restart = &p.steps[position(&p, "Restart PostgreSQL for shared_preload_libraries")];
        assert_eq!(restart.risk, Risk::BriefWriteUnavailability);
        assert!(!restart.title.contains("work_mem"));
    }

    #[test]
    fn raising_max_connections_restarts_replicas_first() {
        let a = phase(serde_json::json!({"postgres": {"read_replicas": 1}}));
        let b = phase(
            serde_json::json!({"postgres": {"read_replicas": 1, "primary": {"max_connections": 300}}}),
        );
        let p = plan(&a, &b);
        let restart = &p.steps[position(&p, "Restart PostgreSQL for max_connections 200 -> 300")];
        assert!(
            restart.why.contains("restart the replicas first"),
            "{}",
            restart.why
        );
    }

    #[test]
    fn standalone_to_sentinel_needs_sentinel_aware_clients() {
        let a = phase(serde_json::json!({}));
        let b = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}}),
        );
        let p = plan(&a, &b);
        assert_eq!(
            p.steps[position(&p, "Make clients Sentinel-aware")].risk,
            Risk::ClientChangeRequired
        );
        assert!(position(&p, "Start 3 sentinels") < position(&p, "Make clients Sentinel-aware"));
    }

    #[test]
    fn sentinel_to_cluster_is_a_data_migration_with_cluster_aware_clients() {
        let a = phase(
            serde_json::json!({"redis": {"mode": "sentinel", "replicas": 2, "sentinel": {"count": 3, "quorum": 2}}}),
        );
        let b = phase(serde_json::json!({"redis": {"mode": "cluster", "cluster": {"shards": 3}}}));
        let p = plan(&a, &b);
        assert_eq!(
            p.steps[position(&p, "Migrate the data into the cluster's slots")].risk,
            Risk::DataMigration
        );
        let clients = &p.steps[position(&p, "Switch clients to cluster-aware clients")];
        assert_eq!(clients.risk, Risk::ClientChangeRequired);
        assert!(clients.why.contains("hash tags") && clients.why.contains("database 0"));
        assert!(position(&p, "Build the Redis Cluster") < position(&p, "Migrate"));
        assert!(position(&p, "Migrate") < position(&p, "Retire the sentinel Redis"));
    }

    #[test]
    fn leaving_session_pooling_breaks_session_features() {
        let a = phase(serde_json::json!({"pgbouncer": {"pool_mode": "session"}}));
        let b = phase(serde_json::json!({"pgbouncer": {"pool_mode": "transaction"}}));
        let p = plan(&a, &b);
        let s = &p.steps[position(&p, "Make clients safe for transaction pooling")];
        assert_eq!(s.risk, Risk::ClientChangeRequired);
        for feature in [
            "LISTEN/NOTIFY",
            "advisory locks",
            "PREPARE",
            "temporary tables",
        ] {
            assert!(s.why.contains(feature), "{feature}");
        }
    }

    #[test]
    fn scale_down_is_flagged_as_capacity_loss_and_comes_last() {
        let a = phase(
            serde_json::json!({"app": {"replicas": 4}, "postgres": {"read_replicas": 2}, "pgbouncer": {"instances": 2}}),
        );
        let b = phase(
            serde_json::json!({"app": {"replicas": 2}, "postgres": {"read_replicas": 1}, "pgbouncer": {"instances": 1}}),
        );
        let p = plan(&a, &b);
        let losses: Vec<&Step> = p.steps.iter().filter(|s| s.capacity_loss).collect();
        assert_eq!(losses.len(), 3, "{:#?}", titles(&p));
        let first_loss = p.steps.iter().position(|s| s.capacity_loss).unwrap();
        assert!(
            position(&p, "Route reads") < first_loss,
            "reads move away before replicas stop"
        );
        assert!(
            p.steps[first_loss..].iter().all(|s| s.capacity_loss),
            "{:#?}",
            titles(&p)
        );
    }

    #[test]
    fn only_secondary_regions_are_new_deployments() {
        let single = phase(serde_json::json!({}));
        let regions = phase(serde_json::json!({"regions": [
            {"name": "eu-west", "role": "primary", "cloud_region": "eu-west-1"},
            {"name": "us-east", "role": "secondary", "cloud_region": "us-east-1", "read_replicas": 2},
        ]}));
        let p = plan(&single, &regions);
        assert!(
            p.steps.iter().all(|s| !s.title.contains("eu-west")),
            "{:#?}",
            titles(&p)
        );
        assert_eq!(
            p.steps[position(&p, "Stand up region us-east (us-east-1)")].risk,
            Risk::Online
        );
    }

    #[test]
    fn services_the_new_phase_drops_are_addressed_by_container() {
        let a = phase(
            serde_json::json!({"postgres": {"read_replicas": 2}, "pgbouncer": {"instances": 2}}),
        );
        let b = phase(serde_json::json!({"allow_downgrade": true}));
        let p = plan(&a, &b);
        let all: Vec<&String> = p.steps.iter().flat_map(|s| &s.compose).collect();
        let project = &a.compose.project;
        for expected in [
            format!("docker stop {project}-postgres-replica-1-1 {project}-postgres-replica-2-1"),
            format!("docker kill -s INT {project}-pgbouncer-2-1"),
            "docker compose exec -u postgres postgres-primary psql -U postgres -c \"SELECT pg_drop_replication_slot('replica_1')\"".to_owned(),
        ] {
            assert!(all.contains(&&expected), "no `{expected}` in {all:#?}");
        }
        assert!(
            !all.iter().any(|c| c.contains("--remove-orphans")),
            "{all:#?}"
        );
    }
}
