//! The server connections the PgBouncer tier may open, per destination,
//! computed once per phase (the topology carries it: PgBouncer's open-file
//! limit counts it) and checked against PostgreSQL's connection limit
//! (PGB001-003).

use crate::diag::{Code, Diagnostic};
use crate::spec::params;
use crate::spec::types::{Phase, RegionRole};
use crate::validate::ValidPhase;
use serde::Serialize;

/// Server connections the PgBouncer tier may open, per destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolBudget {
    /// Databases (pools) per instance: writes and reads.
    pub databases: u32,
    /// Pools of one instance that land on the primary.
    pub primary_pools: u32,
    pub primary_per_instance: u32,
    /// Every region's pools on the writer: a secondary region's PgBouncers
    /// write to it too (and read from it where the region has no replica).
    pub primary_total: u32,
    /// Of those, the pools of the secondary regions' PgBouncers.
    pub primary_elsewhere: u32,
    /// Worst case on one replica: every instance's read pool on it.
    pub replica_total: u32,
}

pub fn budget(phase: &Phase) -> PoolBudget {
    let pgb = &phase.pgbouncer;
    let per_pool = pgb.default_pool_size + pgb.reserve_pool_size;
    let has_replicas = phase.postgres.read_replicas > 0;
    let primary_pools = if has_replicas { 1 } else { 2 };
    let primary_elsewhere: u32 = phase
        .regions
        .iter()
        .filter(|r| r.role == RegionRole::Secondary)
        .map(|r| if r.read_replicas > 0 { 1 } else { 2 } * per_pool * pgb.instances)
        .sum();
    PoolBudget {
        databases: 2,
        primary_pools,
        primary_per_instance: primary_pools * per_pool,
        primary_total: primary_pools * per_pool * pgb.instances + primary_elsewhere,
        primary_elsewhere,
        replica_total: if has_replicas {
            per_pool * pgb.instances
        } else {
            0
        },
    }
}

/// PGB001-003: the pools fit the servers they open connections to, and
/// PgBouncer takes the clients they hold.
pub fn check(phase: &ValidPhase, budget: &PoolBudget) -> Vec<Diagnostic> {
    let src = &phase.sources;
    let pgb = &phase.spec.pgbouncer;
    let pg = &phase.spec.postgres;
    let mut out = Vec::new();
    let available = pg
        .primary
        .max_connections
        .saturating_sub(params::superuser_reserved(pg));

    if budget.primary_total > available {
        out.push(Diagnostic::error(
            Code::Pgb002,
            src.value_at("/pgbouncer/default_pool_size"),
            format!(
                "pgbouncer pools need {} x ({} + {}) = {} server connections per instance on the primary, {} instance{}{} = {}, but postgres.primary.max_connections {} leaves {} after {} superuser-reserved (replication connections do not count since PostgreSQL 12)",
                budget.primary_pools,
                pgb.default_pool_size,
                pgb.reserve_pool_size,
                budget.primary_per_instance,
                pgb.instances,
                if pgb.instances == 1 { "" } else { "s" },
                if budget.primary_elsewhere > 0 {
                    format!(", plus {} from the secondary regions' PgBouncers", budget.primary_elsewhere)
                } else {
                    String::new()
                },
                budget.primary_total,
                pg.primary.max_connections,
                available,
                params::superuser_reserved(pg),
            ),
            "lower pgbouncer.default_pool_size, reserve_pool_size or instances, or raise postgres.primary.max_connections",
        ));
    }
    if budget.replica_total > available {
        out.push(Diagnostic::error(
            Code::Pgb003,
            src.value_at("/pgbouncer/default_pool_size"),
            format!(
                "read pools of {} instance{} may open {} x ({} + {}) = {} connections to one replica, but a replica allows {} (it has the primary's max_connections {})",
                pgb.instances,
                if pgb.instances == 1 { "" } else { "s" },
                pgb.instances,
                pgb.default_pool_size,
                pgb.reserve_pool_size,
                budget.replica_total,
                available,
                pg.primary.max_connections,
            ),
            "lower pgbouncer.default_pool_size or raise postgres.primary.max_connections",
        ));
    }
    let pools = budget.databases;
    if pgb.max_client_conn < pgb.default_pool_size * pools {
        out.push(Diagnostic::error(
            Code::Pgb001,
            src.value_at("/pgbouncer/max_client_conn"),
            format!(
                "pgbouncer.max_client_conn {} is below the {} x {} = {} server connections its pools hold: the pools can never fill",
                pgb.max_client_conn,
                pools,
                pgb.default_pool_size,
                pgb.default_pool_size * pools
            ),
            "raise pgbouncer.max_client_conn (clients usually outnumber server connections 10 to 1 or more)",
        ));
    }
    out
}
