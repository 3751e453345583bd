//! What each step of a transition plan does, precisely enough to be
//! carried out (`migrate` on the local target) or written out as commands
//! (Compose), and the node names both read from a topology.

use crate::plan::topology::{RedisLayout, Topology};
use crate::spec::types::RedisMode;
use serde::Serialize;

/// What a step does, precisely enough to be carried out: `migrate` runs it
/// on the local target, and Compose gets it as commands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    Nothing,
    /// New standbys cloned from the running primary, each with its slot,
    /// caught up before any read reaches them.
    AddPostgresReplicas {
        nodes: Vec<String>,
    },
    /// Settings that apply on reload, on every PostgreSQL node.
    ReloadPostgres,
    /// Settings that apply at start: the replicas one at a time, then
    /// the primary (or the primary first, when no standby needs it later).
    RestartPostgres {
        replicas_first: bool,
    },
    /// New PgBouncer instances, which the proxy then balances over.
    StartPgbouncers {
        nodes: Vec<String>,
    },
    /// The running PgBouncers take the new pools: RELOAD where every
    /// changed setting allows it, else a restart one at a time.
    RollPgbouncers {
        restart: bool,
    },
    /// PgBouncer's read pools and the proxy follow the new replicas.
    RouteReads,
    /// New machine sizes for the PostgreSQL nodes: the replicas first,
    /// then the primary. On one machine the memory-derived settings change
    /// with them (the steps above); Compose also recreates each container
    /// with its new limits.
    ResizePostgres,
    /// Standbys that reads no longer reach, stopped, their slots dropped.
    RemovePostgresReplicas {
        nodes: Vec<String>,
    },
    /// PgBouncers taken out of the proxy's rotation, then stopped.
    StopPgbouncers {
        nodes: Vec<String>,
    },
    /// The standalone node becomes the monitored master without a
    /// restart: its replicas attach and sync, then it takes the Sentinel
    /// phase's settings at run time.
    StartRedisReplicas {
        nodes: Vec<String>,
    },
    StopRedisReplicas {
        nodes: Vec<String>,
    },
    StartSentinels {
        nodes: Vec<String>,
    },
    StopSentinels {
        nodes: Vec<String>,
    },
    /// SENTINEL SET on every sentinel.
    SentinelSettings,
    /// CONFIG SET on every data node.
    RedisSettings,
    /// The cluster started empty beside the running Redis.
    BuildCluster {
        nodes: Vec<String>,
    },
    /// Every key copied with its TTL into the master of its slot and
    /// checked; the source is only read.
    CopyIntoCluster,
    /// Shards or replicas joined to a running cluster, slots rebalanced.
    GrowCluster {
        nodes: Vec<String>,
    },
    /// The app moves to the new Redis client (the contract changes).
    SwitchRedisClients {
        mode: RedisMode,
    },
    /// Writes to the old Redis stop, the last keys are copied and checked,
    /// and the app moves to the cluster.
    CutOverToCluster,
    /// BullMQ's own Redis starts (`queue_redis`).
    StartQueueRedis,
    /// The queue Redis takes the new phase's memory at run time.
    QueueRedisSettings,
    /// BullMQ's connection moves onto the queue Redis (`own_redis`) or back
    /// onto the phase's Redis, once no job waits where the queues were:
    /// the app's contract changes and its replicas restart onto it.
    MoveQueues {
        own_redis: bool,
    },
    /// The old Redis nodes and sentinels stop; their data stays.
    RetireRedis {
        nodes: Vec<String>,
    },
    /// The app's workloads (the app, services, workers) take the new
    /// phase's file: more or fewer replicas, a new image or size, a new
    /// or retired workload. They run outside the local target; Compose
    /// runs them.
    Workloads {
        /// The workloads the new phase runs, and those it retires.
        run: Vec<String>,
        retire: Vec<String>,
    },
    /// Monitoring follows the new phase's nodes: new exporters started,
    /// changed ones recreated, those of retired nodes removed, Prometheus
    /// reloaded with the new targets and rules. `migrate` restarts the
    /// local target's monitoring once, after the last step.
    Monitoring {
        retire: Vec<String>,
    },
    /// A change of the app's code or settings (session-state, pooling).
    ClientCode,
    /// What happens outside the local target (the cloud, the app, an
    /// image build): `migrate` says so and goes on.
    Elsewhere {
        reason: String,
    },
    /// A change of the local target that `migrate` does not carry out:
    /// it refuses the migration before the first step.
    Manual {
        reason: String,
    },
}

impl Action {
    /// Why the native target cannot run this step, when it cannot.
    pub fn not_native(&self) -> Option<&str> {
        match self {
            Action::Elsewhere { reason } | Action::Manual { reason } => Some(reason),
            Action::ClientCode => Some("a change of the app's code"),
            Action::Workloads { .. } => Some(NOT_LOCAL),
            Action::ResizePostgres => Some(SIZES),
            _ => None,
        }
    }
}

/// Why a resize is no step of the local target's own.
pub const SIZES: &str = "machine sizes: on one machine the memory-derived settings change with them, in the steps above";

/// Where the app's workloads run, from the local target's view.
pub const NOT_LOCAL: &str = "the app, its services and the regions run outside the local target";

pub fn postgres_replicas(t: &Topology) -> Vec<&str> {
    t.postgres
        .replicas
        .iter()
        .map(|n| n.name.as_str())
        .collect()
}

pub fn pgbouncers(t: &Topology) -> Vec<&str> {
    t.pgbouncer
        .instances
        .iter()
        .map(|n| n.name.as_str())
        .collect()
}

pub fn sentinels(t: &Topology) -> Vec<&str> {
    match &t.redis {
        RedisLayout::Sentinel { sentinels, .. } => {
            sentinels.iter().map(|n| n.name.as_str()).collect()
        }
        _ => Vec::new(),
    }
}
