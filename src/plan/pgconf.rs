//! PostgreSQL settings derived from a spec, overlaid with its
//! `postgres.parameters`. Every target renders these same settings, so
//! postgresql.conf and a cloud parameter group cannot drift apart.

use crate::spec::params::{SUPERUSER_RESERVED, controlled_by};
use crate::spec::types::{ParamValue, Phase};
use serde::Serialize;

/// One rendered setting.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    pub name: String,
    pub value: ParamValue,
    /// Why this value, for the comment beside it in postgresql.conf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'static str>,
}

fn set(name: &str, value: ParamValue, why: &'static str) -> Setting {
    Setting {
        name: name.to_owned(),
        value,
        why: Some(why),
    }
}

fn mb(n: u32) -> ParamValue {
    ParamValue::Text(
        crate::spec::types::Text::try_from(format!("{n}MB")).unwrap_or_else(|_| unreachable!()),
    )
}

fn text(s: &str) -> ParamValue {
    ParamValue::Text(
        crate::spec::types::Text::try_from(s.to_owned()).unwrap_or_else(|_| unreachable!()),
    )
}

/// Settings shared by the primary and its standbys, derived from the spec
/// and then overlaid with `postgres.parameters`. Standbys get the same
/// values: PostgreSQL refuses to start a standby whose max_connections,
/// max_wal_senders and friends are below the primary's.
pub fn settings(phase: &Phase) -> Vec<Setting> {
    settings_for(phase, phase.postgres.primary.memory_mb)
}

/// Replicas streaming from the writer: every region's (a secondary
/// region's replicas are cross-region standbys of the same writer), or the
/// phase's own without regions.
pub fn replicas_everywhere(phase: &Phase) -> u32 {
    let in_regions: u32 = phase.regions.iter().map(|r| r.read_replicas).sum();
    in_regions.max(phase.postgres.read_replicas)
}

/// The WAL a node keeps for others at most: a tenth of its storage, at
/// least 1 GB. A stalled replica (its slot) or archive cannot fill the
/// disk with it.
pub fn wal_keep_mb(phase: &Phase) -> u32 {
    (phase.postgres.primary.storage_gb * 1024 / 10).max(1024)
}

/// Replication connections kept beyond one per replica: a re-seed's
/// base backup streams two (its copy and its WAL), and one more lets a
/// replica reconnect before its old sender has timed out.
pub const SPARE_SENDERS: u32 = 3;

/// The same for a node of `memory` MB: a target that caps the spec's size
/// (one machine) derives its memory settings from the capped size.
pub fn settings_for(phase: &Phase, memory: u32) -> Vec<Setting> {
    let pg = &phase.postgres;
    let shared_buffers = memory / 4;
    let replicas = replicas_everywhere(phase);
    let connections = pg.primary.max_connections;
    // Leave shared_buffers aside and let a third of the connections run a
    // sort or hash at once; 4MB is PostgreSQL's own default floor.
    let work_mem = ((memory - shared_buffers) / (connections * 3).max(1)).max(4);
    let mut out = vec![
        set(
            "max_connections",
            ParamValue::Int(connections.into()),
            "postgres.primary.max_connections",
        ),
        set(
            "superuser_reserved_connections",
            ParamValue::Int(SUPERUSER_RESERVED.into()),
            "kept free for maintenance; PgBouncer pools are sized below max_connections minus this",
        ),
        set(
            "shared_buffers",
            mb(shared_buffers),
            "a quarter of the node's memory",
        ),
        set(
            "effective_cache_size",
            mb(memory * 3 / 4),
            "three quarters of the node's memory",
        ),
        set(
            "maintenance_work_mem",
            mb((memory / 16).clamp(64, 2048)),
            "a sixteenth of memory, 64MB to 2GB",
        ),
        set(
            "work_mem",
            mb(work_mem),
            "memory left after shared_buffers over three sorts per connection",
        ),
        set(
            "wal_level",
            text("replica"),
            "streaming replicas need replica or higher",
        ),
        set(
            "max_wal_senders",
            // A clone (pg_basebackup -X stream) holds two senders until it
            // streams: Compose starts every replica at once, and scale's
            // four clones ran out of senders at replicas + 3.
            ParamValue::Int((2 * replicas + SPARE_SENDERS).into()),
            "two per read replica in every region (a clone streams its WAL beside the base backup; they clone at once) plus room for a re-seed's base backup",
        ),
        set(
            "max_replication_slots",
            ParamValue::Int((replicas + SPARE_SENDERS).into()),
            "one per read replica in every region plus spare",
        ),
        set(
            "max_slot_wal_keep_size",
            mb(wal_keep_mb(phase)),
            "a tenth of storage: a stalled replica cannot fill the disk with WAL",
        ),
        set(
            "hot_standby",
            ParamValue::Bool(true),
            "read replicas answer queries",
        ),
        set(
            "hot_standby_feedback",
            ParamValue::Bool(true),
            "long reads on replicas are not cancelled by vacuum",
        ),
        set(
            "password_encryption",
            text("scram-sha-256"),
            "no md5 hashes",
        ),
        set(
            "checkpoint_completion_target",
            ParamValue::Float(0.9),
            "spread checkpoint writes",
        ),
        set("random_page_cost", ParamValue::Float(1.1), "SSD storage"),
    ];
    for (name, value) in &pg.parameters {
        if controlled_by(name).is_some() {
            continue;
        }
        let setting = Setting {
            name: name.clone(),
            value: value.clone(),
            why: Some("postgres.parameters"),
        };
        match out.iter_mut().find(|s| s.name == *name) {
            Some(slot) => *slot = setting,
            None => out.push(setting),
        }
    }
    out
}
