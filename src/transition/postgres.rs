//! PostgreSQL's steps: replicas added and removed, settings reloaded or
//! restarted (replicas first where a standby needs the larger value).

use super::*;

pub(super) fn steps(from: &PlannedPhase, to: &PlannedPhase, s: &mut Stages) {
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
    if !grow.is_empty() {
        s.add.push(step(
            format!("Resize the PostgreSQL nodes: {}", grow.join(", ")),
            Risk::BriefWriteUnavailability,
            "resize the replicas first, then the primary (or fail over to a resized replica); the memory-derived settings change with it",
            Action::ResizePostgres,
        ));
    }
    if !shrink.is_empty() {
        s.remove.push(loss(
            format!("Shrink the PostgreSQL nodes: {}", shrink.join(", ")),
            Risk::BriefWriteUnavailability,
            "a smaller primary carries less; storage usually cannot shrink in place and needs a new volume",
            Action::ResizePostgres,
        ));
    }
}
