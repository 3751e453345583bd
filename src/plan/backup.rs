//! Backups and point-in-time recovery, from `postgres.backup`: pgBackRest
//! on the targets scaleplan runs PostgreSQL itself (its WAL archive and
//! base backups), RDS's automated backups in the cloud. One plan, so the
//! retention and window a team sets mean the same thing everywhere.

use crate::plan::target::Target;
use crate::spec::types::Phase;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct BackupPlan {
    /// pgBackRest's name for this deployment's cluster: the project's.
    pub stanza: String,
    pub retention_days: u32,
    /// The daily window in UTC, HH:MM-HH:MM.
    pub window: String,
    /// Its start (HH:MM), where a scheduled `scaleplan backup` runs.
    pub window_start: String,
    pub archive_timeout_s: u32,
    /// `scaleplan backup` takes a full backup when the newest full one is
    /// older than this, an incremental one otherwise: time-based retention
    /// expires full backups only, so a chain without a new full one would
    /// never expire.
    pub full_every_days: u32,
    /// PostgreSQL archives its WAL through pgBackRest on this target (the
    /// local target's, and Compose's images, which carry it); None in the
    /// cloud, where RDS keeps its own.
    pub archive: Option<Archive>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Archive {
    /// The command PostgreSQL runs for each finished WAL segment.
    /// Everything that depends on where the deployment lives (the
    /// repository, the node's data directory and socket) reaches pgBackRest
    /// through PGBACKREST_* variables in the server's environment, which
    /// the archiver inherits.
    pub command: String,
    /// pgBackRest's compression for backups and archived WAL.
    pub compress: &'static str,
    /// WAL waiting for the archive beyond this is dropped (pgBackRest's
    /// archive-push-queue-max), with a warning in PostgreSQL's log: a
    /// repository that cannot take WAL breaks point-in-time recovery until
    /// the next backup, instead of filling the primary's disk and stopping
    /// it. The same bound as the replication slots' WAL.
    pub queue_max_mb: u32,
}

pub fn plan(phase: &Phase, target: Target) -> BackupPlan {
    let b = &phase.postgres.backup;
    let stanza = phase.project.as_str().to_owned();
    BackupPlan {
        retention_days: b.retention_days,
        window: b.window.as_str().to_owned(),
        window_start: b.window.start().to_owned(),
        archive_timeout_s: b.archive_timeout_s,
        full_every_days: b.retention_days.min(7),
        archive: matches!(target, Target::Local { .. } | Target::Compose).then(|| Archive {
            command: format!("pgbackrest --stanza={stanza} archive-push %p"),
            compress: "zst",
            queue_max_mb: super::pgconf::wal_keep_mb(phase),
        }),
        stanza,
    }
}
